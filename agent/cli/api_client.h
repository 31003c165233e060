// The CLI's side of the REST API: one blocking request at a time over TCP or
// a unix socket, with the bearer token.
#pragma once

#include <nlohmann/json.hpp>
#include <functional>
#include <string>
#include <string_view>

#include "agent/cli/commands.h"

namespace reactor::cli {

struct ApiResponse {
  long status = 0;  // HTTP status; 0 when the request did not complete
  std::string body;
  std::string transport_error;  // set when status == 0
  /// The body as JSON, or a null json when it is not JSON.
  nlohmann::json Json() const;
};

class ApiClient {
 public:
  /// Resolves the address and token, each from the first that sets it:
  /// `opts`, the environment (REACTOR_API, REACTOR_TOKEN), the `listen` and
  /// `token_file` of the installed agent.conf (REACTOR_CONFIG, else
  /// /etc/reactor/agent.conf; ignored when unreadable or invalid), and the
  /// built-in defaults 127.0.0.1:7070 and /etc/reactor/token.
  ///
  /// TLS: an https:// address is verified (certificate chain and host name)
  /// against the CA file (--ca-file, else REACTOR_CA_FILE) alone, or the
  /// system's CAs without one; a host:port address means https when a CA
  /// file is given. An installed agent with tls_cert_file is reached over
  /// https and, without a CA file, trusted by that certificate itself.
  /// A certificate that does not verify fails the request, never silently.
  /// Prints the error and throws CliExit (2) when --ca-file is given with an
  /// http:// or unix: address, or the CA file cannot be read.
  explicit ApiClient(const GlobalOptions& opts);

  ApiResponse Get(const std::string& path) const;
  ApiResponse Delete(const std::string& path) const;
  ApiResponse Put(const std::string& path, const std::string& body, const std::string& content_type) const;
  ApiResponse Post(const std::string& path, const std::string& body, const std::string& content_type) const;

  /// Streams GET `path` (no overall timeout): each chunk of the body goes to
  /// `on_data` as it arrives; return false from it to stop. The returned
  /// response has the status and, for a non-2xx answer, the body; status 0
  /// only when no answer came (a stream that breaks later keeps its 200).
  ApiResponse Stream(const std::string& path, const std::function<bool(std::string_view)>& on_data) const;

  /// Prints a failed response (status 0 or non-2xx) as Call does and throws
  /// CliExit (2 for 400/404/409, 1 otherwise).
  [[noreturn]] void Fail(const ApiResponse& r) const;

  /// Sends the request and, on any failure, prints the error to stderr and
  /// throws CliExit (2 for 400/404/409, 1 otherwise). Returns the JSON body.
  nlohmann::json Call(const std::string& method, const std::string& path, const std::string& body = "",
                      const std::string& content_type = "application/json") const;

 private:
  ApiResponse Request(const std::string& method, const std::string& path, const std::string& body,
                      const std::string& content_type,
                      const std::function<bool(std::string_view)>* on_data = nullptr) const;
  std::string base_url_;     // http://127.0.0.1:7070 (for unix sockets: http://localhost)
  std::string unix_socket_;  // set for unix:/path
  std::string ca_file_;      // https only: the CAs that verify the agent; "" = the system's
  std::string token_;
  std::string token_error_;  // why no token could be read, reported on 401
};

/// Percent-encodes a path segment.
std::string UrlEncode(const std::string& s);

}  // namespace reactor::cli
