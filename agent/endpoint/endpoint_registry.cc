#include "agent/endpoint/endpoint_registry.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "agent/endpoint/endpoint_parser.h"
#include "agent/metrics/tcp_table.h"
#include "agent/store/keys.h"

namespace reactor {

const char* EndpointStateName(EndpointState s) {
  switch (s) {
    case EndpointState::kRunning: return "running";
    case EndpointState::kPaused: return "paused";
    case EndpointState::kStopped: return "stopped";
    case EndpointState::kDeleting: return "deleting";
  }
  return "running";
}

Result<EndpointState> ParseEndpointState(const std::string& s) {
  if (s == "running") return EndpointState::kRunning;
  if (s == "paused") return EndpointState::kPaused;
  if (s == "stopped") return EndpointState::kStopped;
  if (s == "deleting") return EndpointState::kDeleting;
  return Status::InvalidArgument("unknown state '" + s + "' (running, paused, stopped)");
}

namespace {

// The record as stored, validated as a new one would be.
Result<EndpointRecord> DecodeStrict(const std::string& name, const KeyValue& kv) {
  auto j = nlohmann::json::parse(kv.value, nullptr, false);
  if (!j.is_object() || !j.contains("ini") || !j["ini"].is_string()) {
    return Status::Internal("stored endpoint " + name + ": the record at " + kv.key + " is not an endpoint record");
  }
  EndpointRecord rec;
  rec.name = name;
  rec.ini = j["ini"].get<std::string>();
  auto source = j.find("source");
  if (source != j.end() && source->is_string()) rec.source = source->get<std::string>();
  auto state_field = j.find("state");
  auto st = ParseEndpointState(state_field != j.end() && state_field->is_string() ? state_field->get<std::string>()
                                                                                  : std::string("running"));
  if (!st.ok()) return st.status().WithContext("stored endpoint " + name);
  rec.state = *st;
  rec.mod_revision = kv.mod_revision;
  auto cfg = ParseEndpointIni(rec.name, rec.ini);
  if (!cfg.ok()) return cfg.status().WithContext("stored endpoint " + rec.name);
  rec.config = std::move(*cfg);
  return rec;
}

std::string Encode(const EndpointRecord& rec) {
  nlohmann::json j = {
      {"name", rec.name}, {"ini", rec.ini}, {"state", EndpointStateName(rec.state)}, {"source", rec.source}};
  return j.dump();
}

// One URL, one endpoint: the claim is on host:port/path.
std::string ClaimOf(const EndpointConfig& c) { return c.url.ListenKey() + c.url.path; }

std::string UrlText(const EndpointConfig& c) { return c.url.scheme + "://" + c.url.ListenKey() + c.url.path; }

}  // namespace

Result<EndpointRecord> EndpointRegistry::Decode(const KeyValue& kv) const {
  const std::string name = kv.key.substr(EndpointPrefix().size());
  {
    // Parsed only when the record changed: a round reads every endpoint.
    std::lock_guard<std::mutex> lock(good_mu_);
    auto it = last_good_.find(name);
    if (it != last_good_.end() && it->second.record.mod_revision == kv.mod_revision && it->second.value == kv.value) {
      return it->second.record;
    }
  }
  auto strict = DecodeStrict(name, kv);
  if (strict.ok()) {
    std::lock_guard<std::mutex> lock(good_mu_);
    last_good_[name] = Good{*strict, kv.value};
    return strict;
  }
  // What no longer reads is not an orphan: keep what is known of it.
  EndpointRecord rec;
  rec.name = name;
  rec.problem = strict.status().message();
  rec.mod_revision = kv.mod_revision;
  auto j = nlohmann::json::parse(kv.value, nullptr, false);
  bool readable = j.is_object() && j.contains("ini") && j["ini"].is_string();
  if (readable) {
    rec.ini = j["ini"].get<std::string>();
    auto state = ParseEndpointState(j.value("state", std::string("running")));
    if (state.ok()) rec.state = *state;
    auto source = j.find("source");
    if (source != j.end() && source->is_string()) rec.source = source->get<std::string>();
  }
  std::optional<EndpointRecord> good;
  {
    std::lock_guard<std::mutex> lock(good_mu_);
    auto it = last_good_.find(name);
    if (it != last_good_.end()) good = it->second.record;
  }
  if (!good) {
    auto stored = store_.Get(LastGoodEndpointKey(name));
    if (stored.ok() && stored->has_value()) {
      auto g = DecodeStrict(name, **stored);
      if (g.ok()) good = std::move(*g);
    }
  }
  if (good) {
    rec.config = good->config;
    if (!readable) {
      rec.state = good->state;
      rec.source = good->source;
    }
    return rec;
  }
  auto lenient = readable ? ParseEndpointIniLenient(name, rec.ini) : Result<EndpointConfig>(Status::NotFound(""));
  if (lenient.ok()) {
    rec.config = std::move(*lenient);
  } else {
    rec.config_known = false;
    rec.config.name = name;
  }
  return rec;
}

Result<std::vector<EndpointRecord>> EndpointRegistry::List(int64_t* revision) const {
  auto kvs = store_.GetPrefix(EndpointPrefix(), revision);
  if (!kvs.ok()) return kvs.status();
  std::vector<EndpointRecord> out;
  for (const auto& kv : *kvs) {
    // A key that cannot name an endpoint is not one of ours.
    if (!IsValidEndpointName(kv.key.substr(EndpointPrefix().size()))) continue;
    auto rec = Decode(kv);
    if (rec.ok()) out.push_back(std::move(*rec));
  }
  return out;
}

Result<EndpointRecord> EndpointRegistry::Get(const std::string& name) const {
  if (!IsValidEndpointName(name)) return Status::NotFound("no endpoint named '" + name + "'");
  auto kv = store_.Get(EndpointKey(name));
  if (!kv.ok()) return kv.status();
  if (!kv->has_value()) return Status::NotFound("no endpoint named '" + name + "'");
  return Decode(**kv);
}

Result<int64_t> EndpointRegistry::ValidateAgainstOthers(const EndpointConfig& cfg) const {
  const EndpointUrl& a = cfg.url;
  // The port's guard is read first: a writer on the same host:port that
  // commits after this read changes it, and Write's compare then fails.
  auto guard = store_.Get(PortClaimKey(a.ListenKey()));
  if (!guard.ok()) return guard.status();
  const int64_t guard_revision = guard->has_value() ? (*guard)->mod_revision : 0;
  // The other endpoints on this host:port, from their URL claims (no full
  // list: at 1,000 endpoints parsing every one took most of a PUT).
  auto claims = store_.GetPrefix(UrlClaimKey(a.ListenKey() + "/"));
  if (!claims.ok()) return claims.status();
  bool port_shared_with_ours = false;
  for (const auto& claim : *claims) {
    if (claim.value == cfg.name) continue;
    auto other = Get(claim.value);
    if (!other.ok() || !other->config_known) continue;
    const EndpointUrl& b = other->config.url;
    if (b.ListenKey() != a.ListenKey()) continue;  // a claim left behind
    port_shared_with_ours = true;
    if (b.path == a.path) {
      return Status::InvalidArgument("[endpoint] url: " + a.scheme + "://" + a.ListenKey() + a.path +
                                     " is already served by endpoint '" + other->name + "'");
    }
    if (a.scheme != b.scheme) {
      return Status::InvalidArgument("[endpoint] url: port " + std::to_string(a.port) + " is served as " + b.scheme +
                                     " by endpoint '" + other->name + "'; one port has one scheme");
    }
  }
  if (!port_shared_with_ours && probe_ != nullptr && probe_->PortInUse(a.port)) {
    // A port already used by one of our own endpoints (on any address) is
    // our nginx; any other listener on it is someone else's and nginx could
    // not bind it.
    auto all = store_.GetPrefix(UrlClaimKey(""));
    if (!all.ok()) return all.status();
    const std::string port_text = ":" + std::to_string(a.port) + "%2F";
    bool ours = false;
    for (const auto& claim : *all) {
      if (claim.key.find(port_text) == std::string::npos) continue;
      auto other = Get(claim.value);
      if (other.ok() && other->config_known && other->config.url.port == a.port) {
        ours = true;
        break;
      }
    }
    if (!ours) {
      return Status::InvalidArgument("[endpoint] url: port " + std::to_string(a.port) +
                                     " is already in use on this host by another program");
    }
  }
  return guard_revision;
}

Status EndpointRegistry::Write(const EndpointRecord& rec, int64_t expected_revision, const EndpointRecord* previous,
                               std::optional<int64_t> port_guard, bool* lost_race) {
  if (lost_race != nullptr) *lost_race = false;
  const std::string key = EndpointKey(rec.name);
  Txn txn;
  txn.compares.push_back(expected_revision == 0 ? Compare::Absent(key)
                                                : Compare::ModRevisionIs(key, expected_revision));
  txn.success.push_back(Op::Put(key, Encode(rec)));
  // Only a record that validated becomes the last good one.
  if (rec.problem.empty()) txn.success.push_back(Op::Put(LastGoodEndpointKey(rec.name), Encode(rec)));
  if (port_guard) {
    // Every writer on this host:port bumps its guard, so two concurrent
    // writers (two schemes, or the same URL under two names) cannot both
    // commit what each validated alone.
    const std::string guard_key = PortClaimKey(rec.config.url.ListenKey());
    txn.compares.push_back(*port_guard == 0 ? Compare::Absent(guard_key)
                                            : Compare::ModRevisionIs(guard_key, *port_guard));
    txn.success.push_back(Op::Put(guard_key, rec.config.url.scheme));
  }
  if (rec.config_known) {
    const std::string claim_key = UrlClaimKey(ClaimOf(rec.config));
    auto claim = store_.Get(claim_key);
    if (!claim.ok()) return claim.status();
    if (claim->has_value() && (*claim)->value != rec.name) {
      // Another endpoint's claim holds while that endpoint still has the URL;
      // one left behind (its endpoint gone or moved) is taken over.
      auto other = Get((*claim)->value);
      if (other.ok() && other->config_known && ClaimOf(other->config) == ClaimOf(rec.config)) {
        return Status::Conflict("[endpoint] url: " + UrlText(rec.config) + " is already served by endpoint '" +
                                other->name + "'");
      }
    }
    txn.compares.push_back(claim->has_value() ? Compare::ModRevisionIs(claim_key, (*claim)->mod_revision)
                                              : Compare::Absent(claim_key));
    txn.success.push_back(Op::Put(claim_key, rec.name));
    if (previous != nullptr && previous->config_known && ClaimOf(previous->config) != ClaimOf(rec.config)) {
      const std::string old_key = UrlClaimKey(ClaimOf(previous->config));
      auto old = store_.Get(old_key);
      if (!old.ok()) return old.status();
      if (old->has_value() && (*old)->value == rec.name) {
        txn.compares.push_back(Compare::ModRevisionIs(old_key, (*old)->mod_revision));
        txn.success.push_back(Op::Delete(old_key));
      }
    }
  }
  auto r = store_.Commit(txn);
  if (!r.ok()) return r.status();
  if (!r->succeeded) {
    if (lost_race != nullptr) *lost_race = true;
    return Status::Conflict("endpoint '" + rec.name + "' or the endpoint serving " + UrlText(rec.config) +
                            " was changed concurrently; try again");
  }
  return Status::Ok();
}

Result<bool> EndpointRegistry::Put(const std::string& name, const std::string& ini, const std::string& source) {
  auto cfg = ParseEndpointIni(name, ini);
  if (!cfg.ok()) return cfg.status();
  EndpointRecord rec;
  rec.name = name;
  rec.ini = ini;
  rec.source = source;
  rec.config = std::move(*cfg);
  Status written;
  bool created = false;
  // A transaction that lost to a concurrent writer on the same port is
  // validated again against what that writer left (bounded).
  for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
    auto guard = ValidateAgainstOthers(rec.config);
    if (!guard.ok()) return LostRace(guard.status(), attempt);
    auto existing = Get(name);
    int64_t expected = 0;
    if (existing.ok()) {
      if (existing->state == EndpointState::kDeleting) {
        return Status::Conflict("endpoint '" + name + "' is being removed; try again when it is gone");
      }
      rec.state = existing->state;
      expected = existing->mod_revision;
    } else if (!existing.status().IsNotFound()) {
      return existing.status();
    }
    created = expected == 0;
    bool lost = false;
    written = Write(rec, expected, existing.ok() ? &*existing : nullptr, *guard, &lost);
    if (!lost) break;
  }
  if (!written.ok()) return written;
  return created;
}

