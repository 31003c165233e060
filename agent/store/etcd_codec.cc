#include "agent/store/etcd_codec.h"

#include <boost/beast/core/detail/base64.hpp>
#include <nlohmann/json.hpp>

#include <charconv>

namespace reactor {
namespace etcd {
namespace {

using nlohmann::json;
namespace b64 = boost::beast::detail::base64;

Result<json> ParseJson(const std::string& body, const char* what) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Internal(std::string("etcd ") + what + ": response is not a JSON object: " + body.substr(0, 200));
  }
  return j;
}

// An int64 field: a JSON string of digits (the gateway's form for 64-bit
// integers) or an integer; 0 when absent (proto3 omits defaults). Never
// through a double: lease IDs reach 2^63 - 1.
Result<int64_t> Int64(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return int64_t{0};
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return v;
  }
  return Status::Internal(std::string("etcd: field '") + field + "' is not an int64: " + it->dump());
}

bool Bool(const json& obj, const char* field) {
  auto it = obj.find(field);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

Result<std::string> Bytes(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Status::Internal(std::string("etcd: field '") + field + "' is not base64 text");
  return Base64Decode(it->get<std::string>());
}

Result<int64_t> HeaderRevision(const json& j) {
  auto h = j.find("header");
  if (h == j.end() || !h->is_object()) return int64_t{0};
  return Int64(*h, "revision");
}

Result<KeyValue> ParseKv(const json& j) {
  KeyValue kv;
  auto key = Bytes(j, "key");
  if (!key.ok()) return key.status();
  auto value = Bytes(j, "value");
  if (!value.ok()) return value.status();
  kv.key = std::move(*key);
  kv.value = std::move(*value);
  for (auto [field, out] : {std::pair<const char*, int64_t*>{"create_revision", &kv.create_revision},
                            {"mod_revision", &kv.mod_revision},
                            {"version", &kv.version},
                            {"lease", &kv.lease}}) {
    auto n = Int64(j, field);
    if (!n.ok()) return n.status();
    *out = *n;
  }
  return kv;
}

// The payload of a streamed line: {"result": X} → X; {"error": E} → error.
struct StreamLine {
  json result;
  std::optional<GatewayError> error;
};

Result<StreamLine> ParseStreamLine(const std::string& line, const char* what) {
  auto j = ParseJson(line, what);
  if (!j.ok()) return j.status();
  StreamLine out;
  if (auto e = ParseGatewayError(line)) {
    out.error = *e;
    return out;
  }
  auto r = j->find("result");
  if (r == j->end() || !r->is_object()) {
    return Status::Internal(std::string("etcd ") + what + ": stream line without result: " + line.substr(0, 200));
  }
  out.result = std::move(*r);
  return out;
}

json OpJson(const Op& op) {
  switch (op.type) {
    case Op::Type::kPut: {
      json put = {{"key", Base64Encode(op.key)}, {"value", Base64Encode(op.value)}};
      if (op.lease != 0) put["lease"] = std::to_string(op.lease);
      return {{"request_put", put}};
    }
    case Op::Type::kDelete: return {{"request_delete_range", {{"key", Base64Encode(op.key)}}}};
    case Op::Type::kDeletePrefix: {
      const std::string key = op.key.empty() ? std::string(1, '\0') : op.key;
      return {
          {"request_delete_range", {{"key", Base64Encode(key)}, {"range_end", Base64Encode(PrefixRangeEnd(op.key))}}}};
    }
  }
  return json::object();
}

json CompareJson(const Compare& c) {
  static const char* const kTargets[] = {"MOD", "CREATE", "VERSION", "VALUE", "LEASE"};
  static const char* const kFields[] = {"mod_revision", "create_revision", "version", "value", "lease"};
  static const char* const kResults[] = {"EQUAL", "NOT_EQUAL", "LESS", "GREATER"};
  const auto t = static_cast<size_t>(c.target);
  json j = {{"key", Base64Encode(c.key)}, {"target", kTargets[t]}, {"result", kResults[static_cast<size_t>(c.op)]}};
  if (c.target == Compare::Target::kValue) {
    j[kFields[t]] = Base64Encode(c.value);
  } else {
    j[kFields[t]] = std::to_string(c.number);
  }
  return j;
}

}  // namespace

std::string Base64Encode(const std::string& bytes) {
  std::string out(b64::encoded_size(bytes.size()), '\0');
  out.resize(b64::encode(out.data(), bytes.data(), bytes.size()));
  return out;
}

