// An endpoint's configuration: the typed form of its INI file (SPEC.md §4).
// Produced only by ParseEndpointIni / SetEndpointKey (endpoint_parser.h), so every value here
// has been validated: names, hosts, paths and file paths cannot inject nginx
// directives or shell syntax.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "agent/common/clock.h"

namespace reactor {

enum class CloudKind { kProcess, kDocker, kStatic };
enum class Balance { kRoundRobin, kLeastConn, kIpHash };

const char* CloudKindName(CloudKind k);
const char* BalanceName(Balance b);

/// A parsed `url = scheme://[host][:port][/path]`.
struct EndpointUrl {
  std::string scheme = "http";  // http | https
  std::string host;             // empty = all addresses
  int port = 80;
  std::string path = "/";  // always starts and ends with '/'
  /// "host:port" or ":port", the key by which endpoints share an nginx server.
  std::string ListenKey() const { return host + ":" + std::to_string(port); }
};

struct HostPort {
  std::string host;
  int port = 0;
  std::string ToString() const { return host + ":" + std::to_string(port); }
  bool operator==(const HostPort& o) const { return host == o.host && port == o.port; }
};

/// How the scaling policy picks a count inside the rules' range (rules_policy.h).
enum class PolicyKind {
  kLean,      // scale up on scale_up_window; step down to the cheaper edge with headroom
  kReactor,   // stay anywhere in the range (nearest edge when outside), as Reactor did
  kMidpoint,  // Gridcentric Reactor's own: stay in the range, else jump to its midpoint; no stabilisation
  kHpa,       // the Kubernetes HPA's defaults (agent/scaler/hpa_recommender.h)
};
const char* PolicyKindName(PolicyKind k);

/// Where an endpoint's owner places new instances (SPEC §13).
enum class PlacementKind {
  kSpread,      // least utilised host first (the default)
  kPack,        // most utilised host that fits: frees whole hosts
  kRoundRobin,  // hosts in name order, one after another (the seed orchestrators' way)
};
const char* PlacementKindName(PlacementKind k);

struct ScalingConfig {
  int min_instances = 1;
  int max_instances = 1;
  std::string rules;  // validated rule text; parse with rules/ when needed
  int ramp_limit = 5;
  Duration window{5000};
  Duration scale_down_delay{30000};
  Duration drain_timeout{60000};
  PolicyKind policy = PolicyKind::kLean;
  PlacementKind placement = PlacementKind::kSpread;
  Duration scale_up_window{1000};  // lean: the metrics window scale-up decisions use
  int headroom_percent = 22;       // lean: margin kept below every upper bound
  Duration predict{0};             // lean: how far ahead scale-up extrapolates a rising trend (0 = off)
  /// Scale to zero: with min_instances = 0, the endpoint drains to zero
  /// instances after this long without a request (and with the rules' range
  /// including 0). 0 = never: it keeps at least one instance once it has one.
  Duration idle_timeout{0};
};

struct HealthConfig {
  std::string path = "/";  // empty = TCP connect only
  Duration interval{1000};
  Duration timeout{1000};
  int rise = 1;
  int fall = 3;
};

struct ProcessConfig {
  std::string command;  // ${PORT}, ${NAME}, ${ENDPOINT} expand at launch
  std::vector<std::pair<std::string, std::string>> environment;
  std::string working_dir;
  int slots = 1;
};

struct DockerConfig {
  std::string image;
  std::string command;
  std::vector<std::pair<std::string, std::string>> environment;
  std::string user;
  uint64_t mem_limit = 0;
  std::vector<std::string> dns;
  std::string hostname;
  int slots = 10;
};

struct LoadBalancerConfig {
  Balance balance = Balance::kRoundRobin;
  int keepalive = 0;
  std::string ssl_certificate;
  std::string ssl_key;
  std::string redirect;
  /// With no healthy instance (a running endpoint that may scale): how long
  /// nginx holds a request while an instance starts, and how many it holds
  /// at most; beyond either, 503 (with Retry-After). 0 = no hold.
  Duration hold_timeout{30000};
  int hold_max = 1000;
};

struct EndpointConfig {
  std::string name;
  EndpointUrl url;
  int port = 8000;  // the application's port inside an instance
  CloudKind cloud = CloudKind::kProcess;
  std::vector<HostPort> static_instances;
  int weight = 1;
  ScalingConfig scaling;
  HealthConfig health;
  ProcessConfig process;
  DockerConfig docker;
  LoadBalancerConfig lb;

  /// TLS on the listen port: both ssl_certificate and ssl_key are set
  /// (always so for an https url; an http url with both also gets TLS).
  bool TlsEnabled() const { return !lb.ssl_certificate.empty() && !lb.ssl_key.empty(); }

  /// Slots one instance costs on its manager.
  int Slots() const {
    return cloud == CloudKind::kDocker ? docker.slots : cloud == CloudKind::kProcess ? process.slots : 0;
  }
};

/// Field-by-field equality (name included).
bool operator==(const EndpointConfig& a, const EndpointConfig& b);
inline bool operator!=(const EndpointConfig& a, const EndpointConfig& b) { return !(a == b); }

}  // namespace reactor
