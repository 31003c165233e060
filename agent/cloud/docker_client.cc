#include "agent/cloud/docker_client.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace reactor {

using json = nlohmann::json;

namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

struct Progress {
  const std::atomic<bool>* cancel = nullptr;
  bool cancelled = false;
};

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* p = static_cast<Progress*>(user);
  if (p->cancel != nullptr && p->cancel->load()) {
    p->cancelled = true;
    return 1;  // abort the transfer
  }
  return 0;
}

std::string Escape(const std::string& s) {
  std::string out;
  static const char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

/// Container ids and names go into URL paths: only what docker allows in
/// names ([a-zA-Z0-9][a-zA-Z0-9_.-]*) may pass.
bool ValidContainerRef(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

std::string StripSlash(const std::string& name) { return !name.empty() && name[0] == '/' ? name.substr(1) : name; }

std::map<std::string, std::string> LabelsFrom(const json& j) {
  std::map<std::string, std::string> labels;
  if (!j.is_object()) return labels;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_string()) labels[it.key()] = it.value().get<std::string>();
  }
  return labels;
}

std::string StringAt(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int IntAt(const json& j, const char* key, int fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int>() : fallback;
}

bool BoolAt(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

/// docker's {"message": "..."} error body, or the body itself.
std::string DockerMessage(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    std::string m = StringAt(j, "message");
    if (!m.empty()) return m;
  }
  std::string text = body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

/// The last {"error": ...} in a progress stream (JSON objects, one a line),
/// or "" if none.
std::string StreamError(const std::string& body) {
  std::string error;
  size_t begin = 0;
  while (begin < body.size()) {
    size_t end = body.find('\n', begin);
    if (end == std::string::npos) end = body.size();
    json j = json::parse(body.substr(begin, end - begin), nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) {
      std::string e = StringAt(j, "error");
      if (e.empty() && j.contains("errorDetail") && j["errorDetail"].is_object()) {
        e = StringAt(j["errorDetail"], "message");
      }
      if (!e.empty()) error = e;
    }
    begin = end + 1;
  }
  return error;
}

/// The "status" of the last line that has one (import reports the id there).
std::string StreamLastStatus(const std::string& body) {
  std::string status;
  size_t begin = 0;
  while (begin < body.size()) {
    size_t end = body.find('\n', begin);
    if (end == std::string::npos) end = body.size();
    json j = json::parse(body.substr(begin, end - begin), nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && !StringAt(j, "status").empty()) status = StringAt(j, "status");
    begin = end + 1;
  }
  return status;
}

std::vector<PortBinding> PortsFromInspect(const json& ports) {
  // {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}], "9000/tcp": null}
  std::vector<PortBinding> out;
  if (!ports.is_object()) return out;
  for (auto it = ports.begin(); it != ports.end(); ++it) {
    const std::string& key = it.key();
    const size_t slash = key.find('/');
    if (slash == std::string::npos || key.substr(slash + 1) != "tcp") continue;
    const int private_port = std::atoi(key.substr(0, slash).c_str());
    if (!it.value().is_array()) continue;
    for (const json& b : it.value()) {
      if (!b.is_object()) continue;
      PortBinding pb;
      pb.private_port = private_port;
      pb.host_ip = StringAt(b, "HostIp");
      pb.host_port = std::atoi(StringAt(b, "HostPort").c_str());
      if (pb.host_port > 0) out.push_back(pb);
    }
  }
  return out;
}

std::vector<PortBinding> PortsFromSummary(const json& ports) {
  // [{"IP": "127.0.0.1", "PrivatePort": 8000, "PublicPort": 49153, "Type": "tcp"}]
  std::vector<PortBinding> out;
  if (!ports.is_array()) return out;
  for (const json& p : ports) {
    if (!p.is_object() || StringAt(p, "Type") != "tcp") continue;
    PortBinding pb;
    pb.private_port = IntAt(p, "PrivatePort", 0);
    pb.host_ip = StringAt(p, "IP");
    pb.host_port = IntAt(p, "PublicPort", 0);
    if (pb.host_port > 0) out.push_back(pb);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------

json ContainerCreateBody(const ContainerSpec& spec) {
  json body = json::object();
  body["Image"] = spec.image;
  if (!spec.cmd.empty()) body["Cmd"] = spec.cmd;
  body["Env"] = spec.env;
  if (!spec.user.empty()) body["User"] = spec.user;
  if (!spec.hostname.empty()) body["Hostname"] = spec.hostname;
  body["Labels"] = spec.labels;
  json host = json::object();
  if (!spec.network_mode.empty()) host["NetworkMode"] = spec.network_mode;
  if (spec.memory > 0) host["Memory"] = spec.memory;
  if (!spec.dns.empty()) host["Dns"] = spec.dns;
  if (spec.publish_port > 0) {
    const std::string port = std::to_string(spec.publish_port) + "/tcp";
    body["ExposedPorts"] = {{port, json::object()}};
    // HostPort "" lets docker pick a free host port; Inspect tells which.
    host["PortBindings"] = {{port, json::array({{{"HostIp", spec.host_ip}, {"HostPort", ""}}})}};
  }
  // The agent replaces instances that exit; docker must not restart them.
  host["RestartPolicy"] = {{"Name", "no"}};
  body["HostConfig"] = host;
  return body;
}

std::pair<std::string, std::string> SplitImageReference(const std::string& ref) {
  if (ref.find('@') != std::string::npos) return {ref, ""};
  const size_t slash = ref.rfind('/');
  const size_t colon = ref.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return {ref.substr(0, colon), ref.substr(colon + 1)};
  }
  return {ref, "latest"};
}

bool ValidImageReference(const std::string& ref) {
  if (ref.empty() || ref.size() > 255 || ref[0] == '-' || ref[0] == '/') return false;
  return std::all_of(ref.begin(), ref.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '/' || c == ':' || c == '@' || c == '-';
  });
}

// ---------------------------------------------------------------------------

struct DockerClient::Response {
  CURLcode curl = CURLE_OK;
  std::string curl_error;
  long code = 0;
  std::string body;
  bool cancelled = false;
  bool ok() const { return curl == CURLE_OK && code >= 200 && code < 300; }
};

DockerClient::DockerClient(DockerClientSettings settings) : settings_(std::move(settings)) { GlobalInitOnce(); }

DockerClient::Response DockerClient::Request(const std::string& method, const std::string& path,
                                             const std::string& body, const std::string& content_type, Duration timeout,
                                             const std::atomic<bool>* cancel, Duration stall_timeout) {
  Response resp;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    resp.curl = CURLE_FAILED_INIT;
    resp.curl_error = "curl_easy_init failed";
    return resp;
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  // The host part is ignored on a unix socket; "docker" reads well in logs.
  const std::string url = "http://docker/" + settings_.api_version + path;
  curl_slist* headers = nullptr;
  if (!content_type.empty()) headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip for large bodies
  Progress progress{cancel, false};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, settings_.socket.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST" || !body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(settings_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  if (stall_timeout.count() > 0) {
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(std::max<int64_t>(1, stall_timeout.count() / 1000)));
  }
  if (cancel != nullptr) {
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &progress);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  }
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  resp.curl = curl_easy_perform(curl);
  if (resp.curl == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.code);
  } else {
    resp.curl_error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(resp.curl);
  }
  resp.cancelled = progress.cancelled;
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return resp;
}

