// The endpoints this agent (or cluster) manages, kept in the Store under
// EndpointKey(name): the INI text as given, the run state and where the
// definition came from. Validation is complete before anything is written.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/status.h"
#include "agent/endpoint/endpoint_config.h"
#include "agent/store/store.h"

namespace reactor {

/// running: scaled and served. paused: served, instances kept as they are
/// (failed ones are still replaced), no scaling. stopped: every instance is
/// drained and removed; nginx answers 503. deleting: unmanaged, draining
/// before the record disappears.
enum class EndpointState { kRunning, kPaused, kStopped, kDeleting };
const char* EndpointStateName(EndpointState s);
Result<EndpointState> ParseEndpointState(const std::string& s);

struct EndpointRecord {
  std::string name;
  std::string ini;
  EndpointState state = EndpointState::kRunning;
  std::string source = "api";  // "api" or "file:<path>" (endpoints_dir)
  int64_t mod_revision = 0;
  EndpointConfig config;  // parsed from ini; see `problem`
  /// Empty when the record read and validated. Otherwise why it does not
  /// (shown as state `invalid`), and `config` is the last good one: from
  /// this process's memory, else the last-good copy in the store, else the
  /// stored text with the keys in error dropped. The agent keeps serving
  /// such an endpoint and its instances; `manage` with a good file repairs it.
  std::string problem;
  /// False when not even a last good config is known: the agent leaves the
  /// endpoint's instances alone and cannot serve it.
  bool config_known = true;
};

/// Checks that are about the host rather than the endpoint itself.
class HostPortProbe {
 public:
  virtual ~HostPortProbe() = default;
  /// True when something on this host listens on `port` (any address).
  virtual bool PortInUse(int port) const = 0;
};

class EndpointRegistry {
 public:
  /// `probe` may be null (no port-in-use check).
  EndpointRegistry(Store& store, const HostPortProbe* probe) : store_(store), probe_(probe) {}

  /// Every endpoint record, including those that no longer read (with
  /// `problem` set): a record the agent cannot read is not an orphan.
  /// Thread-safe. `revision`, if given, receives the store revision read at.
  Result<std::vector<EndpointRecord>> List(int64_t* revision = nullptr) const;
  Result<EndpointRecord> Get(const std::string& name) const;
  /// The record stored as `kv` (a key under EndpointPrefix()), as List and
  /// Get read it: one that no longer reads keeps its last good config.
  Result<EndpointRecord> Decode(const KeyValue& kv) const;

  /// Creates or replaces an endpoint's definition, keeping its state (a new
  /// endpoint starts `running`). Validates the INI, then against the other
  /// endpoints (URL taken, TLS mismatch on a shared port) and the host (port
  /// used by something that is not our nginx). Returns true when created.
  /// InvalidArgument with every problem; Conflict when being deleted or
  /// changed concurrently.
  Result<bool> Put(const std::string& name, const std::string& ini, const std::string& source);
  /// Applies one `set NAME SECTION KEY VALUE`, with the same validation.
  Status Set(const std::string& name, const std::string& section, const std::string& key, const std::string& value);
  Status SetState(const std::string& name, EndpointState state);
  /// Deletes the record for good (after its instances are gone), with its
  /// last-good copy and its URL claim.
  Status Remove(const std::string& name);

 private:
  /// Checks `cfg` against the other endpoints on its host:port (found by
  /// their URL claims: the URL taken, another scheme) and the host (the port
  /// used by something that is not our nginx). Returns the mod revision of
  /// the host:port's guard key read before those checks (0: absent), for
  /// Write to compare.
  Result<int64_t> ValidateAgainstOthers(const EndpointConfig& cfg) const;
  /// One transaction: the record (iff its mod revision is still
  /// `expected_revision`), its last-good copy and its URL claim (iff no
  /// other live endpoint holds the claim), releasing `previous`'s claim when
  /// the URL changed; with `port_guard`, the host:port's guard key iff its
  /// mod revision is still that (0: absent), rewritten. `*lost_race` (if
  /// given) is true iff the transaction's compares failed (a Conflict that
  /// validating again may resolve).
  Status Write(const EndpointRecord& rec, int64_t expected_revision, const EndpointRecord* previous,
               std::optional<int64_t> port_guard, bool* lost_race = nullptr);
  /// A validation failure found on a retry (after losing to a concurrent
  /// writer) is a Conflict: the other writer won.
  static Status LostRace(const Status& invalid, int attempt);
  static constexpr int kWriteAttempts = 3;

  Store& store_;
  const HostPortProbe* probe_;

  // The last record of each endpoint that decoded, with the stored value it
  // came from (a record read again unchanged is not parsed again).
  struct Good {
    EndpointRecord record;
    std::string value;
  };
  mutable std::mutex good_mu_;
  mutable std::map<std::string, Good> last_good_;  // protected by good_mu_
};

/// Reads /proc/net/tcp{,6} for listening ports.
class ProcHostPortProbe : public HostPortProbe {
 public:
  bool PortInUse(int port) const override;
};

}  // namespace reactor
