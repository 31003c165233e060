#include "agent/health/health_checker.h"

#include <curl/curl.h>

#include <algorithm>

namespace reactor {

struct HealthChecker::Check {
  HealthTarget target;
  HealthThreshold threshold{1, 3};
  HealthReport report;
  TimePoint next_due{};
  bool in_flight = false;
  bool removed = false;  // dropped by SetTargets while in flight
  CURL* easy = nullptr;
  std::string url;
  char error[CURL_ERROR_SIZE] = {0};

  ~Check() {
    if (easy) curl_easy_cleanup(easy);
  }
};

namespace {

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

std::string DescribeFailure(CURLcode rc, const char* errbuf, Duration timeout) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout after " + std::to_string(timeout.count()) + "ms";
    case CURLE_COULDNT_CONNECT: return "connection refused";
    case CURLE_GOT_NOTHING: return "empty reply";
    case CURLE_RECV_ERROR: return "connection reset";
    default: return errbuf[0] ? errbuf : curl_easy_strerror(rc);
  }
}

}  // namespace

HealthChecker::HealthChecker(Clock& clock) : clock_(clock) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  multi_ = curl_multi_init();
  curl_multi_setopt(static_cast<CURLM*>(multi_), CURLMOPT_MAXCONNECTS, 0L);
}

HealthChecker::~HealthChecker() {
  Stop();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, c] : checks_) {
    if (c->in_flight) curl_multi_remove_handle(static_cast<CURLM*>(multi_), c->easy);
  }
  checks_.clear();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void HealthChecker::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void HealthChecker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  if (thread_.joinable()) thread_.join();
}

void HealthChecker::SetTargets(const std::vector<HealthTarget>& targets) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, const HealthTarget*> wanted;
  for (const auto& t : targets) wanted[t.id] = &t;
  for (auto& [id, c] : checks_) {
    auto it = wanted.find(id);
    if (it == wanted.end() || it->second->address != c->target.address) c->removed = true;
  }
  for (const auto& t : targets) {
    auto it = checks_.find(t.id);
    if (it != checks_.end() && !it->second->removed) {
      it->second->target = t;
      it->second->threshold.SetThresholds(t.rise, t.fall);
      continue;
    }
    if (it != checks_.end()) {
      // Address changed: start over. An in-flight transfer is retired by the loop.
      if (it->second->in_flight) {
        curl_multi_remove_handle(static_cast<CURLM*>(multi_), it->second->easy);
      }
      checks_.erase(it);
    }
    auto c = std::make_unique<Check>();
    c->target = t;
    c->threshold = HealthThreshold(t.rise, t.fall, t.initially_healthy);
    c->report.state = c->threshold.state();
    c->next_due = clock_.Now();
    checks_[t.id] = std::move(c);
  }
  for (auto it = checks_.begin(); it != checks_.end();) {
    if (it->second->removed) {
      if (it->second->in_flight) curl_multi_remove_handle(static_cast<CURLM*>(multi_), it->second->easy);
      it = checks_.erase(it);
    } else {
      ++it;
    }
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

std::map<std::string, HealthReport> HealthChecker::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, HealthReport> out;
  for (const auto& [id, c] : checks_) out[id] = c->report;
  return out;
}

