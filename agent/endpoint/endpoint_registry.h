// The endpoints this agent (or cluster) manages, kept in the Store under
// EndpointKey(name): the INI text as given, the run state and where the
// definition came from. Validation is complete before anything is written.
#pragma once

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
  EndpointConfig config;  // parsed from ini
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

  Result<std::vector<EndpointRecord>> List() const;
  Result<EndpointRecord> Get(const std::string& name) const;

  /// Creates or replaces an endpoint's definition, keeping its state (a new
  /// endpoint starts `running`). Validates the INI, then against the other
  /// endpoints (URL taken, TLS mismatch on a shared port) and the host (port
  /// used by something that is not our nginx). Returns true when created.
  /// InvalidArgument with every problem; Conflict when being deleted or
  /// changed concurrently.
  Result<bool> Put(const std::string& name, const std::string& ini, const std::string& source);
  /// Applies one `set NAME SECTION KEY VALUE`, with the same validation.
  Status Set(const std::string& name, const std::string& section, const std::string& key,
             const std::string& value);
  Status SetState(const std::string& name, EndpointState state);
  /// Deletes the record for good (after its instances are gone).
  Status Remove(const std::string& name);

 private:
  Status ValidateAgainstOthers(const EndpointConfig& cfg) const;
  Status Write(const EndpointRecord& rec, int64_t expected_revision);

  Store& store_;
  const HostPortProbe* probe_;
};

/// Reads /proc/net/tcp{,6} for listening ports.
class ProcHostPortProbe : public HostPortProbe {
 public:
  bool PortInUse(int port) const override;
};

}  // namespace reactor
