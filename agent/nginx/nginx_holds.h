// Scale to zero, nginx's side as the agent reads it: what the control
// server's GET /wakes (the agent's long poll for wake notices) and GET /holds
// (hold statistics) answer (templates/reactor_balancer.lua). Pure parsers:
// a malformed body is an error, never a partial result.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/common/status.h"

namespace reactor {

/// An endpoint's held requests as nginx reports them.
struct HeldRequests {
  std::string endpoint;
  int held = 0;          // requests held now
  int64_t since_ms = 0;  // wall ms of the open hold's first request; 0 = no hold open
  bool operator==(const HeldRequests& o) const {
    return endpoint == o.endpoint && held == o.held && since_ms == o.since_ms;
  }
};

/// GET /wakes: the notice sequence nginx is at, and the endpoints with a
/// notice since the one asked for (each once).
struct WakeNotices {
  uint64_t seq = 0;
  std::vector<HeldRequests> endpoints;
};
/// Body: "<seq>\n" then "<endpoint> <held> <since_ms>" lines.
Result<WakeNotices> ParseWakeNotices(const std::string& body);

/// One endpoint's hold statistics since nginx started.
struct HoldStats {
  int held = 0;
  uint64_t wakes = 0;             // holds opened (wake notices)
  uint64_t served = 0;            // held requests that proceeded to an instance
  uint64_t timed_out = 0;         // answered 503 (or redirect) after hold_timeout
  uint64_t rejected = 0;          // answered 503 at once: hold_max requests were held
  double wait_seconds_sum = 0;    // of served + timed_out
  std::vector<uint64_t> buckets;  // per bound, not cumulative; the last is +Inf
  uint64_t Waited() const { return served + timed_out; }
};
struct HoldReport {
  std::vector<double> bounds;  // histogram upper bounds, seconds, ascending
  std::map<std::string, HoldStats> endpoints;
};
/// Body: "le <bounds...>\n" then "<endpoint> <held> <wakes> <served>
/// <timeout> <rejected> <wait_ms> <bucket>..." lines (bounds + 1 buckets).
Result<HoldReport> ParseHoldReport(const std::string& body);

}  // namespace reactor