void HealthChecker::StartCheck(Check& c) {
  if (!c.easy) {
    c.easy = curl_easy_init();
  } else {
    curl_easy_reset(c.easy);
  }
  const HealthTarget& t = c.target;
  c.url = "http://" + t.address + (t.path.empty() ? "/" : t.path);
  c.error[0] = 0;
  curl_easy_setopt(c.easy, CURLOPT_URL, c.url.c_str());
  curl_easy_setopt(c.easy, CURLOPT_PRIVATE, &c);
  curl_easy_setopt(c.easy, CURLOPT_ERRORBUFFER, c.error);
  curl_easy_setopt(c.easy, CURLOPT_TIMEOUT_MS, static_cast<long>(t.timeout.count()));
  curl_easy_setopt(c.easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(t.timeout.count()));
  curl_easy_setopt(c.easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.easy, CURLOPT_NOPROXY, "*");
  // A fresh connection per check: a kept-alive probe connection would count
  // as an active connection to the instance and hold up its draining.
  curl_easy_setopt(c.easy, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(c.easy, CURLOPT_FRESH_CONNECT, 1L);
  if (t.path.empty()) {
    curl_easy_setopt(c.easy, CURLOPT_CONNECT_ONLY, 1L);
  } else {
    curl_easy_setopt(c.easy, CURLOPT_WRITEFUNCTION, Discard);
    curl_easy_setopt(c.easy, CURLOPT_USERAGENT, "reactor-health/1");
  }
  c.in_flight = true;
  curl_multi_add_handle(static_cast<CURLM*>(multi_), c.easy);
}

void HealthChecker::Finish(Check& c, bool ok, const std::string& result) {
  c.in_flight = false;
  HealthTransition tr = c.threshold.Record(ok);
  c.report.state = c.threshold.state();
  c.report.consecutive_successes = c.threshold.consecutive_successes();
  c.report.consecutive_failures = c.threshold.consecutive_failures();
  c.report.checks++;
  c.report.last_result = result;
  if (tr == HealthTransition::kChanged) {
    c.report.transitions++;
    transition_pending_ = true;
  }
  // Next check one interval after this one started, with ±10% jitter so that
  // checks of many instances spread out instead of firing together.
  int64_t iv = c.target.interval.count();
  // An instance that has not risen yet is probed every 100 ms (or its
  // interval, if shorter) so that a new instance takes traffic promptly.
  if (c.report.state == HealthState::kPending) iv = std::min<int64_t>(iv, 100);
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  int64_t jitter = iv >= 10 ? static_cast<int64_t>(rng_ % static_cast<uint64_t>(iv / 5 + 1)) - iv / 10 : 0;
  c.next_due = clock_.Now() + Duration(std::max<int64_t>(iv + jitter, 10));
}

void HealthChecker::Step(Duration wait) {
  CURLM* multi = static_cast<CURLM*>(multi_);
  TimePoint now = clock_.Now();
  Duration until_next = wait;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, c] : checks_) {
      if (c->in_flight) continue;
      if (c->next_due <= now) {
        StartCheck(*c);
      } else {
        until_next = std::min(until_next, std::chrono::duration_cast<Duration>(c->next_due - now));
      }
    }
  }
  int running = 0;
  curl_multi_perform(multi, &running);
  int numfds = 0;
  curl_multi_poll(multi, nullptr, 0, static_cast<int>(std::max<int64_t>(until_next.count(), 1)), &numfds);
  curl_multi_perform(multi, &running);
  std::lock_guard<std::mutex> lock(mu_);
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Check* c = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&c));
    CURLcode rc = msg->data.result;
    curl_multi_remove_handle(multi, msg->easy_handle);
    if (c == nullptr) continue;
    if (rc != CURLE_OK) {
      Finish(*c, false, DescribeFailure(rc, c->error, c->target.timeout));
    } else if (c->target.path.empty()) {
      Finish(*c, true, "TCP connect ok");
    } else {
      long code = 0;
      curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
      Finish(*c, code >= 200 && code < 400, "HTTP " + std::to_string(code));
    }
  }
}

void HealthChecker::Loop() {
  while (true) {
    std::function<void()> notify;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      if (transition_pending_) notify = on_transition_;
      transition_pending_ = false;
    }
    if (notify) notify();
    Step(Duration(200));
  }
}

void HealthChecker::SetOnTransition(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  on_transition_ = std::move(callback);
}

void HealthChecker::RunRound(Duration limit) {
  std::map<std::string, uint64_t> before;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, c] : checks_) {
      before[id] = c->report.checks;
      if (!c->in_flight) c->next_due = clock_.Now();
    }
  }
  TimePoint deadline = SystemClock::Get().Now() + limit;
  while (SystemClock::Get().Now() < deadline) {
    Step(Duration(20));
    std::lock_guard<std::mutex> lock(mu_);
    bool all = true;
    for (auto& [id, c] : checks_) {
      if (c->report.checks <= before[id]) all = false;
    }
    if (all) return;
  }
}

}  // namespace reactor
