#include "agent/cli/api_client.h"

#include <curl/curl.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "agent/common/agent_config.h"

namespace reactor::cli {

namespace {

constexpr const char* kDefaultApi = "http://127.0.0.1:7070";
constexpr const char* kDefaultTokenFile = "/etc/reactor/token";
constexpr const char* kDefaultAgentConfig = "/etc/reactor/agent.conf";

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// A streamed body: 2xx chunks go to the callback, anything else is kept
// whole for the error message.
struct StreamSink {
  CURL* curl = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;
  std::string* body = nullptr;
};

size_t StreamBody(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<StreamSink*>(user);
  long status = 0;
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300) {
    s->body->append(data, size * n);
    return size * n;
  }
  return (*s->on_data)(std::string_view(data, size * n)) ? size * n : 0;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string TrimLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// The API address and token file of the agent installed on this host, from
// its agent.conf (REACTOR_CONFIG, else /etc/reactor/agent.conf). Without a
// readable, valid file these stay the built-in defaults: a CLI run elsewhere
// must not fail because of a config it does not need.
struct InstalledAgent {
  std::string api = kDefaultApi;
  std::string token_file = kDefaultTokenFile;
  std::string ca_file;  // an agent serving TLS: its own certificate
};

InstalledAgent FindInstalledAgent() {
  InstalledAgent out;
  std::string path = Env("REACTOR_CONFIG");
  if (path.empty()) path = kDefaultAgentConfig;
  Result<AgentConfig> cfg = LoadAgentConfig(path);
  if (!cfg.ok()) return out;
  const AgentConfig::Listen& l = cfg->listen;
  if (l.IsUnix()) {
    out.api = "unix:" + l.unix_path;
  } else {
    // An agent listening on every address is reached on loopback.
    std::string host = l.host == "0.0.0.0" ? "127.0.0.1" : l.host == "[::]" ? "[::1]" : l.host;
    out.api = host + ":" + std::to_string(l.port);
    if (!cfg->tls_cert_file.empty()) {
      out.api = "https://" + out.api;
      out.ca_file = cfg->tls_cert_file;
    }
  }
  out.token_file = cfg->token_file;
  return out;
}

}  // namespace

nlohmann::json ApiResponse::Json() const { return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false); }