Status DockerClient::Failure(const Response& resp, const std::string& what) const {
  if (resp.cancelled) return Status::Unavailable(what + ": cancelled");
  if (resp.curl == CURLE_COULDNT_CONNECT || resp.curl == CURLE_COULDNT_RESOLVE_HOST) {
    struct stat st;
    std::string why;
    if (::stat(settings_.socket.c_str(), &st) != 0) {
      why = std::strerror(errno);
    } else if (!S_ISSOCK(st.st_mode)) {
      why = "not a socket";
    } else {
      why = "connection refused (is dockerd running?)";
    }
    return Status::Unavailable("cannot reach docker at " + settings_.socket + ": " + why);
  }
  if (resp.curl == CURLE_OPERATION_TIMEDOUT) {
    return Status::Unavailable(what + ": docker at " + settings_.socket + " did not answer in time (" +
                               resp.curl_error + ")");
  }
  if (resp.curl != CURLE_OK) {
    return Status::Unavailable(what + ": docker at " + settings_.socket + ": " + resp.curl_error);
  }
  const std::string message = DockerMessage(resp.body);
  switch (resp.code) {
    case 400: return Status::InvalidArgument(message);
    case 404: return Status::NotFound(message);
    case 409: return Status::Conflict(message);
    default: return Status::Unavailable(message.empty() ? what + ": HTTP " + std::to_string(resp.code) : message);
  }
}

