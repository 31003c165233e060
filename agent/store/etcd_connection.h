// The members of one etcd cluster and how a request reaches one of them:
// the current member is kept while it answers; a connection error or a
// member without a leader moves to the next, with bounded attempts and
// exponential backoff. Authentication (etcd_user / etcd_password_file) gets a
// token from /v3/auth/authenticate and gets a new one when etcd says it has
// expired.
//
// Writes are never silently dropped: a conditional write (a transaction
// with compares) is sent again only when it certainly did not take effect
// (connection refused, "no leader"); when its outcome is unknown (the member
// died or timed out after it was sent) the caller gets Unavailable saying so,
// and re-reads before trying again, as with a lost compare-and-swap. A write
// without compares leaves the same state when applied twice, so it is sent
// again to another member.
//
// Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/store/etcd_http.h"

namespace reactor {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "host:port" each; at least one
  EtcdTlsOptions tls;                  // https when tls.enabled()
  std::string user;                    // "" = no authentication
  std::string password;
  /// One unary request. Short, because a write forwarded to a leader that
  /// dies waits this long before it can go to the new leader (etcd itself
  /// answers such a write only after ~7 s).
  Duration request_timeout{2000};
  Duration connect_timeout{1000};
  /// How long one request keeps trying other members (e.g. through a leader
  /// election, about 1-2 s). It stops earlier once every member has refused
  /// the connection (the whole cluster is down).
  Duration retry_budget{8000};
  /// A cap on attempts per request; 0 = none (the budget bounds them).
  int max_attempts = 0;
  Duration backoff_initial{50};
  Duration backoff_max{1000};
  /// History kept by periodic compaction (agent/store/etcd_compaction.h);
  /// 0 = none (etcd's own --auto-compaction-retention, or an operator's).
  Duration compaction_retention{5 * 60 * 1000};
};

class EtcdConnection {
 public:
  enum class Kind {
    kRead,             // safe to repeat on any failure
    kIdempotentWrite,  // applying it twice leaves the same state (puts and
                       // deletes without compares, lease grant/revoke): repeated
    kWrite,            // conditional: repeated only when it certainly did not take effect
  };

  /// `sleep` waits between attempts (real time in production, recorded in tests).
  EtcdConnection(EtcdOptions options, std::unique_ptr<EtcdHttp> http, std::function<void(Duration)> sleep);

  /// POSTs `body` to `path` (e.g. "/v3/kv/range") and returns the 200
  /// answer's body. Errors: Unavailable (no member answered; or a write's
  /// outcome is unknown) naming each member's failure; the gateway's own
  /// errors mapped by etcd::ErrorStatus (NotFound, InvalidArgument, ...).
  Result<std::string> Call(const std::string& path, const std::string& body, Kind kind);
  /// As above, trying other members for at most `retry_budget` (instead of
  /// options().retry_budget): for background work that must not hold on.
  Result<std::string> Call(const std::string& path, const std::string& body, Kind kind, Duration retry_budget);

  /// The base URL of the member to use now ("http://127.0.0.1:2379").
  std::string CurrentMember();
  /// Moves on from `member_url` if it is still the current one.
  void MemberFailed(const std::string& member_url);
  /// The auth token ("" without auth), authenticating first if needed.
  Result<std::string> Token();
  /// Forgets `stale` so the next Token() authenticates again.
  void TokenRejected(const std::string& stale);

  EtcdHttp& http() { return *http_; }
  const EtcdOptions& options() const { return options_; }
  void Sleep(Duration d) { sleep_(d); }
  /// "etcd://h1:2379,h2:2379", for messages.
  std::string Describe() const;

 private:
  Result<std::string> Authenticate();

  // Constant after construction.
  const EtcdOptions options_;
  const std::unique_ptr<EtcdHttp> http_;
  const std::function<void(Duration)> sleep_;
  std::vector<std::string> member_urls_;

  // One authentication at a time: when etcd refuses a token (it restarted,
  // the token expired), every thread needs a new one at once, and each
  // authenticate is a raft write plus a bcrypt check on etcd: a stampede of
  // them starved a restarted member for tens of seconds.
  std::mutex auth_mu_;
  std::mutex mu_;
  size_t current_ = 0;  // protected by mu_
  std::string token_;   // protected by mu_
};

}  // namespace reactor
