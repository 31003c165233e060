#include "agent/health/health_checker.h"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "agent/telemetry/counter_registry.h"

namespace reactor {

struct HealthChecker::Check {
  HealthTarget target;
  HealthThreshold threshold{1, 3};
  HealthReport report;
  std::multimap<TimePoint, Check*>::iterator due;  // valid iff queued; its key is the due time
  bool queued = false;
  bool in_flight = false;
  bool round_pending = false;  // RunRound still waits for this check
  bool retired = false;        // dropped by SetTargets; freed by the checking thread
  CURL* easy = nullptr;  // borrowed from the idle pool while in flight
  std::string url;
  char error[CURL_ERROR_SIZE] = {0};
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

// Idle easy handles kept for reuse. Handles exist only for checks in
// flight (a few dozen in a steady state, every target during a first round),
// so memory does not grow with the number of targets.
constexpr size_t kMaxIdleHandles = 256;

// At most this many checks in flight. Each check's timeout runs from its
// start, so starting thousands of connects at once (a first round, or many
// targets falling due together) would time checks out while they wait for
// the CPU, not for the instance; the rest wait for a slot in due order.
constexpr size_t kMaxInFlight = 1024;

std::string UrlOf(const HealthTarget& t) { return "http://" + t.address + (t.path.empty() ? "/" : t.path); }

// A handle with the options every check shares.
CURL* NewHandle() {
  CURL* easy = curl_easy_init();
  if (!easy) return nullptr;
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
  // Not cached: libcurl prunes its DNS cache after every transfer by walking
  // all of it, which with one host:port entry per target costs O(targets)
  // per check. Target addresses are numeric; there is nothing to cache.
  curl_easy_setopt(easy, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
  // The request is one small write, which Nagle never delays; leaving it on
  // saves a setsockopt per check.
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 0L);
  // A fresh connection per check: a kept-alive probe connection would count
  // as an active connection to the instance and hold up its draining, and
  // would not show whether the instance still accepts connections.
  curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
  // Health responses are small and discarded; a 16 KiB receive buffer per
  // in-flight check would be most of the checker's memory.
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 1024L);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "reactor-health/1");
  return easy;
}

}  // namespace

HealthChecker::HealthChecker(Clock& clock) : clock_(clock) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);

  CURLM* multi = curl_multi_init();
  multi_ = multi;
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 0L);
  // The socket interface: curl tells us which sockets to watch and when its
  // next timeout is, and we hand it only the sockets that have events, so a
  // step costs O(events) rather than O(transfers).
  curl_socket_callback on_socket = [](CURL*, curl_socket_t fd, int what, void* self, void* socketp) -> int {
    static_cast<HealthChecker*>(self)->WatchSocket(fd, what, socketp != nullptr);
    return 0;
  };
  curl_multi_timer_callback on_timer = [](CURLM*, long timeout_ms, void* self) -> int {
    static_cast<HealthChecker*>(self)->SetCurlTimer(timeout_ms);
    return 0;
  };
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
}

HealthChecker::~HealthChecker() {
  Stop();
  CURLM* multi = static_cast<CURLM*>(multi_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, c] : checks_) ReleaseHandle(*c);
    for (auto& c : retired_) ReleaseHandle(*c);
    due_.clear();
    checks_.clear();
    retired_.clear();
  }
  for (CURL* easy : idle_easy_) curl_easy_cleanup(easy);
  idle_easy_.clear();
  curl_multi_cleanup(multi);
  close(epoll_fd_);
  close(wake_fd_);
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
  Wake();
  if (thread_.joinable()) thread_.join();
}

void HealthChecker::Wake() {
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;  // EAGAIN: a wake-up is already pending
}

void HealthChecker::Schedule(Check& c, TimePoint due) {
  Unschedule(c);
  c.due = due_.emplace(due, &c);
  c.queued = true;
}

void HealthChecker::Unschedule(Check& c) {
  if (!c.queued) return;
  due_.erase(c.due);
  c.queued = false;
}

void HealthChecker::Retire(std::unique_ptr<Check> c) {
  Unschedule(*c);
  c->retired = true;
  if (c->round_pending) {
    c->round_pending = false;
    --round_remaining_;
  }
  retired_.push_back(std::move(c));
}

