// The Docker Engine API, as much of it as the docker driver needs: images,
// containers and their state. `DockerApi` is the seam (tests fake it);
// `DockerClient` speaks HTTP/1.1 over dockerd's unix socket with libcurl.
// No shell, no docker CLI.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/common/clock.h"
#include "agent/common/status.h"

namespace reactor {

/// What a container is created from (POST /containers/create).
struct ContainerSpec {
  std::string name;  // without the leading '/'
  std::string image;
  std::vector<std::string> cmd;  // empty = the image's default
  std::vector<std::string> env;  // "KEY=value"
  std::string user;              // empty = the image's
  std::string hostname;          // empty = docker's default
  std::map<std::string, std::string> labels;
  uint64_t memory = 0;  // bytes; 0 = no limit
  std::vector<std::string> dns;
  std::string network_mode;  // "host", "bridge", ... ; empty = docker's default
  /// The container's TCP port to publish on `host_ip` at a port docker
  /// picks (bridge mode); 0 = publish nothing.
  int publish_port = 0;
  std::string host_ip;
};

/// The JSON body of POST /containers/create for `spec` (without the name,
/// which goes in the query). Pure.
nlohmann::json ContainerCreateBody(const ContainerSpec& spec);

/// A published port: container `<private_port>/tcp` on host_ip:host_port.
struct PortBinding {
  int private_port = 0;
  std::string host_ip;
  int host_port = 0;
};

/// GET /containers/{id}/json, the parts we use.
struct ContainerState {
  std::string id;
  std::string name;  // without the leading '/'
  std::map<std::string, std::string> labels;
  std::string status;  // created | running | paused | restarting | removing | exited | dead
  bool running = false;
  int exit_code = 0;
  std::string error;  // State.Error: why it could not start
  bool oom_killed = false;
  std::vector<PortBinding> ports;  // tcp only
};

/// GET /containers/json, one entry.
struct ContainerSummary {
  std::string id;
  std::string name;  // the first name, without the leading '/'
  std::map<std::string, std::string> labels;
  std::string state;               // as ContainerState::status
  std::string status;              // human text: "Up 3 seconds", "Exited (137) 2 seconds ago"
  std::vector<PortBinding> ports;  // tcp only, published ones
};

/// Every call is bounded in time. Errors carry docker's own message:
/// NotFound (404), Conflict (409), InvalidArgument (400), Unavailable when
/// dockerd cannot be reached, times out or fails a request (5xx).
/// Implementations are thread-safe.
class DockerApi {
 public:
  virtual ~DockerApi() = default;
  /// True if `ref` ("name[:tag]" or "name@digest") is present locally.
  virtual Result<bool> ImageExists(const std::string& ref) = 0;
  /// Pulls `ref` (tag "latest" when it names none). Blocks until the pull is
  /// done, failed (an error in the progress stream counts), timed out, or
  /// `*cancel` became true (then Unavailable "cancelled"). `cancel` may be null.
  virtual Status Pull(const std::string& ref, const std::atomic<bool>* cancel) = 0;
  /// Returns the new container's id.
  virtual Result<std::string> CreateContainer(const ContainerSpec& spec) = 0;
  virtual Status Start(const std::string& id) = 0;
  /// `id` may also be a container name. NotFound when there is none.
  virtual Result<ContainerState> Inspect(const std::string& id) = 0;
  /// Asks the container to stop: its stop signal, SIGKILL after `grace`
  /// (docker's own fallback; rounded up to whole seconds). If docker does
  /// not answer within grace plus the slow request timeout, kills it.
  /// OK if it was not running; NotFound if there is no such container.
  virtual Status Stop(const std::string& id, Duration grace) = 0;
  /// Sends `signal` (e.g. "KILL", "TERM"). Conflict if it is not running.
  virtual Status Kill(const std::string& id, const std::string& signal) = 0;
  /// Removes the container and its anonymous volumes; `force` kills it
  /// first if it runs. NotFound if there is no such container.
  virtual Status Remove(const std::string& id, bool force) = 0;
  /// Containers carrying every label in `labels` ("key" → "value"; an empty
  /// value matches any value of that key), stopped ones too when `all`.
  virtual Result<std::vector<ContainerSummary>> List(const std::map<std::string, std::string>& labels, bool all) = 0;
};

struct DockerClientSettings {
  std::string socket = "/var/run/docker.sock";
  /// Path prefix of every request. 1.41 is what docker.io 20.10 (Debian 12)
  /// speaks; newer daemons accept it too.
  std::string api_version = "v1.41";
  Duration connect_timeout{2000};
  /// Bound of the quick requests the agent loop makes: ping, image and
  /// container inspection, list, kill. A hung dockerd costs at most this.
  Duration request_timeout{10000};
  /// Bound of create, start and remove, which copy or delete a container's
  /// filesystem (slow on the vfs driver, large images, busy disks). Stop
  /// gets its grace plus this.
  Duration slow_request_timeout{120000};
  /// Bound of a whole pull.
  Duration pull_timeout{15 * 60 * 1000};
  /// A pull that receives no progress for this long is abandoned.
  Duration pull_stall_timeout{120000};
};

/// The real client over dockerd's unix socket. Each call uses its own curl
/// handle, so calls from several threads run concurrently.
class DockerClient : public DockerApi {
 public:
  explicit DockerClient(DockerClientSettings settings);

  Result<bool> ImageExists(const std::string& ref) override;
  Status Pull(const std::string& ref, const std::atomic<bool>* cancel) override;
  Result<std::string> CreateContainer(const ContainerSpec& spec) override;
  Status Start(const std::string& id) override;
  Result<ContainerState> Inspect(const std::string& id) override;
  Status Stop(const std::string& id, Duration grace) override;
  Status Kill(const std::string& id, const std::string& signal) override;
  Status Remove(const std::string& id, bool force) override;
  Result<std::vector<ContainerSummary>> List(const std::map<std::string, std::string>& labels, bool all) override;

  /// GET /_ping: OK when dockerd answers.
  Status Ping();
  /// Imports a root filesystem tar (uncompressed) as image `repo:tag`
  /// (what `docker import` does). Returns the image id.
  Result<std::string> ImportImage(const std::string& tar, const std::string& repo, const std::string& tag);

  const DockerClientSettings& settings() const { return settings_; }

 private:
  struct Response;
  /// One request, bounded by `timeout`; abandoned when `*cancel` becomes
  /// true or (if `stall_timeout` > 0) when no byte arrives for that long.
  /// `body` with `content_type` is sent when non-empty.
  Response Request(const std::string& method, const std::string& path, const std::string& body,
                   const std::string& content_type, Duration timeout, const std::atomic<bool>* cancel,
                   Duration stall_timeout);
  /// The Status for a failed `resp` of the call described by `what`.
  Status Failure(const Response& resp, const std::string& what) const;

  const DockerClientSettings settings_;
};

/// Splits an image reference for POST /images/create: "repo:tag" →
/// {"repo", "tag"}; "repo" → {"repo", "latest"}; "repo@sha256:..." →
/// {"repo@sha256:...", ""}. A ':' before the last '/' is a registry port.
std::pair<std::string, std::string> SplitImageReference(const std::string& ref);

/// True if `ref` is a plausible image reference: [A-Za-z0-9._/:@-], not
/// empty, at most 255 characters, not starting with '-' or '/'.
bool ValidImageReference(const std::string& ref);

}  // namespace reactor
