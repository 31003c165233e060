// Traffic across the cluster (SPEC §13, issue 12 "Traffic"). Every host's
// nginx fronts every endpoint, so each host's access log holds only part of
// an endpoint's traffic. Each agent publishes what its own nginx saw
// (TrafficPublisher), and whoever decides for the endpoint sums the hosts'
// counters per second and per backend before averaging (ClusterTraffic):
// the endpoint's total, not one front end's share, and never divided by the
// number of front ends (Gridcentric Reactor's mistake).
//
// The record: CounterKey(endpoint, manager), under the host's lease (a gone
// host's record goes with its lease). Value: lines of space-separated
// fields (compact and quick to parse: a reader parses every host's record
// of every endpoint it decides for, each second), e.g.
//   T1 1700000012345 1700000000000 1700000002000 1700000012000
//   A 10.0.0.2:80 3
//   S 1700000011000 7 12345 2
//   H 0 3 57 1
//   B 10.0.0.2:80 4 999 1 3 0.303
//   B 10.0.0.3:80 3 800 0 3 0.1
// T1 at since from to (version 1; wall ms):
//     at     when the record was written;
//     since  from when this host has seen every line (its collector's
//            start; lines before may be missing);
//     from, to  the seconds published, as the wall ms of their starts:
//            the last MetricsCollector::kMinRetentionSeconds + 1 seconds.
// A backend connections: ESTABLISHED connections from this host's nginx now
//     (backends with none are left out).
// S start requests bytes errors: one second with traffic (start in wall
//     ms), ascending, each followed by
// H bin count ...: its response-time histogram (ResponseBins; may be empty),
// B backend hits bytes errors timed response_sum: its backends, in the
//     order the collector saw them; response_sum in the shortest form that
//     reads back as the same double.
// The buckets are exactly the collector's per-second buckets (traffic_window.h),
// so a reader that sums them second by second gets what the collector would
// have summed had it seen every host's log. A second's start is the host's
// monotonic second mapped onto its wall clock; a reader maps it back onto
// its own clock (to the nearest second), so hosts need synchronised wall
// clocks (NTP) and a bucket of another host lands within ±0.5 s.
// Only seconds with traffic have a bucket; a second in [from, to] without
// one had none. Size: at most 11 seconds; about 4.8 KiB with 10 busy
// backends (tests/bench/traffic_bench.cc), each second being re-sent in 11
// records so that a reader that reads at least every 10 s misses nothing.
//
// Writes: only when something changed (a bucket in the published range, the
// active counts, the lease), plus once a second while connections are open
// (so a reader can tell a live count from a stale one); a record whose
// buckets have all aged out and without connections is deleted. All
// endpoints' writes of one round go in one transaction, split at
// kMaxOpsPerTxn operations (etcd's --max-txn-ops) or kMaxTxnBytes of values.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/metrics/metrics_collector.h"
#include "agent/metrics/tcp_table.h"
#include "agent/metrics/traffic_averages.h"
#include "agent/metrics/traffic_window.h"
#include "agent/store/store.h"

namespace reactor {

/// One host's published traffic of one endpoint (the value above).
struct HostTraffic {
  struct Second {
    int64_t start_ms = 0;          // wall ms of the second's start
    TrafficWindow::Bucket counts;  // counts.second is not encoded
  };
  int64_t at_ms = 0;
  int64_t since_ms = 0;
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::vector<Second> seconds;        // ascending by start_ms
  std::map<std::string, int> active;  // backends with at least one connection
};

std::string EncodeHostTraffic(const HostTraffic& t);
/// InvalidArgument saying what is wrong (the reader skips such a record).
Result<HostTraffic> DecodeHostTraffic(const std::string& value);

/// Seconds each record carries: the collector always keeps this many.
inline constexpr int64_t kPublishedSeconds = MetricsCollector::kMinRetentionSeconds + 1;

/// Writes this host's counters of every endpoint (see the top of the file).
/// Thread: one caller (the agent loop), after MetricsCollector::Poll.
class TrafficPublisher {
 public:
  static constexpr size_t kMaxOpsPerTxn = 128;        // etcd's --max-txn-ops
  static constexpr size_t kMaxTxnBytes = 512 * 1024;  // of values; etcd takes 1.5 MiB of base64'd request
  struct Options {
    std::string manager;  // this host's name; REQUIRES IsValidKeySegment
    /// The host's lease (HostMembership); 0 while it has none (nothing is written).
    std::function<LeaseId()> lease;
    /// How often an unchanged record with open connections is rewritten.
    Duration heartbeat{1000};
    size_t max_ops_per_txn = kMaxOpsPerTxn;
    size_t max_txn_bytes = kMaxTxnBytes;
  };
  /// Every reference must outlive the publisher.
  TrafficPublisher(Options options, const MetricsCollector& collector, Store& store);