void HealthChecker::SetTargets(const std::vector<HealthTarget>& targets) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, const HealthTarget*> wanted;
  for (const auto& t : targets) wanted[t.id] = &t;
  for (auto it = checks_.begin(); it != checks_.end();) {
    auto w = wanted.find(it->first);
    if (w == wanted.end() || w->second->address != it->second->target.address) {
      // Gone, or its address changed (start over): an in-flight transfer is
      // detached by the checking thread, which alone may touch curl.
      Retire(std::move(it->second));
      it = checks_.erase(it);
    } else {
      ++it;
    }
  }
  const TimePoint now = clock_.Now();
  for (const auto& t : targets) {
    auto it = checks_.find(t.id);
    if (it != checks_.end()) {
      Check& c = *it->second;
      c.target = t;
      c.url = UrlOf(t);
      c.threshold.SetThresholds(t.rise, t.fall);
      continue;
    }
    auto c = std::make_unique<Check>();
    c->target = t;
    c->url = UrlOf(t);
    c->threshold = HealthThreshold(t.rise, t.fall, t.initially_healthy);
    c->report.state = c->threshold.state();
    Schedule(*c, now);
    checks_[t.id] = std::move(c);
  }
  Wake();
}

std::map<std::string, HealthReport> HealthChecker::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, HealthReport> out;
  for (const auto& [id, c] : checks_) out.emplace_hint(out.end(), id, c->report);
  return out;
}

void HealthChecker::StartCheck(Check& c) {
  if (idle_easy_.empty()) {
    c.easy = NewHandle();
  } else {
    c.easy = idle_easy_.back();
    idle_easy_.pop_back();
  }
  if (!c.easy) {
    Finish(c, false, "cannot create a curl handle");
    return;
  }
  // Only what differs between checks; NewHandle set the rest.
  const HealthTarget& t = c.target;
  const long timeout_ms = static_cast<long>(t.timeout.count());
  curl_easy_setopt(c.easy, CURLOPT_URL, c.url.c_str());
  curl_easy_setopt(c.easy, CURLOPT_PRIVATE, &c);
  curl_easy_setopt(c.easy, CURLOPT_ERRORBUFFER, c.error);
  curl_easy_setopt(c.easy, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c.easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c.easy, CURLOPT_CONNECT_ONLY, t.path.empty() ? 1L : 0L);
  c.error[0] = 0;
  CURLMcode rc = curl_multi_add_handle(static_cast<CURLM*>(multi_), c.easy);
  if (rc != CURLM_OK) {
    ReleaseHandle(c);
    Finish(c, false, curl_multi_strerror(rc));
    return;
  }
  c.in_flight = true;
  ++in_flight_;
}

void HealthChecker::ReleaseHandle(Check& c) {
  if (!c.easy) return;
  if (c.in_flight) {
    curl_multi_remove_handle(static_cast<CURLM*>(multi_), c.easy);
    --in_flight_;
  }
  c.in_flight = false;
  if (idle_easy_.size() < kMaxIdleHandles) {
    idle_easy_.push_back(c.easy);
  } else {
    curl_easy_cleanup(c.easy);
  }
  c.easy = nullptr;
}