Status EndpointRegistry::Set(const std::string& name, const std::string& section, const std::string& key,
                             const std::string& value) {
  Status written;
  for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
    auto existing = Get(name);
    if (!existing.ok()) return existing.status();
    if (existing->state == EndpointState::kDeleting) {
      return Status::Conflict("endpoint '" + name + "' is being removed");
    }
    // On the text as stored, so keys the user left out keep following their
    // defaults; a `set` of the key in error also repairs an invalid record.
    auto changed = SetEndpointIniKey(name, existing->ini, section, key, value);
    if (!changed.ok()) return changed.status();
    auto guard = ValidateAgainstOthers(changed->first);
    if (!guard.ok()) return LostRace(guard.status(), attempt);
    EndpointRecord rec = *existing;
    rec.ini = std::move(changed->second);
    rec.config = std::move(changed->first);
    rec.problem.clear();
    rec.config_known = true;
    bool lost = false;
    written = Write(rec, existing->mod_revision, &*existing, *guard, &lost);
    if (!lost) break;
  }
  return written;
}

Status EndpointRegistry::LostRace(const Status& invalid, int attempt) {
  // What a concurrent writer just committed is what makes it invalid now.
  if (attempt == 0 || invalid.code() != Status::Code::kInvalidArgument) return invalid;
  return Status::Conflict(invalid.message() + " (changed concurrently)");
}