Result<std::string> Base64Decode(const std::string& text) {
  if (text.size() % 4 != 0)
    return Status::InvalidArgument("etcd: base64 text of length " + std::to_string(text.size()));
  std::string out(b64::decoded_size(text.size()), '\0');
  auto [written, read] = b64::decode(out.data(), text.data(), text.size());
  // Beast stops at the first '=' or invalid character: everything after it
  // must be padding.
  size_t padding = text.size() - read;
  if (padding > 2 || text.find_first_not_of('=', read) != std::string::npos) {
    return Status::InvalidArgument("etcd: invalid base64 at offset " + std::to_string(read));
  }
  out.resize(written);
  return out;
}

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last != 0xFF) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

RangeArgs PrefixRange(const std::string& prefix) {
  RangeArgs args;
  args.key = prefix.empty() ? std::string(1, '\0') : prefix;
  args.range_end = PrefixRangeEnd(prefix);
  return args;
}

std::string RangeRequest(const RangeArgs& args) {
  json j = {{"key", Base64Encode(args.key)}};
  if (args.range_end) j["range_end"] = Base64Encode(*args.range_end);
  if (args.limit > 0) j["limit"] = std::to_string(args.limit);
  if (args.revision > 0) j["revision"] = std::to_string(args.revision);
  if (args.count_only) j["count_only"] = true;
  return j.dump();
}

Result<std::string> TxnRequest(const Txn& txn) {
  for (auto [n, what] : {std::pair<size_t, const char*>{txn.compares.size(), "compares"},
                         {txn.success.size(), "success operations"},
                         {txn.failure.size(), "failure operations"}}) {
    if (n > kMaxTxnOps) {
      return Status::InvalidArgument("etcd: a transaction with " + std::to_string(n) + " " + what +
                                     " is over etcd's limit of " + std::to_string(kMaxTxnOps) +
                                     " (--max-txn-ops); split it into smaller transactions");
    }
  }
  size_t raw_bytes = 0;
  json compares = json::array(), success = json::array(), failure = json::array();
  for (const Compare& c : txn.compares) {
    if (c.key.empty()) return Status::InvalidArgument("etcd: a compare needs a non-empty key");
    raw_bytes += c.key.size() + c.value.size() + 32;
    compares.push_back(CompareJson(c));
  }
  for (auto [ops, out] : {std::pair<const std::vector<Op>*, json*>{&txn.success, &success}, {&txn.failure, &failure}}) {
    for (const Op& op : *ops) {
      if (op.type != Op::Type::kDeletePrefix && op.key.empty()) {
        return Status::InvalidArgument("state store: a put or delete needs a non-empty key");
      }
      if (op.value.size() > kMaxValueBytes) {
        return Status::InvalidArgument("etcd: the value of '" + op.key.substr(0, 200) + "' is " +
                                       std::to_string(op.value.size()) + " bytes, over the limit of " +
                                       std::to_string(kMaxValueBytes) + " (1 MiB)");
      }
      raw_bytes += op.key.size() + op.value.size() + 32;
      out->push_back(OpJson(op));
    }
  }
  if (raw_bytes > kMaxRequestBytes) {
    return Status::InvalidArgument("etcd: a transaction of " + std::to_string(raw_bytes) +
                                   " bytes is over etcd's request limit of " + std::to_string(kMaxRequestBytes) +
                                   " (--max-request-bytes); split it into smaller transactions");
  }
  json j = json::object();
  if (!compares.empty()) j["compare"] = std::move(compares);
  if (!success.empty()) j["success"] = std::move(success);
  if (!failure.empty()) j["failure"] = std::move(failure);
  return j.dump();
}

std::string LeaseGrantRequest(Duration ttl) {
  int64_t seconds = (ttl.count() + 999) / 1000;
  if (seconds < 1) seconds = 1;
  return json{{"TTL", std::to_string(seconds)}}.dump();
}

std::string LeaseIdRequest(LeaseId lease) { return json{{"ID", std::to_string(lease)}}.dump(); }

std::string WatchCreateRequest(const std::string& prefix, int64_t after_revision) {
  json create = {{"key", Base64Encode(prefix.empty() ? std::string(1, '\0') : prefix)},
                 {"range_end", Base64Encode(PrefixRangeEnd(prefix))},
                 // start_revision 0 would mean "from now", silently skipping
                 // what happened between the caller's read and this watch.
                 {"start_revision", std::to_string(after_revision < 0 ? 1 : after_revision + 1)}};
  return json{{"create_request", create}}.dump();
}

std::string CompactionRequest(int64_t revision, bool physical) {
  json j = {{"revision", std::to_string(revision)}};
  if (physical) j["physical"] = true;
  return j.dump();
}