void HealthChecker::Finish(Check& c, bool ok, const std::string& result) {
  c.in_flight = false;
  HealthTransition tr = c.threshold.Record(ok);
  c.report.state = c.threshold.state();
  c.report.consecutive_successes = c.threshold.consecutive_successes();
  c.report.consecutive_failures = c.threshold.consecutive_failures();
  c.report.checks++;
  c.report.last_result = result;
  CountEvent("reactor_health_checks_total", {{"endpoint", c.target.endpoint}, {"result", ok ? "success" : "failure"}});
  if (tr == HealthTransition::kChanged) {
    c.report.transitions++;
    transition_pending_ = true;
  }
  if (c.round_pending) {
    c.round_pending = false;
    --round_remaining_;
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
  Schedule(c, clock_.Now() + Duration(std::max<int64_t>(iv + jitter, 10)));
}

void HealthChecker::WatchSocket(int fd, int what, bool known) {
  if (what == CURL_POLL_REMOVE) {
    // curl reports removal before it closes the socket.
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    return;
  }
  epoll_event ev{};
  ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
  ev.data.fd = fd;
  int op = known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(epoll_fd_, op, fd, &ev) != 0) {
    epoll_ctl(epoll_fd_, op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
  }
  // Any non-null pointer: marks the socket as added for the next call.
  if (!known) curl_multi_assign(static_cast<CURLM*>(multi_), fd, this);
}

void HealthChecker::SetCurlTimer(long timeout_ms) {
  curl_timer_set_ = timeout_ms >= 0;
  if (curl_timer_set_) curl_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
}

void HealthChecker::DriveTimer() {
  if (!curl_timer_set_ || std::chrono::steady_clock::now() < curl_deadline_) return;
  // One-shot: curl sets the timer again (through SetCurlTimer) if it needs it.
  curl_timer_set_ = false;
  int running = 0;
  curl_multi_socket_action(static_cast<CURLM*>(multi_), CURL_SOCKET_TIMEOUT, 0, &running);
}

void HealthChecker::CollectFinished() {
  CURLM* multi = static_cast<CURLM*>(multi_);
  std::lock_guard<std::mutex> lock(mu_);
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Check* c = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&c));
    CURLcode rc = msg->data.result;
    if (c == nullptr) {
      curl_multi_remove_handle(multi, msg->easy_handle);
      continue;
    }
    long code = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
    ReleaseHandle(*c);
    // A check that SetTargets dropped meanwhile has nothing to record.
    if (c->retired) continue;
    if (rc != CURLE_OK) {
      Finish(*c, false, DescribeFailure(rc, c->error, c->target.timeout));
    } else if (c->target.path.empty()) {
      Finish(*c, true, "TCP connect ok");
    } else {
      Finish(*c, code >= 200 && code < 400, "HTTP " + std::to_string(code));
    }
  }
}

void HealthChecker::Step(Duration wait) {
  CURLM* multi = static_cast<CURLM*>(multi_);
  const TimePoint now = clock_.Now();
  Duration until_next = wait;
  std::vector<std::unique_ptr<Check>> retired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    retired.swap(retired_);
    for (auto& c : retired) ReleaseHandle(*c);
    // Only the due checks, in due order; a check that fails to start is
    // rescheduled by Finish with a later due time, so this loop ends.
    while (!due_.empty() && due_.begin()->first <= now && in_flight_ < kMaxInFlight) {
      Check* c = due_.begin()->second;
      Unschedule(*c);
      StartCheck(*c);
    }
    // With every slot taken, the next start waits for a finished check.
    if (!due_.empty() && in_flight_ < kMaxInFlight) {
      until_next = std::min(until_next, std::chrono::duration_cast<Duration>(due_.begin()->first - now));
    }
  }
  retired.clear();

  DriveTimer();  // an added transfer starts on curl's (zero) timeout
  CollectFinished();

  // Wait for socket events, curl's next timeout or the next due check.
  auto timeout = std::chrono::steady_clock::duration(until_next);
  if (curl_timer_set_) timeout = std::min(timeout, curl_deadline_ - std::chrono::steady_clock::now());
  int timeout_ms = static_cast<int>(
      std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(timeout).count()));
  epoll_event events[1024];
  int n = epoll_wait(epoll_fd_, events, 1024, timeout_ms);
  int running = 0;
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    if (fd == wake_fd_) {
      uint64_t count = 0;
      ssize_t r = read(wake_fd_, &count, sizeof(count));
      (void)r;
      continue;
    }
    uint32_t e = events[i].events;
    int mask = ((e & EPOLLIN) ? CURL_CSELECT_IN : 0) | ((e & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
               ((e & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
    curl_multi_socket_action(multi, fd, mask, &running);
  }
  DriveTimer();
  CollectFinished();
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    const TimePoint now = clock_.Now();
    round_remaining_ = 0;
    for (auto& [id, c] : checks_) {
      c->round_pending = true;
      ++round_remaining_;
      if (!c->in_flight) Schedule(*c, now);
    }
  }
  TimePoint deadline = SystemClock::Get().Now() + limit;
  while (SystemClock::Get().Now() < deadline) {
    Step(Duration(20));
    std::lock_guard<std::mutex> lock(mu_);
    if (round_remaining_ == 0) return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, c] : checks_) c->round_pending = false;
  round_remaining_ = 0;
}

}  // namespace reactor
