#include "agent/store/etcd_store.h"

#include <algorithm>
#include <thread>

#include "agent/store/etcd_codec.h"

namespace reactor {
namespace {

constexpr Duration kMaxWatchTimeout(24 * 3600 * 1000);
// Streams beyond this many, or unused for this long, are closed.
constexpr size_t kMaxStreams = 64;
constexpr auto kStreamIdle = std::chrono::minutes(10);
// A paginated read that meets a compaction between its pages starts over.
constexpr int kRangeRestarts = 3;

}  // namespace

Result<std::unique_ptr<EtcdStore>> EtcdStore::Open(EtcdOptions options) {
  auto http = std::make_unique<CurlEtcdHttp>(options.tls, options.connect_timeout);
  return Open(std::move(options), std::move(http), [](Duration d) { std::this_thread::sleep_for(d); });
}

Result<std::unique_ptr<EtcdStore>> EtcdStore::Open(EtcdOptions options, std::unique_ptr<EtcdHttp> http,
                                                   std::function<void(Duration)> sleep) {
  if (options.endpoints.empty()) return Status::InvalidArgument("etcd: no endpoints");
  const EtcdTlsOptions& t = options.tls;
  const int tls_set = !t.ca_file.empty() + !t.cert_file.empty() + !t.key_file.empty();
  if (tls_set != 0 && t.ca_file.empty()) {
    return Status::InvalidArgument("etcd: a client certificate needs etcd_ca_file too");
  }
  if (!t.cert_file.empty() != !t.key_file.empty()) {
    return Status::InvalidArgument("etcd: etcd_cert_file and etcd_key_file go together");
  }
  if (options.user.empty() != options.password.empty()) {
    return Status::InvalidArgument("etcd: etcd_user and a password go together");
  }
  return std::unique_ptr<EtcdStore>(new EtcdStore(std::move(options), std::move(http), std::move(sleep)));
}

EtcdStore::EtcdStore(EtcdOptions options, std::unique_ptr<EtcdHttp> http, std::function<void(Duration)> sleep)
    : conn_(std::move(options), std::move(http), std::move(sleep)) {
  if (conn_.options().compaction_retention.count() > 0) {
    compaction_ = std::make_unique<EtcdCompaction>(conn_, conn_.options().compaction_retention);
    compaction_->Start();
  }
}

EtcdStore::~EtcdStore() {
  compaction_.reset();
  std::map<std::string, std::shared_ptr<EtcdWatchStream>> streams;
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams.swap(streams_);
  }
  // Ask all to stop first, so they wind down together.
  for (auto& [prefix, s] : streams) s->RequestStop();
  streams.clear();
}

Result<etcd::RangeResponse> EtcdStore::Range(const etcd::RangeArgs& args) {
  auto body = conn_.Call("/v3/kv/range", etcd::RangeRequest(args), EtcdConnection::Kind::kRead);
  if (!body.ok()) return body.status();
  return etcd::ParseRangeResponse(*body);
}

Result<int64_t> EtcdStore::Revision() {
  etcd::RangeArgs args;
  args.key = std::string(1, '\0');
  args.count_only = true;
  auto r = Range(args);
  if (!r.ok()) return r.status();
  return r->revision;
}