Status DockerClient::Ping() {
  Response r = Request("GET", "/_ping", "", "", settings_.request_timeout, nullptr, Duration(0));
  return r.ok() ? Status::Ok() : Failure(r, "ping");
}

Result<bool> DockerClient::ImageExists(const std::string& ref) {
  if (!ValidImageReference(ref)) return Status::InvalidArgument("bad image reference '" + ref + "'");
  Response r = Request("GET", "/images/" + ref + "/json", "", "", settings_.request_timeout, nullptr, Duration(0));
  if (r.ok()) return true;
  if (r.curl == CURLE_OK && r.code == 404) return false;
  return Failure(r, "inspect image " + ref);
}

Status DockerClient::Pull(const std::string& ref, const std::atomic<bool>* cancel) {
  if (!ValidImageReference(ref)) return Status::InvalidArgument("bad image reference '" + ref + "'");
  auto [image, tag] = SplitImageReference(ref);
  std::string path = "/images/create?fromImage=" + Escape(image);
  if (!tag.empty()) path += "&tag=" + Escape(tag);
  Response r = Request("POST", path, "", "", settings_.pull_timeout, cancel, settings_.pull_stall_timeout);
  if (!r.ok()) return Failure(r, "pull " + ref);
  // A 200 only means the pull began: failures arrive in the stream.
  const std::string error = StreamError(r.body);
  if (!error.empty()) return Status::Unavailable(error);
  return Status::Ok();
}

Result<std::string> DockerClient::ImportImage(const std::string& tar, const std::string& repo, const std::string& tag) {
  const std::string path = "/images/create?fromSrc=-&repo=" + Escape(repo) + "&tag=" + Escape(tag);
  Response r = Request("POST", path, tar, "application/x-tar", settings_.pull_timeout, nullptr, Duration(0));
  if (!r.ok()) return Failure(r, "import " + repo + ":" + tag);
  const std::string error = StreamError(r.body);
  if (!error.empty()) return Status::Unavailable(error);
  return StreamLastStatus(r.body);
}

Result<std::string> DockerClient::CreateContainer(const ContainerSpec& spec) {
  if (!ValidContainerRef(spec.name)) return Status::InvalidArgument("bad container name '" + spec.name + "'");
  Response r = Request("POST", "/containers/create?name=" + Escape(spec.name), ContainerCreateBody(spec).dump(),
                       "application/json", settings_.slow_request_timeout, nullptr, Duration(0));
  if (!r.ok()) return Failure(r, "create container " + spec.name);
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  const std::string id = j.is_object() ? StringAt(j, "Id") : "";
  if (id.empty()) return Status::Internal("create container " + spec.name + ": no Id in " + r.body);
  return id;
}

Status DockerClient::Start(const std::string& id) {
  if (!ValidContainerRef(id)) return Status::InvalidArgument("bad container id '" + id + "'");
  Response r =
      Request("POST", "/containers/" + id + "/start", "", "", settings_.slow_request_timeout, nullptr, Duration(0));
  if (r.ok() || (r.curl == CURLE_OK && r.code == 304)) return Status::Ok();  // 304: already started
  return Failure(r, "start container " + id);
}