  /// Writes what changed since the last call. `members`: every endpoint's
  /// instance addresses as nginx names them (their `active` counts are
  /// published even without traffic); `tcp`: this host's socket table.
  /// On an error (store unreachable, lease gone) the transactions not yet
  /// committed are left to the next call (those committed before stay).
  Status Publish(const std::map<std::string, std::vector<std::string>>& members, const std::vector<TcpSocket>& tcp);

  struct Stats {
    uint64_t writes = 0;        // puts and deletes committed
    uint64_t transactions = 0;  // commits that succeeded
  };
  Stats stats() const { return stats_; }

 private:
  struct Written {
    HostTraffic value;
    LeaseId lease = 0;
  };
  bool Changed(const HostTraffic& now, const Written* before, LeaseId lease, int64_t wall_ms) const;

  const Options options_;
  const MetricsCollector& collector_;
  Store& store_;
  // State below is used by the one calling thread only.
  int64_t offset_ms_ = 0;  // wall − monotonic, kept while it moves less than 250 ms
  bool offset_known_ = false;
  std::map<std::string, Written> written_;  // endpoint → the record as last committed
  Stats stats_;
};

/// Every host's published counters of an endpoint, summed per second and per
/// backend and averaged exactly as MetricsCollector::Metrics averages one
/// host's log (the metric definitions are in metrics_collector.h):
///  - the window's seconds and span are the collector's (WindowSpanAt);
///  - lines before the last kMinRetentionSeconds of this reader's first read
///    (or of a read after a pause longer than the published seconds allow)
///    are unknown, as they are to a collector for an endpoint it has just
///    started to track; so are the lines before a host's `since`;
///  - older seconds come from this reader's own history of what it read
///    (kept for the largest window asked + 2 s, as the collector keeps);
///  - a host whose record is older than the window plus kStaleSlack, or
///    gone, adds no `active` and no `since`; its buckets count only where
///    they fall in the window, so a host gone for longer adds nothing;
///  - `active` is the sum over hosts of each one's connections to a backend.
/// On one host (one agent) the result equals MetricsCollector::Metrics on the
/// same traffic, provided the record was published after the collector's
/// last Poll (the agent publishes each round, before the policy reads).
/// unparsed and log_problem are left empty (they are about one host's log).
/// Thread-safe (one mutex; store reads are made with it held).
class ClusterTraffic {
 public:
  static constexpr Duration kStaleSlack{2000};
  struct Options {
    /// Reads of one endpoint closer together than this reuse the last read
    /// (the lean policy asks for two windows in one decision).
    Duration reread_after{100};
  };
  /// Both must outlive this object.
  ClusterTraffic(Store& store, Clock& clock);
  ClusterTraffic(Store& store, Clock& clock, Options options);

  /// Unavailable (or the store's error) when the records cannot be read.
  Result<EndpointMetrics> Metrics(const std::string& endpoint, Duration window,
                                  const std::vector<std::string>& backends_in_service);
  /// Records that did not decode, since start (each is reported once in the
  /// agent log and skipped).
  uint64_t Undecodable() const;

 private:
  struct HostHistory {
    std::map<int64_t, TrafficWindow::Bucket> seconds;  // this reader's monotonic second → bucket
    int64_t mod_revision = 0;                          // of the record last read
    bool present = false;                              // the record exists now
    int64_t at_ms = 0;
    int64_t since_s = 0;  // on this reader's monotonic clock
    std::map<std::string, int> active;
  };
  struct EndpointHistory {
    std::map<std::string, HostHistory> hosts;  // by manager
    bool read = false;
    TimePoint last_read{};
    int64_t last_read_s = 0;
    int64_t complete_since_s = 0;  // this reader's history may miss lines before it
    int64_t retention_s = MetricsCollector::kMinRetentionSeconds;
    TimePoint last_query{};
  };
  Status ReadLocked(const std::string& endpoint, EndpointHistory& h, int64_t now_ms, int64_t now_s);
  int64_t ToLocalSecond(int64_t wall_ms) const;

  Store& store_;
  Clock& clock_;
  const Options options_;

  mutable std::mutex mu_;
  // State below is protected by mu_.
  int64_t offset_ms_ = 0;  // wall − monotonic, kept while it moves less than 250 ms
  bool offset_known_ = false;
  std::map<std::string, EndpointHistory> endpoints_;
  uint64_t undecodable_ = 0;
};

}  // namespace reactor