std::string CompactionClaimRequest(const std::string& key, int64_t version, int64_t revision) {
  const std::string k = Base64Encode(key);
  json compare = {{"key", k}, {"target", "VERSION"}, {"result", "EQUAL"}, {"version", std::to_string(version)}};
  json put = {{"request_put", {{"key", k}, {"value", Base64Encode(std::to_string(revision))}}}};
  json get = {{"request_range", {{"key", k}}}};
  return json{{"compare", json::array({compare})}, {"success", json::array({put})}, {"failure", json::array({get})}}
      .dump();
}

std::string AuthenticateRequest(const std::string& user, const std::string& password) {
  return json{{"name", user}, {"password", password}}.dump();
}

std::optional<GatewayError> ParseGatewayError(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto e = j.find("error");
  if (e == j.end()) return std::nullopt;
  GatewayError out;
  if (e->is_object()) {  // streamed: {"error": {"grpc_code": 14, "message": "..."}}
    out.grpc_code = e->value("grpc_code", 0);
    out.message = e->value("message", std::string());
    return out;
  }
  out.grpc_code = j.value("code", 0);
  out.message = j.value("message", e->is_string() ? e->get<std::string>() : std::string());
  return out;
}

Status ErrorStatus(const GatewayError& error, const std::string& context) {
  const std::string msg = context + ": " + error.message;
  switch (error.grpc_code) {
    case 3:   // InvalidArgument
    case 9:   // FailedPrecondition
    case 11:  // OutOfRange (e.g. a compacted revision)
      return Status::InvalidArgument(msg);
    case 5: return Status::NotFound(msg);
    case 7:
    case 16: return Status::Unauthenticated(msg);
    case 4:   // DeadlineExceeded
    case 10:  // Aborted
    case 14:  // Unavailable
      return Status::Unavailable(msg);
    default: break;
  }
  if (error.message.find("no leader") != std::string::npos || error.message.find("timed out") != std::string::npos) {
    return Status::Unavailable(msg);
  }
  return Status::Internal(msg);
}

bool IsRetryableOnAnotherMember(const GatewayError& error) {
  const std::string& m = error.message;
  return m.find("no leader") != std::string::npos || m.find("not capable") != std::string::npos ||
         m.find("leader changed") != std::string::npos || m.find("not leader") != std::string::npos;
}

Result<RangeResponse> ParseRangeResponse(const std::string& body) {
  auto j = ParseJson(body, "range");
  if (!j.ok()) return j.status();
  RangeResponse out;
  auto rev = HeaderRevision(*j);
  if (!rev.ok()) return rev.status();
  out.revision = *rev;
  auto count = Int64(*j, "count");
  if (!count.ok()) return count.status();
  out.count = *count;
  out.more = Bool(*j, "more");
  auto kvs = j->find("kvs");  // absent when nothing matched
  if (kvs != j->end() && kvs->is_array()) {
    out.kvs.reserve(kvs->size());
    for (const json& k : *kvs) {
      auto kv = ParseKv(k);
      if (!kv.ok()) return kv.status();
      out.kvs.push_back(std::move(*kv));
    }
  }
  return out;
}

Result<TxnResult> ParseTxnResponse(const std::string& body) {
  auto j = ParseJson(body, "txn");
  if (!j.ok()) return j.status();
  TxnResult out;
  out.succeeded = Bool(*j, "succeeded");  // absent = false
  auto rev = HeaderRevision(*j);
  if (!rev.ok()) return rev.status();
  out.revision = *rev;
  return out;
}

Result<LeaseGrantResponse> ParseLeaseGrantResponse(const std::string& body) {
  auto j = ParseJson(body, "lease grant");
  if (!j.ok()) return j.status();
  LeaseGrantResponse out;
  auto id = Int64(*j, "ID");
  auto ttl = Int64(*j, "TTL");
  if (!id.ok()) return id.status();
  if (!ttl.ok()) return ttl.status();
  std::string error = j->value("error", std::string());
  if (!error.empty()) return Status::Internal("etcd lease grant: " + error);
  if (*id == 0) return Status::Internal("etcd lease grant: no lease ID in " + body.substr(0, 200));
  out.id = *id;
  out.ttl_seconds = *ttl;
  return out;
}