ApiClient::ApiClient(const GlobalOptions& opts) {
  // Each setting: flag, else environment, else the installed agent.conf,
  // else the built-in default.
  std::string api = !opts.api.empty() ? opts.api : Env("REACTOR_API");
  ca_file_ = !opts.ca_file.empty() ? opts.ca_file : Env("REACTOR_CA_FILE");
  const bool need_token_file = opts.token_file.empty() && TrimLine(Env("REACTOR_TOKEN")).empty();
  InstalledAgent installed;
  if (api.empty() || need_token_file) installed = FindInstalledAgent();
  if (api.empty()) {
    api = installed.api;
    if (ca_file_.empty()) ca_file_ = installed.ca_file;
  }
  const bool https = api.rfind("https://", 0) == 0;
  if (api.rfind("unix:", 0) == 0) {
    unix_socket_ = api.substr(5);
    base_url_ = "http://localhost";
  } else if (api.rfind("http://", 0) == 0 || https) {
    base_url_ = api;
  } else {
    base_url_ = (ca_file_.empty() ? "http://" : "https://") + api;
  }
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  if (base_url_.rfind("https://", 0) != 0 || !unix_socket_.empty()) {
    if (!opts.ca_file.empty()) {
      std::cerr << "reactor: --ca-file verifies an https:// agent, but the API address is "
                << (unix_socket_.empty() ? base_url_ : "unix:" + unix_socket_)
                << " (give --api https://HOST:PORT or HOST:PORT)\n";
      throw CliExit{kExitBadInput};
    }
    ca_file_.clear();  // REACTOR_CA_FILE is for the https agents it is set for
  }
  if (!ca_file_.empty() && !std::ifstream(ca_file_)) {
    std::cerr << "reactor: CA file " << ca_file_
              << " (--ca-file or REACTOR_CA_FILE): cannot read: " << std::strerror(errno) << "\n";
    throw CliExit{kExitBadInput};
  }

  std::string token_file = opts.token_file;
  if (token_file.empty()) {
    token_ = TrimLine(Env("REACTOR_TOKEN"));
    if (!token_.empty()) return;
    token_file = installed.token_file;
  }
  std::ifstream in(token_file);
  if (!in) {
    token_error_ = "cannot read token file " + token_file + " (use --token-file or REACTOR_TOKEN)";
    return;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  token_ = TrimLine(ss.str());
}

ApiResponse ApiClient::Request(const std::string& method, const std::string& path, const std::string& body,
                               const std::string& content_type,
                               const std::function<bool(std::string_view)>* on_data) const {
  ApiResponse out;
  CURL* curl = curl_easy_init();
  if (!curl) {
    out.transport_error = "curl_easy_init failed";
    return out;
  }
  std::string url = base_url_ + path;
  char errbuf[CURL_ERROR_SIZE] = {0};
  struct curl_slist* headers = nullptr;
  std::string auth = "Authorization: Bearer " + token_;
  if (!token_.empty()) headers = curl_slist_append(headers, auth.c_str());
  std::string ctype = "Content-Type: " + content_type;
  if (!body.empty() || method == "PUT" || method == "POST") headers = curl_slist_append(headers, ctype.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "PUT" || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (!unix_socket_.empty()) curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, unix_socket_.c_str());
  // https: the chain and the host name are always verified; a CA file is
  // the only trust (no system CA directory beside it).
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!ca_file_.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file_.c_str());
    curl_easy_setopt(curl, CURLOPT_CAPATH, nullptr);
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  StreamSink sink{curl, on_data, &out.body};
  if (on_data) {
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, StreamBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    // No overall timeout; a stream whose heartbeats (every 2 s) stop for
    // 10 s is dead.
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 10L);
  } else {
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 120000L);
  }
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  CURLcode rc = curl_easy_perform(curl);
  // A stream that was answered keeps its status when it breaks later.
  if (rc == CURLE_OK || on_data) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
  if (rc != CURLE_OK && out.status == 0) {
    out.transport_error = std::string(errbuf[0] ? errbuf : curl_easy_strerror(rc));
    if (rc == CURLE_PEER_FAILED_VERIFICATION && out.transport_error.find("subject name") != std::string::npos) {
      out.transport_error += " (the agent's certificate is not for the host in " + base_url_ +
                             ": give --api a name or address the certificate carries)";
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION) {
      out.transport_error += ca_file_.empty()
                                 ? " (the agent's certificate is not signed by a CA this host trusts: "
                                   "give the CA that signed it with --ca-file or REACTOR_CA_FILE)"
                                 : " (the agent's certificate does not verify against the CA file " + ca_file_ + ")";
    } else if ((rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR) && url.rfind("http://", 0) == 0 &&
               unix_socket_.empty()) {
      out.transport_error += " (if the agent serves TLS, use --api https://HOST:PORT and --ca-file)";
    } else if (rc == CURLE_SSL_CONNECT_ERROR && url.rfind("https://", 0) == 0) {
      out.transport_error += " (is the agent serving TLS on this port? Without tls_cert_file it speaks http://)";
    }
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return out;
}

ApiResponse ApiClient::Get(const std::string& path) const { return Request("GET", path, "", ""); }
ApiResponse ApiClient::Delete(const std::string& path) const { return Request("DELETE", path, "", ""); }
ApiResponse ApiClient::Put(const std::string& path, const std::string& body, const std::string& ct) const {
  return Request("PUT", path, body, ct);
}
ApiResponse ApiClient::Post(const std::string& path, const std::string& body, const std::string& ct) const {
  return Request("POST", path, body, ct);
}

ApiResponse ApiClient::Stream(const std::string& path, const std::function<bool(std::string_view)>& on_data) const {
  return Request("GET", path, "", "", &on_data);
}

nlohmann::json ApiClient::Call(const std::string& method, const std::string& path, const std::string& body,
                               const std::string& content_type) const {
  ApiResponse r = Request(method, path, body, content_type);
  if (r.status >= 200 && r.status < 300) return r.Json();
  Fail(r);
}

void ApiClient::Fail(const ApiResponse& r) const {
  if (r.status == 0) {
    std::cerr << "reactor: cannot reach the agent at " << (unix_socket_.empty() ? base_url_ : "unix:" + unix_socket_)
              << ": " << r.transport_error << "\n";
    throw CliExit{kExitFailure};
  }
  nlohmann::json j = r.Json();
  std::string msg = j.is_object() && j.contains("error") ? j["error"].get<std::string>() : r.body;
  std::cerr << "reactor: " << msg << "\n";
  if (j.is_object() && j.contains("details") && j["details"].is_object() && j["details"].contains("errors") &&
      j["details"]["errors"].size() > 1) {
    for (const auto& e : j["details"]["errors"]) std::cerr << "  " << e.get<std::string>() << "\n";
  }
  if (r.status == 401 && !token_error_.empty()) std::cerr << "reactor: " << token_error_ << "\n";
  throw CliExit{(r.status == 400 || r.status == 404 || r.status == 409) ? kExitBadInput : kExitFailure};
}

std::string UrlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace reactor::cli
