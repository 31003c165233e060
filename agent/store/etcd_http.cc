#include "agent/store/etcd_http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace reactor {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

struct StreamState {
  const std::function<bool(const std::string&)>* on_line;
  const std::atomic<bool>* stop;
  std::string partial;
  bool stopped_by_caller = false;
};

size_t StreamBody(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<StreamState*>(user);
  s->partial.append(data, size * n);
  size_t start = 0;
  while (true) {
    size_t nl = s->partial.find('\n', start);
    if (nl == std::string::npos) break;
    std::string line = s->partial.substr(start, nl - start);
    start = nl + 1;
    if (line.empty() || line == "\r") continue;
    if (!(*s->on_line)(line) || s->stop->load()) {
      s->stopped_by_caller = true;
      return 0;  // aborts the transfer
    }
  }
  s->partial.erase(0, start);
  return size * n;
}

// A unary request's body, handed to curl on demand. `started` says curl
// asked for it: from then on the server may have the request. No seek
// callback on purpose: curl then cannot send the body a second time on its
// own (it does, on a fresh connection, when a reused one dies before any
// answer), and a write reaches etcd once per attempt we count.
struct UploadState {
  const std::string* body;
  size_t offset = 0;
  bool started = false;
};

size_t ReadBody(char* buffer, size_t size, size_t n, void* user) {
  auto* u = static_cast<UploadState*>(user);
  u->started = true;
  const size_t k = std::min(size * n, u->body->size() - u->offset);
  std::memcpy(buffer, u->body->data() + u->offset, k);
  u->offset += k;
  return k;
}

int StreamProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* s = static_cast<StreamState*>(user);
  if (s->stop->load()) {
    s->stopped_by_caller = true;
    return 1;
  }
  return 0;
}

curl_slist* Headers(const EtcdHttpRequest& request) {
  curl_slist* h = nullptr;
  h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Grpc-Metadata-hasleader: true");
  h = curl_slist_append(h, "Expect:");
  if (!request.auth_token.empty()) h = curl_slist_append(h, ("Authorization: " + request.auth_token).c_str());
  return h;
}

bool CertainlyNotSent(CURLcode rc) {
  return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
         rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CERTPROBLEM ||
         rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_URL_MALFORMAT;
}

// `body_started`: curl asked for the request body, so the server may have
// the request even if the error is about a connection (curl's own resend).
EtcdHttpReply Finish(CURL* curl, CURLcode rc, const char* errbuf, const std::string& url, bool body_started) {
  EtcdHttpReply reply;
  if (rc != CURLE_OK) {
    reply.transport_error = url + ": " + (errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc));
    reply.not_sent = CertainlyNotSent(rc) && !body_started;
    return reply;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

}  // namespace

CurlEtcdHttp::CurlEtcdHttp(EtcdTlsOptions tls, Duration connect_timeout)
    : tls_(std::move(tls)), connect_timeout_(connect_timeout) {
  GlobalInit();
}

CurlEtcdHttp::~CurlEtcdHttp() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* CurlEtcdHttp::TakeHandle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void CurlEtcdHttp::GiveBack(void* handle) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < 16) {
    idle_.push_back(handle);
  } else {
    curl_easy_cleanup(static_cast<CURL*>(handle));
  }
}

void CurlEtcdHttp::Setup(void* handle, const EtcdHttpRequest& request, void* headers, void* upload) const {
  CURL* curl = static_cast<CURL*>(handle);
  curl_easy_reset(curl);
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  if (upload != nullptr) {
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, ReadBody);
    curl_easy_setopt(curl, CURLOPT_READDATA, upload);
  } else {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout_.count()));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, 5L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, 2L);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  if (tls_.enabled()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, tls_.ca_file.c_str());
    if (!tls_.cert_file.empty()) curl_easy_setopt(curl, CURLOPT_SSLCERT, tls_.cert_file.c_str());
    if (!tls_.key_file.empty()) curl_easy_setopt(curl, CURLOPT_SSLKEY, tls_.key_file.c_str());
  }
}

EtcdHttpReply CurlEtcdHttp::Post(const EtcdHttpRequest& request) {
  CURL* curl = static_cast<CURL*>(TakeHandle());
  if (curl == nullptr) return {"curl_easy_init failed", true, 0, {}};
  curl_slist* headers = Headers(request);
  UploadState upload{&request.body};
  Setup(curl, request, headers, &upload);
  std::string body;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(curl);
  EtcdHttpReply reply = Finish(curl, rc, errbuf, request.url, upload.started);
  reply.body = std::move(body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  GiveBack(curl);
  return reply;
}

EtcdHttpReply CurlEtcdHttp::Stream(const EtcdHttpRequest& request,
                                   const std::function<bool(const std::string&)>& on_line,
                                   const std::atomic<bool>& stop) {
  // A stream holds its connection for its whole life: its own handle.
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return {"curl_easy_init failed", true, 0, {}};
  curl_slist* headers = Headers(request);
  Setup(curl, request, headers, nullptr);
  StreamState state{&on_line, &stop, {}, false};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, StreamBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, StreamProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &state);
  const CURLcode rc = curl_easy_perform(curl);
  EtcdHttpReply reply;
  if (state.stopped_by_caller) {
    reply.status = 200;
  } else {
    reply = Finish(curl, rc, errbuf, request.url, false);
  }
  reply.body = std::move(state.partial);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return reply;
}

}  // namespace reactor