Result<int64_t> ParseKeepAliveResponse(const std::string& body, LeaseId lease) {
  // One line per request; we send one.
  const std::string line = body.substr(0, body.find('\n'));
  auto sl = ParseStreamLine(line, "lease keepalive");
  if (!sl.ok()) return sl.status();
  if (sl->error) return ErrorStatus(*sl->error, "etcd lease keepalive " + std::to_string(lease));
  auto ttl = Int64(sl->result, "TTL");
  if (!ttl.ok()) return ttl.status();
  // An expired or revoked lease is answered with a result whose TTL is 0,
  // which proto3 omits: not a success.
  if (*ttl <= 0) return Status::NotFound("lease " + std::to_string(lease) + " not found (expired or revoked)");
  return *ttl;
}

Result<CompactionClaim> ParseCompactionClaimResponse(const std::string& body) {
  auto j = ParseJson(body, "compaction claim");
  if (!j.ok()) return j.status();
  CompactionClaim out;
  out.succeeded = Bool(*j, "succeeded");  // absent = false
  auto rev = HeaderRevision(*j);
  if (!rev.ok()) return rev.status();
  out.revision = *rev;
  if (out.succeeded) return out;
  // The failure branch's range: {"responses":[{"response_range":{"kvs":[...]}}]},
  // without "kvs" when the key is absent.
  auto responses = j->find("responses");
  if (responses == j->end() || !responses->is_array() || responses->empty() || !(*responses)[0].is_object()) {
    return Status::Internal("etcd compaction claim: a failed transaction without its read: " + body.substr(0, 200));
  }
  auto range = (*responses)[0].find("response_range");
  if (range == (*responses)[0].end() || !range->is_object()) {
    return Status::Internal("etcd compaction claim: no response_range in " + body.substr(0, 200));
  }
  auto kvs = range->find("kvs");
  if (kvs != range->end() && kvs->is_array() && !kvs->empty()) {
    auto kv = ParseKv((*kvs)[0]);
    if (!kv.ok()) return kv.status();
    out.version = kv->version;
  }
  return out;
}

bool IsAlreadyCompacted(const Status& status) {
  return status.IsInvalidArgument() &&
         status.message().find("required revision has been compacted") != std::string::npos;
}

Result<int64_t> ParseHeaderRevision(const std::string& body) {
  auto j = ParseJson(body, "response");
  if (!j.ok()) return j.status();
  return HeaderRevision(*j);
}

Result<std::string> ParseAuthToken(const std::string& body) {
  auto j = ParseJson(body, "authenticate");
  if (!j.ok()) return j.status();
  std::string token = j->value("token", std::string());
  if (token.empty()) return Status::Unauthenticated("etcd authenticate: no token in the answer");
  return token;
}

Result<WatchMessage> ParseWatchLine(const std::string& line) {
  auto sl = ParseStreamLine(line, "watch");
  if (!sl.ok()) return sl.status();
  WatchMessage out;
  if (sl->error) {
    out.error = sl->error;
    return out;
  }
  const json& r = sl->result;
  auto rev = HeaderRevision(r);
  if (!rev.ok()) return rev.status();
  out.header_revision = *rev;
  out.created = Bool(r, "created");
  out.canceled = Bool(r, "canceled");
  auto compact = Int64(r, "compact_revision");
  if (!compact.ok()) return compact.status();
  out.compact_revision = *compact;
  out.cancel_reason = r.value("cancel_reason", std::string());
  auto events = r.find("events");
  if (events != r.end() && events->is_array()) {
    for (const json& e : *events) {
      WatchEvent ev;
      // PUT is enum value 0, so a put event has no "type".
      ev.type = e.value("type", std::string("PUT")) == "DELETE" ? WatchEvent::Type::kDelete : WatchEvent::Type::kPut;
      auto kv_it = e.find("kv");
      if (kv_it == e.end() || !kv_it->is_object()) return Status::Internal("etcd watch: event without kv: " + e.dump());
      auto kv = ParseKv(*kv_it);
      if (!kv.ok()) return kv.status();
      ev.kv = std::move(*kv);
      out.events.push_back(std::move(ev));
    }
  }
  return out;
}

Result<SnapshotChunk> ParseSnapshotLine(const std::string& line) {
  auto sl = ParseStreamLine(line, "snapshot");
  if (!sl.ok()) return sl.status();
  if (sl->error) return ErrorStatus(*sl->error, "etcd snapshot");
  SnapshotChunk out;
  auto blob = Bytes(sl->result, "blob");
  if (!blob.ok()) return blob.status();
  out.bytes = std::move(*blob);
  auto remaining = Int64(sl->result, "remaining_bytes");
  if (!remaining.ok()) return remaining.status();
  out.remaining_bytes = *remaining;
  return out;
}

}  // namespace etcd
}  // namespace reactor