Result<std::optional<KeyValue>> EtcdStore::Get(const std::string& key) {
  if (key.empty()) return Status::InvalidArgument("state store: empty key");
  etcd::RangeArgs args;
  args.key = key;
  auto r = Range(args);
  if (!r.ok()) return r.status();
  if (r->kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(std::move(r->kvs.front()));
}

Result<std::vector<KeyValue>> EtcdStore::GetPrefix(const std::string& prefix, int64_t* revision) {
  Status last;
  for (int restart = 0; restart < kRangeRestarts; ++restart) {
    std::vector<KeyValue> out;
    etcd::RangeArgs args = etcd::PrefixRange(prefix);
    args.limit = page_size_;
    int64_t at = 0;
    bool compacted = false;
    while (true) {
      args.revision = at;
      auto r = Range(args);
      if (!r.ok()) {
        // Pages after the first read at the first one's revision; a
        // compaction meanwhile means starting over.
        if (at != 0 && r.status().IsInvalidArgument() && r.status().message().find("compacted") != std::string::npos) {
          compacted = true;
          last = r.status();
          break;
        }
        return r.status();
      }
      if (at == 0) at = r->revision;
      for (KeyValue& kv : r->kvs) out.push_back(std::move(kv));
      if (!r->more || out.empty()) break;
      args.key = out.back().key + std::string(1, '\0');
    }
    if (compacted) continue;
    if (revision != nullptr) *revision = at;
    return out;
  }
  return Status::Unavailable("etcd range of '" + prefix + "': compacted between pages " +
                             std::to_string(kRangeRestarts) + " times: " + last.message());
}

Result<TxnResult> EtcdStore::Commit(const Txn& txn) {
  auto body = etcd::TxnRequest(txn);
  if (!body.ok()) return body.status();
  auto reply = conn_.Call("/v3/kv/txn", *body,
                          txn.compares.empty() ? EtcdConnection::Kind::kIdempotentWrite : EtcdConnection::Kind::kWrite);
  if (!reply.ok()) {
    if (reply.status().IsNotFound()) {
      // etcd's "requested lease not found": as SqliteStore, NotFound.
      return Status::NotFound("put: " + reply.status().message());
    }
    return reply.status();
  }
  return etcd::ParseTxnResponse(*reply);
}

Result<LeaseId> EtcdStore::GrantLease(Duration ttl) {
  if (ttl.count() <= 0) return Status::InvalidArgument("state store: a lease needs a positive TTL");
  // Granting twice leaves an unused lease that expires on its own.
  auto reply = conn_.Call("/v3/lease/grant", etcd::LeaseGrantRequest(ttl), EtcdConnection::Kind::kIdempotentWrite);
  if (!reply.ok()) return reply.status();
  auto r = etcd::ParseLeaseGrantResponse(*reply);
  if (!r.ok()) return r.status();
  return r->id;
}

Status EtcdStore::KeepAlive(LeaseId lease) {
  // Renewing twice is harmless: a read for the purpose of retries.
  auto reply = conn_.Call("/v3/lease/keepalive", etcd::LeaseIdRequest(lease), EtcdConnection::Kind::kRead);
  if (!reply.ok()) return reply.status();
  return etcd::ParseKeepAliveResponse(*reply, lease).status();
}

Status EtcdStore::RevokeLease(LeaseId lease) {
  auto reply = conn_.Call("/v3/lease/revoke", etcd::LeaseIdRequest(lease), EtcdConnection::Kind::kIdempotentWrite);
  if (!reply.ok()) {
    if (reply.status().IsNotFound()) {
      return Status::NotFound("lease " + std::to_string(lease) + " not found (expired or revoked)");
    }
    return reply.status();
  }
  return Status::Ok();
}

Status EtcdStore::Compact(int64_t revision) {
  auto reply =
      conn_.Call("/v3/kv/compaction", etcd::CompactionRequest(revision), EtcdConnection::Kind::kIdempotentWrite);
  return reply.status();
}

EtcdCompactionStats EtcdStore::compaction_stats() { return compaction_ ? compaction_->stats() : EtcdCompactionStats(); }

Status EtcdStore::Snapshot(const std::function<Status(const std::string& chunk)>& sink) {
  std::string failures;
  const size_t members = conn_.options().endpoints.size();
  for (size_t attempt = 0; attempt < members; ++attempt) {
    auto token = conn_.Token();
    if (!token.ok()) return token.status();
    const std::string member = conn_.CurrentMember();
    Status st;
    bool wrote_any = false;
    bool done = false;
    std::atomic<bool> stop{false};
    auto on_line = [&](const std::string& line) {
      auto chunk = etcd::ParseSnapshotLine(line);
      if (!chunk.ok()) {
        st = chunk.status();
        return false;
      }
      if (!chunk->bytes.empty()) {
        wrote_any = true;
        st = sink(chunk->bytes);
        if (!st.ok()) return false;
      }
      if (chunk->remaining_bytes == 0) done = true;
      return true;
    };
    EtcdHttpReply reply =
        conn_.http().Stream({member + "/v3/maintenance/snapshot", "{}", *token, Duration(0)}, on_line, stop);
    if (!st.ok()) return st.WithContext("etcd snapshot from " + member);
    if (done && reply.transport_error.empty()) return Status::Ok();
    const std::string why = !reply.transport_error.empty()
                                ? reply.transport_error
                                : member + ": snapshot ended before its last chunk " + reply.body.substr(0, 200);
    // Half a snapshot went to the sink: the caller must start over.
    if (wrote_any) return Status::Unavailable("etcd snapshot: " + why);
    failures += "; " + why;
    conn_.MemberFailed(member);
  }
  return Status::Unavailable("etcd snapshot: no member of " + conn_.Describe() + " answered" + failures);
}

std::shared_ptr<EtcdWatchStream> EtcdStore::StreamFor(const std::string& prefix, int64_t after_revision) {
  std::vector<std::shared_ptr<EtcdWatchStream>> retired;  // destroyed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (it->first != prefix && now - it->second->last_used() > kStreamIdle) {
      it->second->RequestStop();
      retired.push_back(std::move(it->second));
      it = streams_.erase(it);
    } else {
      ++it;
    }
  }
  auto it = streams_.find(prefix);
  if (it != streams_.end() && it->second->Covers(after_revision)) return it->second;
  if (it != streams_.end()) {
    it->second->RequestStop();
    retired.push_back(std::move(it->second));
    streams_.erase(it);
  }
  if (streams_.size() >= kMaxStreams) {
    auto oldest = std::min_element(streams_.begin(), streams_.end(), [](const auto& a, const auto& b) {
      return a.second->last_used() < b.second->last_used();
    });
    oldest->second->RequestStop();
    retired.push_back(std::move(oldest->second));
    streams_.erase(oldest);
  }
  auto stream = std::make_shared<EtcdWatchStream>(conn_, prefix, after_revision);
  streams_[prefix] = stream;
  return stream;
}

Result<WatchResult> EtcdStore::Watch(const std::string& prefix, int64_t after_revision, Duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + std::clamp(timeout, Duration(0), kMaxWatchTimeout);
  std::shared_ptr<EtcdWatchStream> stream = StreamFor(prefix, after_revision);
  EtcdWatchStream::Waited w = stream->Wait(after_revision, deadline);
  WatchResult result;
  if (w.compacted) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = streams_.find(prefix);
      if (it != streams_.end() && it->second == stream) streams_.erase(it);
    }
    stream->RequestStop();
    result.compacted = true;
    auto rev = Revision();
    result.revision = rev.ok() ? *rev : w.compact_revision;
    return result;
  }
  if (!w.events.empty()) {
    result.revision = w.events.back().kv.mod_revision;
    result.events = std::move(w.events);
    return result;
  }
  if (!w.connected && !w.error.empty()) {
    return Status::Unavailable("etcd watch of '" + prefix + "' at " + conn_.Describe() + ": " + w.error);
  }
  result.revision = after_revision;  // never moved forward by a timeout
  return result;
}

}  // namespace reactor
