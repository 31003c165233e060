#include "agent/instances/instance_record.h"

#include <nlohmann/json.hpp>

#include "agent/store/keys.h"

namespace reactor {

const char* InstanceStateName(InstanceState s) {
  switch (s) {
    case InstanceState::kStarting: return "starting";
    case InstanceState::kActive: return "active";
    case InstanceState::kDraining: return "draining";
    case InstanceState::kErrored: return "errored";
  }
  return "starting";
}

namespace {

InstanceState StateFromName(const std::string& s) {
  if (s == "active") return InstanceState::kActive;
  if (s == "draining") return InstanceState::kDraining;
  if (s == "errored") return InstanceState::kErrored;
  return InstanceState::kStarting;
}

}  // namespace

std::string EncodeInstance(const InstanceRecord& r) {
  nlohmann::json j = {{"id", r.id},
                      {"endpoint", r.endpoint},
                      {"address", r.address},
                      {"state", InstanceStateName(r.state)},
                      {"manager", r.manager},
                      {"cloud", r.cloud},
                      {"slots", r.slots},
                      {"created_ms", r.created_ms},
                      {"state_since_ms", r.state_since_ms},
                      {"reason", r.reason},
                      {"activated_ms", r.activated_ms}};
  return j.dump();
}

Result<InstanceRecord> DecodeInstance(const KeyValue& kv) {
  auto j = nlohmann::json::parse(kv.value, nullptr, false);
  if (!j.is_object()) return Status::Internal("malformed instance record at " + kv.key);
  InstanceRecord r;
  // A field of the wrong type throws in json::value(); a record that does
  // not read is reported, never an exception in the loop.
  try {
    r.id = j.value("id", "");
    r.endpoint = j.value("endpoint", "");
    r.address = j.value("address", "");
    r.state = StateFromName(j.value("state", "starting"));
    r.manager = j.value("manager", "");
    r.cloud = j.value("cloud", "");
    r.slots = j.value("slots", 0);
    r.created_ms = j.value("created_ms", int64_t{0});
    r.state_since_ms = j.value("state_since_ms", int64_t{0});
    r.reason = j.value("reason", "");
    r.activated_ms = j.value("activated_ms", int64_t{0});
  } catch (const nlohmann::json::exception& e) {
    return Status::Internal("malformed instance record at " + kv.key + ": " + e.what());
  }
  r.mod_revision = kv.mod_revision;
  if (r.id.empty() || r.endpoint.empty()) return Status::Internal("instance record without id at " + kv.key);
  return r;
}

Result<std::vector<InstanceRecord>> InstanceTable::ListAll(std::vector<std::string>* unreadable) {
  auto kvs = store_.GetPrefix(kKeyRoot + "instances/");
  if (!kvs.ok()) return kvs.status();
  std::vector<InstanceRecord> out;
  for (const auto& kv : *kvs) {
    auto r = DecodeInstance(kv);
    if (r.ok()) {
      out.push_back(std::move(*r));
    } else if (unreadable != nullptr) {
      unreadable->push_back(kv.key.substr(kv.key.rfind('/') + 1));
    }
  }
  return out;
}

Result<std::vector<InstanceRecord>> InstanceTable::List(const std::string& endpoint) {
  auto kvs = store_.GetPrefix(InstancePrefix(endpoint));
  if (!kvs.ok()) return kvs.status();
  std::vector<InstanceRecord> out;
  for (const auto& kv : *kvs) {
    auto r = DecodeInstance(kv);
    if (r.ok()) out.push_back(std::move(*r));
  }
  return out;
}

Status InstanceTable::Put(const InstanceRecord& r) {
  return store_.Put(InstanceKey(r.endpoint, r.id), EncodeInstance(r)).status();
}

Status InstanceTable::Remove(const std::string& endpoint, const std::string& id) {
  return store_.Delete(InstanceKey(endpoint, id));
}

}  // namespace reactor
