// HTTP to the members of an etcd cluster's JSON gateway: the one side effect
// of EtcdStore, behind an interface so the store's failover and parsing are
// unit-tested against recorded responses (tests/unit/etcd_store_test.cc),
// and the real one (libcurl) in CurlEtcdHttp.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/common/clock.h"

namespace reactor {

/// TLS and timeouts of the connections to etcd.
struct EtcdTlsOptions {
  std::string ca_file;  // all three, or none
  std::string cert_file;
  std::string key_file;
  bool enabled() const { return !ca_file.empty(); }
};

struct EtcdHttpRequest {
  std::string url;         // "http://127.0.0.1:2379/v3/kv/range"
  std::string body;        // JSON
  std::string auth_token;  // "" = none; sent as the Authorization header
  Duration timeout{5000};  // whole request (unary only)
};

struct EtcdHttpReply {
  /// "" when an HTTP answer came (any status); else what failed (curl's text).
  std::string transport_error;
  /// True when the request certainly never reached the server (connection
  /// refused, name not resolved, before any of the body was handed to the
  /// connection): safe to send again, even a write.
  bool not_sent = false;
  long status = 0;  // HTTP status
  std::string body;
  bool ok() const { return transport_error.empty() && status == 200; }
};

class EtcdHttp {
 public:
  virtual ~EtcdHttp() = default;
  /// One POST. Thread-safe.
  virtual EtcdHttpReply Post(const EtcdHttpRequest& request) = 0;
  /// A streaming POST (watch, snapshot): `on_line` gets every complete line
  /// of the answer as it arrives; the call returns when the server ends the
  /// answer, the connection fails, `on_line` returns false or `stop` becomes
  /// true (checked at least every second). The reply's body holds what came
  /// after the last newline, or the error body. Thread-safe.
  virtual EtcdHttpReply Stream(const EtcdHttpRequest& request, const std::function<bool(const std::string&)>& on_line,
                               const std::atomic<bool>& stop) = 0;
};

/// libcurl. Keeps idle connections (one pool of easy handles) for reuse;
/// no proxy; sends `Grpc-Metadata-hasleader: true` so a member cut off from
/// its leader refuses requests and cancels watches instead of going silent.
class CurlEtcdHttp : public EtcdHttp {
 public:
  CurlEtcdHttp(EtcdTlsOptions tls, Duration connect_timeout);
  ~CurlEtcdHttp() override;
  CurlEtcdHttp(const CurlEtcdHttp&) = delete;
  CurlEtcdHttp& operator=(const CurlEtcdHttp&) = delete;

  EtcdHttpReply Post(const EtcdHttpRequest& request) override;
  EtcdHttpReply Stream(const EtcdHttpRequest& request, const std::function<bool(const std::string&)>& on_line,
                       const std::atomic<bool>& stop) override;

 private:
  void* TakeHandle();
  void GiveBack(void* handle);
  /// `upload`: an UploadState for the body (Post), or null to send it from
  /// memory (Stream: a watch or snapshot request is safe to resend).
  void Setup(void* handle, const EtcdHttpRequest& request, void* headers, void* upload) const;

  // Constant after construction.
  const EtcdTlsOptions tls_;
  const Duration connect_timeout_;

  std::mutex mu_;
  std::vector<void*> idle_;  // CURL*, protected by mu_
};

}  // namespace reactor
