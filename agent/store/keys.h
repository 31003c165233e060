// The layout of the agent's keys in the Store. Every record is keyed by
// endpoint (and, for per-host data, by host) so that several agents can share
// one etcd cluster (SPEC §13). Prefixes end in '/', so the prefix of endpoint
// "web" does not match endpoint "web2".
//
// REQUIRES of every name argument: IsValidKeySegment(name) (callers validate
// endpoint and manager names where they enter the system).
#pragma once

#include <cstdint>
#include <string>

namespace reactor {

/// Everything the agent stores.
inline const std::string kKeyRoot = "/reactor/";

/// Non-empty, no '/' and no NUL: one path segment of a key.
bool IsValidKeySegment(const std::string& segment);

/// Endpoint records: its INI and state JSON. Value: JSON.
std::string EndpointPrefix();
std::string EndpointKey(const std::string& endpoint);

/// The last endpoint record that read and validated, written with every
/// change: what the agent serves when the record itself no longer reads.
std::string LastGoodEndpointKey(const std::string& endpoint);

/// Which endpoint serves a URL ("host:port/path", the scheme left out: one
/// URL, one endpoint). Written in the same transaction as the endpoint, so
/// two concurrent creations of the same URL cannot both succeed.
std::string UrlClaimKey(const std::string& listen_key_and_path);

/// A host:port's guard: rewritten (value: the scheme) in the transaction of
/// every endpoint write on that host:port, so validations against the other
/// endpoints there (one scheme per port) cannot race.
std::string PortClaimKey(const std::string& listen_key);

/// Endpoint ownership (election, SPEC §13): the owning manager, under its lease.
std::string OwnerKey(const std::string& endpoint);
std::string OwnerPrefix();

/// What an endpoint's owner last decided (target, range, decision, problem),
/// for the other hosts' `status`. Written by the owner, fenced.
std::string EndpointStatusKey(const std::string& endpoint);
std::string EndpointStatusPrefix();

/// A host's slot ledger: JSON {"used": N}. Every placement and every removal
/// of an instance updates it by compare-and-swap in the same transaction as
/// the instance record, so concurrent owners never oversubscribe a host.
std::string SlotKey(const std::string& manager);
std::string SlotPrefix();

/// Cordoned hosts (no new placements); persistent, not under a lease.
std::string CordonKey(const std::string& manager);
std::string CordonPrefix();
/// Hosts being drained (`reactor managers drain`): cordoned, and their
/// instances move elsewhere one at a time. Persistent until uncordon.
std::string DrainKey(const std::string& manager);
std::string DrainPrefix();

/// Instances of an endpoint, one key each; the value names the host that runs it.
std::string InstancePrefix(const std::string& endpoint);
std::string InstanceKey(const std::string& endpoint, const std::string& instance_id);

/// An endpoint's event log; seq is zero-padded to 20 digits so key order is
/// numeric order.
std::string EventPrefix(const std::string& endpoint);
/// Every endpoint's event log (the parent of each EventPrefix).
std::string EventRootPrefix();
std::string EventKey(const std::string& endpoint, uint64_t seq);

/// Registered managers (hosts), each under its own lease.
std::string ManagerPrefix();
std::string ManagerKey(const std::string& manager);

/// Custom metrics pushed for an endpoint.
std::string CustomMetricPrefix(const std::string& endpoint);
std::string CustomMetricKey(const std::string& endpoint, const std::string& metric);

/// Per-backend traffic counters each host publishes for an endpoint, under the
/// host's lease; the owner sums them over hosts.
std::string CounterPrefix(const std::string& endpoint);
std::string CounterKey(const std::string& endpoint, const std::string& manager);

/// Scale to zero: requests a host's nginx holds for an endpoint with no
/// instance, under that host's lease (written by the host that hears the
/// wake, read by the deciding side; agent/scaler/wake_source.h).
inline std::string WakeRootPrefix() { return kKeyRoot + "wake/"; }
inline std::string WakePrefix(const std::string& endpoint) { return WakeRootPrefix() + endpoint + "/"; }
inline std::string WakeKey(const std::string& endpoint, const std::string& manager) {
  return WakePrefix(endpoint) + manager;
}

}  // namespace reactor