Status EndpointRegistry::SetState(const std::string& name, EndpointState state) {
  auto existing = Get(name);
  if (!existing.ok()) return existing.status();
  if (existing->state == EndpointState::kDeleting && state != EndpointState::kDeleting) {
    return Status::Conflict("endpoint '" + name + "' is being removed");
  }
  if (existing->state == state) return Status::Ok();
  if (!existing->problem.empty() && existing->ini.empty() && state != EndpointState::kDeleting) {
    return Status::Conflict("endpoint '" + name + "' cannot change state: " + existing->problem +
                            "; manage it again with a good file");
  }
  EndpointRecord rec = *existing;
  rec.state = state;
  return Write(rec, existing->mod_revision, &*existing, std::nullopt);
}

Status EndpointRegistry::Remove(const std::string& name) {
  auto existing = Get(name);
  Txn txn;
  txn.success.push_back(Op::Delete(EndpointKey(name)));
  txn.success.push_back(Op::Delete(LastGoodEndpointKey(name)));
  auto r = store_.Commit(txn);
  if (!r.ok()) return r.status();
  {
    std::lock_guard<std::mutex> lock(good_mu_);
    last_good_.erase(name);
  }
  if (!existing.ok() || !existing->config_known) return Status::Ok();
  // The claim goes only if it is still this endpoint's.
  const std::string claim_key = UrlClaimKey(ClaimOf(existing->config));
  auto claim = store_.Get(claim_key);
  if (!claim.ok() || !claim->has_value() || (*claim)->value != name) return claim.status();
  Txn release;
  release.compares.push_back(Compare::ModRevisionIs(claim_key, (*claim)->mod_revision));
  release.success.push_back(Op::Delete(claim_key));
  return store_.Commit(release).status();
}

bool ProcHostPortProbe::PortInUse(int port) const { return ListeningPorts().count(port) > 0; }

}  // namespace reactor
