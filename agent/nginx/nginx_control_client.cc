#include "agent/nginx/nginx_control_client.h"

#include <curl/curl.h>

#include "agent/nginx/nginx_members.h"

namespace reactor {
namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

int AbortIfCancelled(void* cancel, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(cancel)->load() ? 1 : 0;
}

// POST with `body`, or GET when `body` is null; the response body in
// `*out`. `cancel` (may be null) aborts the call.
Status Call(const std::string& socket_path, const std::string& path, const std::string* body, const std::string& what,
            Duration timeout, std::string* out, const std::atomic<bool>* cancel = nullptr) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Status::Internal("curl_easy_init failed");
  const std::string url = "http://localhost" + path;
  std::string response;
  curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket_path.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (body != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
  }
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (cancel != nullptr) {
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, AbortIfCancelled);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancel));
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  if (rc == CURLE_ABORTED_BY_CALLBACK)
    return Status::Unavailable("nginx control socket " + socket_path + ": cancelled");
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Status::Unavailable("nginx control socket " + socket_path + ": no answer within " +
                               std::to_string(timeout.count()) + " ms");
  }
  if (rc != CURLE_OK) return Status::IOError("nginx control socket " + socket_path, curl_easy_strerror(rc));
  if (code != 200) {
    while (!response.empty() && response.back() == '\n') response.pop_back();
    return Status::InvalidArgument("nginx refused " + what + " (HTTP " + std::to_string(code) + "): " + response);
  }
  if (out != nullptr) *out = std::move(response);
  return Status::Ok();
}

Status Post(const std::string& socket_path, const std::string& path, const std::string& body, const std::string& what,
            Duration timeout) {
  return Call(socket_path, path, &body, what, timeout, nullptr);
}

}  // namespace

Status PostMembers(const std::string& socket_path, const std::string& name, const std::vector<Member>& members,
                   Duration timeout) {
  return Post(socket_path, "/members/" + name, EncodeMemberList(members), "members of " + name, timeout);
}

Status PostRoutes(const std::string& socket_path, const std::string& listen, const std::vector<Route>& routes,
                  Duration timeout) {
  return Post(socket_path, "/routes", EncodeRouteTable(listen, routes), "routes of " + listen, timeout);
}

Result<std::string> GetControl(const std::string& socket_path, const std::string& path, Duration timeout,
                               const std::atomic<bool>* cancel) {
  std::string body;
  Status s = Call(socket_path, path, nullptr, path, timeout, &body, cancel);
  if (!s.ok()) return s;
  return body;
}

std::string ControlSocketPath(const std::string& prefix) {
  std::string p = prefix;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p + "/control/control.sock";
}

}  // namespace reactor
