#include "agent/store/etcd_connection.h"

#include <algorithm>

#include "agent/store/etcd_codec.h"

namespace reactor {
namespace {

bool IsAuthTokenError(const etcd::GatewayError& e) {
  return e.grpc_code == 16 &&
         (e.message.find("invalid auth token") != std::string::npos || e.message.find("token") != std::string::npos);
}

}  // namespace

EtcdConnection::EtcdConnection(EtcdOptions options, std::unique_ptr<EtcdHttp> http, std::function<void(Duration)> sleep)
    : options_(std::move(options)), http_(std::move(http)), sleep_(std::move(sleep)) {
  const std::string scheme = options_.tls.enabled() ? "https://" : "http://";
  for (const std::string& e : options_.endpoints) member_urls_.push_back(scheme + e);
}

std::string EtcdConnection::Describe() const {
  std::string out = "etcd://";
  for (size_t i = 0; i < options_.endpoints.size(); ++i) out += (i ? "," : "") + options_.endpoints[i];
  return out;
}

std::string EtcdConnection::CurrentMember() {
  std::lock_guard<std::mutex> lock(mu_);
  return member_urls_.empty() ? std::string() : member_urls_[current_ % member_urls_.size()];
}

void EtcdConnection::MemberFailed(const std::string& member_url) {
  std::lock_guard<std::mutex> lock(mu_);
  if (member_urls_.empty()) return;
  if (member_urls_[current_ % member_urls_.size()] == member_url) current_ = (current_ + 1) % member_urls_.size();
}

Result<std::string> EtcdConnection::Token() {
  if (options_.user.empty()) return std::string();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!token_.empty()) return token_;
  }
  std::lock_guard<std::mutex> auth(auth_mu_);
  {
    // Another thread may have authenticated while this one waited.
    std::lock_guard<std::mutex> lock(mu_);
    if (!token_.empty()) return token_;
  }
  auto token = Authenticate();
  if (!token.ok()) return token.status();
  std::lock_guard<std::mutex> lock(mu_);
  token_ = *token;
  return token_;
}

void EtcdConnection::TokenRejected(const std::string& stale) {
  std::lock_guard<std::mutex> lock(mu_);
  if (token_ == stale) token_.clear();
}

Result<std::string> EtcdConnection::Authenticate() {
  const std::string body = etcd::AuthenticateRequest(options_.user, options_.password);
  std::string failures;
  for (size_t i = 0; i < std::max<size_t>(1, member_urls_.size()); ++i) {
    const std::string member = CurrentMember();
    EtcdHttpReply r = http_->Post({member + "/v3/auth/authenticate", body, "", options_.request_timeout});
    if (r.ok()) return etcd::ParseAuthToken(r.body);
    if (r.transport_error.empty()) {
      auto e = etcd::ParseGatewayError(r.body);
      if (e && !etcd::IsRetryableOnAnotherMember(*e) && e->grpc_code != 14) {
        // Wrong user or password: another member says the same.
        return etcd::ErrorStatus(*e, "etcd authenticate as '" + options_.user + "' at " + member);
      }
      // Not an etcd error: say what answered (etcd 3.4's gateway refuses a
      // client certificate with a CommonName this way, in plain text).
      failures +=
          "; " + member + ": " + (e ? e->message : "HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200));
    } else {
      failures += "; " + r.transport_error;
    }
    MemberFailed(member);
  }
  return Status::Unavailable("etcd authenticate at " + Describe() + ": no member answered" + failures);
}

Result<std::string> EtcdConnection::Call(const std::string& path, const std::string& body, Kind kind) {
  return Call(path, body, kind, options_.retry_budget);
}

Result<std::string> EtcdConnection::Call(const std::string& path, const std::string& body, Kind kind,
                                         Duration retry_budget) {
  if (member_urls_.empty()) return Status::InvalidArgument("etcd: no endpoints");
  const auto start = std::chrono::steady_clock::now();
  Duration slept(0);
  Duration backoff = options_.backoff_initial;
  std::string failures;
  std::vector<std::string> refused;  // members that refused the connection in this call
  bool reauthenticated = false;
  int attempt = 0;
  auto spent = [&] { return std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - start) + slept; };
  auto give_up = [&] {
    return refused.size() >= member_urls_.size() || spent() >= retry_budget ||
           (options_.max_attempts > 0 && attempt >= options_.max_attempts);
  };
  for (;; ++attempt) {
    if (attempt > 0) {
      if (give_up()) break;
      Sleep(backoff);
      slept += backoff;
      backoff = std::min(backoff * 2, options_.backoff_max);
    }
    auto token = Token();
    if (!token.ok()) {
      if (token.status().code() != Status::Code::kUnavailable) return token.status();
      failures += "; " + token.status().message();
      if (refused.size() < member_urls_.size()) refused.assign(member_urls_.begin(), member_urls_.end());
      continue;
    }
    const std::string member = CurrentMember();
    EtcdHttpReply r = http_->Post({member + path, body, *token, options_.request_timeout});
    if (r.ok()) return std::move(r.body);
    if (!r.transport_error.empty()) {
      failures += "; " + r.transport_error;
      MemberFailed(member);
      if (kind == Kind::kWrite && !r.not_sent) {
        return Status::Unavailable("etcd " + path + " at " + member + ": " + r.transport_error +
                                   " (the conditional write may or may not have been applied)");
      }
      if (r.not_sent && std::find(refused.begin(), refused.end(), member) == refused.end()) refused.push_back(member);
      continue;
    }
    auto e = etcd::ParseGatewayError(r.body);
    if (!e) {
      failures += "; " + member + ": HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200);
      MemberFailed(member);
      if (kind == Kind::kWrite) {
        return Status::Unavailable("etcd " + path + " at " + member + ": HTTP " + std::to_string(r.status) +
                                   " without an etcd error (the conditional write may or may not have been applied)");
      }
      continue;
    }
    if (IsAuthTokenError(*e) && !options_.user.empty() && !reauthenticated) {
      TokenRejected(*token);
      reauthenticated = true;
      continue;
    }
    if (etcd::IsRetryableOnAnotherMember(*e) || (kind == Kind::kRead && e->grpc_code == 14)) {
      failures += "; " + member + ": " + e->message;
      MemberFailed(member);
      continue;
    }
    return etcd::ErrorStatus(*e, "etcd " + path + " at " + member);
  }
  // Only the last few failures: the message stays readable in `status`.
  const std::string why = failures.size() > 600 ? "; ..." + failures.substr(failures.size() - 600) : failures;
  return Status::Unavailable("etcd " + path + ": no member of " + Describe() + " answered after " +
                             std::to_string(attempt) + " attempts in " + std::to_string(spent().count()) + " ms" + why);
}

}  // namespace reactor
