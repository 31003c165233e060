#include "agent/cloud/static_cloud.h"

#include <cstdint>
#include <cstdio>
#include <map>

namespace reactor {

namespace {

std::string AddressHash(const std::string& address) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : address) {
    h ^= c;
    h *= 16777619u;
  }
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", h);
  return buf;
}

}  // namespace

std::string StaticInstanceId(const HostPort& address) {
  std::string id = "static-";
  for (char c : address.host) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    id.push_back(keep ? c : '-');
  }
  id += "-" + std::to_string(address.port);
  return id;
}

std::vector<InstanceInfo> StaticInstances(const EndpointConfig& endpoint) {
  std::vector<HostPort> distinct;
  for (const HostPort& hp : endpoint.static_instances) {
    bool seen = false;
    for (const HostPort& d : distinct) seen = seen || d == hp;
    if (!seen) distinct.push_back(hp);
  }
  std::map<std::string, int> id_count;
  for (const HostPort& hp : distinct) ++id_count[StaticInstanceId(hp)];

  std::vector<InstanceInfo> out;
  out.reserve(distinct.size());
  for (const HostPort& hp : distinct) {
    InstanceInfo info;
    info.instance_id = StaticInstanceId(hp);
    if (id_count[info.instance_id] > 1) info.instance_id += "-" + AddressHash(hp.ToString());
    info.endpoint = endpoint.name;
    info.address = hp.ToString();
    info.running = true;
    info.detail = "static address";
    out.push_back(std::move(info));
  }
  return out;
}

Result<InstanceInfo> StaticCloud::Launch(const LaunchRequest& /*req*/) {
  return Status::InvalidArgument("static endpoints are not launched");
}

Status StaticCloud::Stop(const std::string& /*instance_id*/, Duration /*grace*/) { return Status::Ok(); }

Result<std::vector<InstanceInfo>> StaticCloud::List(const std::string& /*manager*/) {
  return std::vector<InstanceInfo>{};
}

Result<InstanceInfo> StaticCloud::Inspect(const std::string& instance_id) {
  return Status::NotFound("no static instance " + instance_id + " runs here (static addresses are not run)");
}

}  // namespace reactor
