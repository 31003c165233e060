#include "agent/store/keys.h"

#include <cstdio>

namespace reactor {
namespace {

std::string Kind(const char* kind) { return kKeyRoot + kind + "/"; }

}  // namespace

bool IsValidKeySegment(const std::string& segment) {
  return !segment.empty() && segment.find('/') == std::string::npos && segment.find('\0') == std::string::npos;
}

std::string EndpointPrefix() { return Kind("endpoints"); }
std::string EndpointKey(const std::string& endpoint) { return EndpointPrefix() + endpoint; }

std::string LastGoodEndpointKey(const std::string& endpoint) { return Kind("endpoint-good") + endpoint; }

std::string UrlClaimKey(const std::string& listen_key_and_path) {
  // One key segment: '/' and '%' are escaped.
  std::string seg;
  for (char c : listen_key_and_path) {
    if (c == '%')
      seg += "%25";
    else if (c == '/')
      seg += "%2F";
    else
      seg += c;
  }
  return Kind("url-claims") + seg;
}

std::string PortClaimKey(const std::string& listen_key) { return Kind("port-claims") + listen_key; }

std::string OwnerKey(const std::string& endpoint) { return Kind("owners") + endpoint; }
std::string OwnerPrefix() { return Kind("owners"); }

std::string EndpointStatusKey(const std::string& endpoint) { return Kind("endpoint-status") + endpoint; }
std::string EndpointStatusPrefix() { return Kind("endpoint-status"); }

std::string SlotKey(const std::string& manager) { return Kind("slots") + manager; }
std::string SlotPrefix() { return Kind("slots"); }

std::string CordonKey(const std::string& manager) { return Kind("cordons") + manager; }
std::string CordonPrefix() { return Kind("cordons"); }
std::string DrainKey(const std::string& manager) { return Kind("drains") + manager; }
std::string DrainPrefix() { return Kind("drains"); }

std::string InstancePrefix(const std::string& endpoint) { return Kind("instances") + endpoint + "/"; }
std::string InstanceKey(const std::string& endpoint, const std::string& instance_id) {
  return InstancePrefix(endpoint) + instance_id;
}

std::string EventPrefix(const std::string& endpoint) { return Kind("events") + endpoint + "/"; }
std::string EventRootPrefix() { return Kind("events"); }
std::string EventKey(const std::string& endpoint, uint64_t seq) {
  char digits[21];
  std::snprintf(digits, sizeof(digits), "%020llu", static_cast<unsigned long long>(seq));
  return EventPrefix(endpoint) + digits;
}

std::string ManagerPrefix() { return Kind("managers"); }
std::string ManagerKey(const std::string& manager) { return ManagerPrefix() + manager; }

std::string CustomMetricPrefix(const std::string& endpoint) { return Kind("metrics") + endpoint + "/"; }
std::string CustomMetricKey(const std::string& endpoint, const std::string& metric) {
  return CustomMetricPrefix(endpoint) + metric;
}

std::string CounterPrefix(const std::string& endpoint) { return Kind("counters") + endpoint + "/"; }
std::string CounterKey(const std::string& endpoint, const std::string& manager) {
  return CounterPrefix(endpoint) + manager;
}

}  // namespace reactor