Result<ContainerState> DockerClient::Inspect(const std::string& id) {
  if (!ValidContainerRef(id)) return Status::NotFound("no container '" + id + "'");
  Response r = Request("GET", "/containers/" + id + "/json", "", "", settings_.request_timeout, nullptr, Duration(0));
  if (!r.ok()) return Failure(r, "inspect container " + id);
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::Internal("inspect container " + id + ": not JSON");
  ContainerState s;
  s.id = StringAt(j, "Id");
  s.name = StripSlash(StringAt(j, "Name"));
  if (j.contains("Config") && j["Config"].is_object()) s.labels = LabelsFrom(j["Config"].value("Labels", json()));
  if (j.contains("State") && j["State"].is_object()) {
    const json& st = j["State"];
    s.status = StringAt(st, "Status");
    s.running = BoolAt(st, "Running");
    s.exit_code = IntAt(st, "ExitCode", 0);
    s.error = StringAt(st, "Error");
    s.oom_killed = BoolAt(st, "OOMKilled");
  }
  if (j.contains("NetworkSettings") && j["NetworkSettings"].is_object()) {
    s.ports = PortsFromInspect(j["NetworkSettings"].value("Ports", json()));
  }
  return s;
}

Status DockerClient::Stop(const std::string& id, Duration grace) {
  if (!ValidContainerRef(id)) return Status::NotFound("no container '" + id + "'");
  const int64_t seconds = std::max<int64_t>(0, (grace.count() + 999) / 1000);
  Response r = Request("POST", "/containers/" + id + "/stop?t=" + std::to_string(seconds), "", "",
                       Duration(seconds * 1000) + settings_.slow_request_timeout, nullptr, Duration(0));
  if (r.ok() || (r.curl == CURLE_OK && r.code == 304)) return Status::Ok();  // 304: not running
  if (r.curl == CURLE_OPERATION_TIMEDOUT) {
    Status k = Kill(id, "KILL");
    return k.ok() || k.IsConflict() ? Status::Ok() : k;
  }
  return Failure(r, "stop container " + id);
}

Status DockerClient::Kill(const std::string& id, const std::string& signal) {
  if (!ValidContainerRef(id)) return Status::NotFound("no container '" + id + "'");
  Response r = Request("POST", "/containers/" + id + "/kill?signal=" + Escape(signal), "", "",
                       settings_.request_timeout, nullptr, Duration(0));
  return r.ok() ? Status::Ok() : Failure(r, "kill container " + id);
}

Status DockerClient::Remove(const std::string& id, bool force) {
  if (!ValidContainerRef(id)) return Status::NotFound("no container '" + id + "'");
  Response r = Request("DELETE", "/containers/" + id + "?v=1&force=" + std::string(force ? "1" : "0"), "", "",
                       settings_.slow_request_timeout, nullptr, Duration(0));
  return r.ok() ? Status::Ok() : Failure(r, "remove container " + id);
}

Result<std::vector<ContainerSummary>> DockerClient::List(const std::map<std::string, std::string>& labels, bool all) {
  std::string path = "/containers/json?all=" + std::string(all ? "1" : "0");
  if (!labels.empty()) {
    json filter = json::array();
    for (const auto& [k, v] : labels) filter.push_back(v.empty() ? k : k + "=" + v);
    path += "&filters=" + Escape(json{{"label", filter}}.dump());
  }
  Response r = Request("GET", path, "", "", settings_.request_timeout, nullptr, Duration(0));
  if (!r.ok()) return Failure(r, "list containers");
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Status::Internal("list containers: not a JSON array");
  std::vector<ContainerSummary> out;
  for (const json& c : j) {
    if (!c.is_object()) continue;
    ContainerSummary s;
    s.id = StringAt(c, "Id");
    if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty() && c["Names"][0].is_string()) {
      s.name = StripSlash(c["Names"][0].get<std::string>());
    }
    s.labels = LabelsFrom(c.value("Labels", json()));
    s.state = StringAt(c, "State");
    s.status = StringAt(c, "Status");
    s.ports = PortsFromSummary(c.value("Ports", json()));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace reactor
