#include "agent/endpoint/endpoint_config.h"

#include <tuple>

namespace reactor {

const char* CloudKindName(CloudKind k) {
  switch (k) {
    case CloudKind::kProcess: return "process";
    case CloudKind::kDocker: return "docker";
    case CloudKind::kStatic: return "static";
  }
  return "process";
}

const char* BalanceName(Balance b) {
  switch (b) {
    case Balance::kRoundRobin: return "round_robin";
    case Balance::kLeastConn: return "least_conn";
    case Balance::kIpHash: return "ip_hash";
  }
  return "round_robin";
}

const char* PolicyKindName(PolicyKind k) {
  switch (k) {
    case PolicyKind::kLean: return "lean";
    case PolicyKind::kReactor: return "reactor";
    case PolicyKind::kMidpoint: return "midpoint";
    case PolicyKind::kHpa: return "hpa";
  }
  return "lean";
}

const char* PlacementKindName(PlacementKind k) {
  switch (k) {
    case PlacementKind::kSpread: return "spread";
    case PlacementKind::kPack: return "pack";
    case PlacementKind::kRoundRobin: return "round_robin";
  }
  return "spread";
}

namespace {

auto Tie(const EndpointUrl& u) { return std::tie(u.scheme, u.host, u.port, u.path); }
auto Tie(const ScalingConfig& s) {
  return std::tie(s.min_instances, s.max_instances, s.rules, s.ramp_limit, s.window, s.scale_down_delay,
                  s.drain_timeout, s.policy, s.scale_up_window, s.headroom_percent, s.predict, s.placement,
                  s.idle_timeout);
}
auto Tie(const HealthConfig& h) { return std::tie(h.path, h.interval, h.timeout, h.rise, h.fall); }
auto Tie(const ProcessConfig& p) { return std::tie(p.command, p.environment, p.working_dir, p.slots); }
auto Tie(const DockerConfig& d) {
  return std::tie(d.image, d.command, d.environment, d.user, d.mem_limit, d.dns, d.hostname, d.slots);
}
auto Tie(const LoadBalancerConfig& l) {
  return std::tie(l.balance, l.keepalive, l.ssl_certificate, l.ssl_key, l.redirect, l.hold_timeout, l.hold_max);
}

}  // namespace

bool operator==(const EndpointConfig& a, const EndpointConfig& b) {
  return a.name == b.name && Tie(a.url) == Tie(b.url) && a.port == b.port && a.cloud == b.cloud &&
         a.static_instances == b.static_instances && a.weight == b.weight && Tie(a.scaling) == Tie(b.scaling) &&
         Tie(a.health) == Tie(b.health) && Tie(a.process) == Tie(b.process) && Tie(a.docker) == Tie(b.docker) &&
         Tie(a.lb) == Tie(b.lb);
}

}  // namespace reactor
