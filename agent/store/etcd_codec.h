// The etcd v3 JSON gateway's wire format (etcd 3.4, grpc-gateway v1): request
// bodies built from the Store's types, and responses parsed back into them.
// Pure functions, no I/O, so each of the gateway's traps has a unit test on a
// recorded response (tests/unit/etcd_codec_test.cc):
// - int64 fields (revisions, versions, lease IDs up to 2^63-1) are JSON
//   strings; they are parsed as integers, never through a double;
// - fields with default values are omitted: a failed txn has no `succeeded`,
//   a range without a match has no `kvs`, a PUT event has no `type`, a
//   watch_id of 0 is absent, a keepalive on an expired lease has no `TTL`;
// - keys and values are base64;
// - streaming calls (watch, keepalive, snapshot) answer one JSON object per
//   line, each wrapped in {"result": ...} or {"error": {...}};
// - a watch's start_revision 0 means "from now": never sent (a watch after
//   revision R starts at R + 1 >= 1);
// - a compacted watch is answered `canceled` with `compact_revision`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/status.h"
#include "agent/store/store.h"

namespace reactor {
namespace etcd {

/// etcd's defaults (--max-txn-ops, --max-request-bytes) and our value cap.
inline constexpr size_t kMaxTxnOps = 128;
inline constexpr size_t kMaxValueBytes = 1 << 20;              // 1 MiB, refused before sending
inline constexpr size_t kMaxRequestBytes = 3 * (1 << 20) / 2;  // 1.5 MiB: etcd's request limit

std::string Base64Encode(const std::string& bytes);
/// InvalidArgument on anything that is not canonical base64.
Result<std::string> Base64Decode(const std::string& text);

/// The range_end that makes [key, range_end) the keys starting with
/// `prefix`: the prefix with its last byte incremented (trailing 0xFF bytes
/// dropped first); "\0" (every key >= key) when there is none. An empty
/// prefix is sent as key "\0", range_end "\0" (all keys).
std::string PrefixRangeEnd(const std::string& prefix);

// --- requests --------------------------------------------------------------
// Each returns the JSON body, or InvalidArgument when etcd would refuse it
// (over 128 ops in a branch, a value over 1 MiB, a request over 1.5 MiB).

struct RangeArgs {
  std::string key;
  std::optional<std::string> range_end;  // nullopt: the one key
  int64_t limit = 0;                     // 0 = no limit
  int64_t revision = 0;                  // 0 = the current revision
  bool count_only = false;
};
/// The keys starting with `prefix` ("" = every key).
RangeArgs PrefixRange(const std::string& prefix);
std::string RangeRequest(const RangeArgs& args);
Result<std::string> TxnRequest(const Txn& txn);
std::string LeaseGrantRequest(Duration ttl);  // TTL in whole seconds, rounded up, at least 1
std::string LeaseIdRequest(LeaseId lease);    // keepalive, revoke, timetolive
/// Watch of `prefix` from revision `after_revision + 1`.
std::string WatchCreateRequest(const std::string& prefix, int64_t after_revision);
/// Compacts history before `revision`. `physical`: the answer waits until
/// the compaction has been applied to the member's database (slow on a big
/// one); without it etcd answers once the compaction is committed and
/// removes old revisions in the background (etcd's own auto-compaction).
std::string CompactionRequest(int64_t revision, bool physical = true);
/// The turn-taking transaction of periodic compaction (agent/store/etcd_compaction.h):
/// iff `key`'s version is `version` (0: absent), put `revision` (decimal
/// text) into it; else read it.
std::string CompactionClaimRequest(const std::string& key, int64_t version, int64_t revision);
std::string AuthenticateRequest(const std::string& user, const std::string& password);

// --- responses -------------------------------------------------------------

/// A gateway error body: {"error": "...", "code": N, "message": "..."} (unary)
/// or {"error": {"grpc_code": N, "http_code": M, "message": "..."}} (stream).
struct GatewayError {
  int grpc_code = 0;  // 14 = Unavailable, 5 = NotFound, 16 = Unauthenticated, ...
  std::string message;
};
/// The error in `body`, if it is one.
std::optional<GatewayError> ParseGatewayError(const std::string& body);

/// Maps a gateway error to a Status: NotFound (lease not found), InvalidArgument,
/// Unauthenticated, Unavailable (no leader, timeouts, leader changed), else Internal.
Status ErrorStatus(const GatewayError& error, const std::string& context);
/// True when the request certainly did not take effect and another member
/// may be asked: no leader, not capable, leader changed (the proposal was dropped).
bool IsRetryableOnAnotherMember(const GatewayError& error);

struct RangeResponse {
  int64_t revision = 0;  // header.revision: the store revision read at
  std::vector<KeyValue> kvs;
  int64_t count = 0;
  bool more = false;
};
Result<RangeResponse> ParseRangeResponse(const std::string& body);

Result<TxnResult> ParseTxnResponse(const std::string& body);

struct LeaseGrantResponse {
  LeaseId id = 0;
  int64_t ttl_seconds = 0;
};
Result<LeaseGrantResponse> ParseLeaseGrantResponse(const std::string& body);

/// The keepalive stream's answer for one request: OK with the new TTL, or
/// NotFound when the lease has expired (the result has no TTL).
Result<int64_t> ParseKeepAliveResponse(const std::string& body, LeaseId lease);

/// The answer to CompactionClaimRequest.
struct CompactionClaim {
  bool succeeded = false;  // this caller's turn: the key now has version + 1
  int64_t revision = 0;    // header.revision
  int64_t version = 0;     // when not succeeded: the key's version now (0: absent)
};
Result<CompactionClaim> ParseCompactionClaimResponse(const std::string& body);

/// True iff `status` is etcd's answer to a compaction at or below the
/// revision already compacted ("mvcc: required revision has been
/// compacted"): the history asked to go is already gone.
bool IsAlreadyCompacted(const Status& status);

/// The header revision of any unary response (e.g. compaction, revoke).
Result<int64_t> ParseHeaderRevision(const std::string& body);

Result<std::string> ParseAuthToken(const std::string& body);

/// One line of the watch stream.
struct WatchMessage {
  int64_t header_revision = 0;  // 0 when the header has none (a canceled message)
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // > 0: the watch's start is compacted
  std::string cancel_reason;     // e.g. "etcdserver: no leader"
  std::vector<WatchEvent> events;
  std::optional<GatewayError> error;  // the stream failed ({"error": ...})
};
Result<WatchMessage> ParseWatchLine(const std::string& line);

/// One line of the snapshot stream: the decoded blob bytes.
struct SnapshotChunk {
  std::string bytes;
  int64_t remaining_bytes = 0;
};
Result<SnapshotChunk> ParseSnapshotLine(const std::string& line);

}  // namespace etcd
}  // namespace reactor
