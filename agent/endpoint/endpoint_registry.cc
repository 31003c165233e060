#include "agent/endpoint/endpoint_registry.h"

#include <nlohmann/json.hpp>

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

Result<EndpointRecord> Decode(const KeyValue& kv) {
  auto j = nlohmann::json::parse(kv.value, nullptr, false);
  if (!j.is_object() || !j.contains("name") || !j.contains("ini")) {
    return Status::Internal("malformed endpoint record at " + kv.key);
  }
  EndpointRecord rec;
  rec.name = j["name"].get<std::string>();
  rec.ini = j["ini"].get<std::string>();
  rec.source = j.value("source", "api");
  auto st = ParseEndpointState(j.value("state", "running"));
  if (!st.ok()) return st.status();
  rec.state = *st;
  rec.mod_revision = kv.mod_revision;
  auto cfg = ParseEndpointIni(rec.name, rec.ini);
  if (!cfg.ok()) return cfg.status().WithContext("stored endpoint " + rec.name);
  rec.config = std::move(*cfg);
  return rec;
}

std::string Encode(const EndpointRecord& rec) {
  nlohmann::json j = {{"name", rec.name}, {"ini", rec.ini}, {"state", EndpointStateName(rec.state)},
                      {"source", rec.source}};
  return j.dump();
}

}  // namespace

Result<std::vector<EndpointRecord>> EndpointRegistry::List() const {
  auto kvs = store_.GetPrefix(EndpointPrefix());
  if (!kvs.ok()) return kvs.status();
  std::vector<EndpointRecord> out;
  for (const auto& kv : *kvs) {
    auto rec = Decode(kv);
    if (rec.ok()) out.push_back(std::move(*rec));
  }
  return out;
}

Result<EndpointRecord> EndpointRegistry::Get(const std::string& name) const {
  if (!IsValidKeySegment(name)) return Status::NotFound("no endpoint named '" + name + "'");
  auto kv = store_.Get(EndpointKey(name));
  if (!kv.ok()) return kv.status();
  if (!kv->has_value()) return Status::NotFound("no endpoint named '" + name + "'");
  return Decode(**kv);
}

Status EndpointRegistry::ValidateAgainstOthers(const EndpointConfig& cfg) const {
  auto all = List();
  if (!all.ok()) return all.status();
  bool port_shared_with_ours = false;
  for (const auto& other : *all) {
    if (other.name == cfg.name) continue;
    const EndpointUrl& a = cfg.url;
    const EndpointUrl& b = other.config.url;
    if (a.port != b.port) continue;
    port_shared_with_ours = true;
    if (a.host == b.host && a.path == b.path) {
      return Status::InvalidArgument("[endpoint] url: " + a.scheme + "://" + a.ListenKey() + a.path +
                                     " is already served by endpoint '" + other.name + "'");
    }
    if (a.host == b.host && a.scheme != b.scheme) {
      return Status::InvalidArgument("[endpoint] url: port " + std::to_string(a.port) + " is served as " +
                                     b.scheme + " by endpoint '" + other.name + "'; one port has one scheme");
    }
  }
  if (!port_shared_with_ours && probe_ != nullptr && probe_->PortInUse(cfg.url.port)) {
    // A port already used by one of our own endpoints is our nginx; any other
    // listener on it is someone else's and nginx could not bind it.
    auto existing = Get(cfg.name);
    bool ours = existing.ok() && existing->config.url.port == cfg.url.port;
    if (!ours) {
      return Status::InvalidArgument("[endpoint] url: port " + std::to_string(cfg.url.port) +
                                     " is already in use on this host by another program");
    }
  }
  return Status::Ok();
}

Status EndpointRegistry::Write(const EndpointRecord& rec, int64_t expected_revision) {
  auto r = store_.CompareAndSwap(EndpointKey(rec.name), expected_revision, Encode(rec));
  if (!r.ok() && r.status().IsConflict()) {
    return Status::Conflict("endpoint '" + rec.name + "' was changed concurrently; try again");
  }
  return r.status();
}

Result<bool> EndpointRegistry::Put(const std::string& name, const std::string& ini, const std::string& source) {
  auto cfg = ParseEndpointIni(name, ini);
  if (!cfg.ok()) return cfg.status();
  REACTOR_RETURN_IF_ERROR(ValidateAgainstOthers(*cfg));
  auto existing = Get(name);
  EndpointRecord rec;
  rec.name = name;
  rec.ini = ini;
  rec.source = source;
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
  REACTOR_RETURN_IF_ERROR(Write(rec, expected));
  return expected == 0;
}

Status EndpointRegistry::Set(const std::string& name, const std::string& section, const std::string& key,
                             const std::string& value) {
  auto existing = Get(name);
  if (!existing.ok()) return existing.status();
  auto cfg = SetEndpointKey(existing->config, section, key, value);
  if (!cfg.ok()) return cfg.status();
  REACTOR_RETURN_IF_ERROR(ValidateAgainstOthers(*cfg));
  EndpointRecord rec = *existing;
  rec.ini = SerializeEndpointIni(*cfg);
  return Write(rec, existing->mod_revision);
}

Status EndpointRegistry::SetState(const std::string& name, EndpointState state) {
  auto existing = Get(name);
  if (!existing.ok()) return existing.status();
  if (existing->state == EndpointState::kDeleting && state != EndpointState::kDeleting) {
    return Status::Conflict("endpoint '" + name + "' is being removed");
  }
  if (existing->state == state) return Status::Ok();
  EndpointRecord rec = *existing;
  rec.state = state;
  return Write(rec, existing->mod_revision);
}

Status EndpointRegistry::Remove(const std::string& name) { return store_.Delete(EndpointKey(name)); }

bool ProcHostPortProbe::PortInUse(int port) const { return ListeningPorts().count(port) > 0; }

}  // namespace reactor
