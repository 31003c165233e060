#include "agent/health/health_checker.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/telemetry/counter_registry.h"

namespace reactor {

struct HealthChecker::Check {
  // Guarded by mu_.
  HealthTarget target;
  HealthThreshold threshold{1, 3};
  HealthReport report;
  std::multimap<TimePoint, Check*>::iterator due;  // valid iff queued; its key is the due time
  bool queued = false;
  bool in_flight = false;
  bool round_pending = false;  // RunRound still waits for this check
  bool retired = false;        // dropped by SetTargets; freed by the checking thread

  // The checking thread's, copied from `target` (under mu_) when a check starts.
  ProbeKind kind = ProbeKind::kHttp;
  Duration timeout{1000};
  std::string address;  // never changes: a new address is a new Check
  std::string path;     // of `request`
  std::string request;  // the fixed GET, built when the path changes
  bool valid_path = true;

  // The checking thread's alone.
  ProbeSession session;
  int fd = -1;
  uint64_t inode = 0;
  uint32_t watched = 0;  // epoll events registered for fd; 0 = not registered
  sockaddr_storage addr{};
  socklen_t addr_len = 0;  // 0 = not resolved
  bool numeric = false;    // addr came from an IP literal: never re-resolved
  TimePoint resolved_at{};
  TimePoint deadline{};
  std::multimap<TimePoint, Check*>::iterator deadline_it;  // valid iff armed
  bool armed = false;
};

namespace {

// At most this many checks in flight. Each check's timeout runs from its
// start, so starting thousands at once (many targets falling due together)
// would time checks out while they wait for the CPU, not for the instance;
// the rest wait for a slot in due order.
constexpr size_t kMaxInFlight = 4096;

// New targets of one SetTargets start at most one per this many µs (and
// within one interval), so a first round at 10,000 is spread, not a burst.
constexpr int64_t kFirstRoundSpacingUs = 100;

// A host name's addresses are looked up again after this long (on the next
// connect; a kept-alive connection stays where it is).
constexpr Duration kResolveTtl{60000};

constexpr size_t kReadBuffer = 4096;

// A path that is safe on the request line: '/' then visible ASCII, so no
// header can be injected.
bool ValidPath(const std::string& path) {
  if (path.empty() || path[0] != '/') return false;
  for (unsigned char ch : path) {
    if (ch <= 0x20 || ch >= 0x7f) return false;
  }
  return true;
}

std::string BuildRequest(const std::string& path, const std::string& address) {
  std::string r;
  r.reserve(path.size() + address.size() + 96);
  r.append("GET ").append(path).append(" HTTP/1.1\r\nHost: ").append(address);
  r.append("\r\nUser-Agent: reactor-health/1\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n");
  return r;
}

// "ip:port", "[v6]:port" or "name:port" → a socket address. A name is looked
// up with getaddrinfo (blocking; instance addresses are IP literals).
bool Resolve(const std::string& address, sockaddr_storage* out, socklen_t* len, bool* numeric, std::string* error) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 >= address.size()) {
    *error = "bad address " + address;
    return false;
  }
  std::string host = address.substr(0, colon);
  const std::string port_text = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  const long port = std::strtol(port_text.c_str(), &end, 10);
  if (*end != '\0' || port <= 0 || port > 65535) {
    *error = "bad port in " + address;
    return false;
  }
  std::memset(out, 0, sizeof(*out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    *numeric = true;
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    *numeric = true;
    return true;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    *error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  *len = static_cast<socklen_t>(res->ai_addrlen);
  *numeric = false;
  freeaddrinfo(res);
  return true;
}

}  // namespace

HealthChecker::HealthChecker(Clock& clock, ExcludedSockets& own_sockets) : clock_(clock), own_sockets_(own_sockets) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // every other registration points at its Check
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
}

HealthChecker::~HealthChecker() {
  Stop();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, c] : checks_) Abandon(*c);
  for (auto& c : retired_) Abandon(*c);
  due_.clear();
  checks_.clear();
  retired_.clear();
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
  if (c->in_flight) {
    c->in_flight = false;
    --in_flight_;
  }
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
      // Gone, or its address changed (start over): its socket is closed by
      // the checking thread, which alone touches it.
      Retire(std::move(it->second));
      it = checks_.erase(it);
    } else {
      ++it;
    }
  }
  size_t fresh = 0;
  for (const auto& t : targets) fresh += checks_.count(t.id) == 0 ? 1 : 0;
  const TimePoint now = clock_.Now();
  size_t i = 0;
  for (const auto& t : targets) {
    auto it = checks_.find(t.id);
    if (it != checks_.end()) {
      Check& c = *it->second;
      c.target = t;
      c.threshold.SetThresholds(t.rise, t.fall);
      continue;
    }
    auto c = std::make_unique<Check>();
    c->target = t;
    c->threshold = HealthThreshold(t.rise, t.fall, t.initially_healthy);
    c->report.state = c->threshold.state();
    const int64_t interval_us = std::max<int64_t>(t.interval.count(), 1) * 1000;
    const int64_t spacing_us = std::min<int64_t>(kFirstRoundSpacingUs, interval_us / static_cast<int64_t>(fresh));
    Schedule(*c, now + std::chrono::duration_cast<Duration>(std::chrono::microseconds(spacing_us * i++)));
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

void HealthChecker::Finish(Check& c, bool ok, const std::string& result) {
  if (c.in_flight) {
    c.in_flight = false;
    --in_flight_;
  }
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
  // Next check one interval after this one ended, with ±10% jitter so that
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

void HealthChecker::RecordOutcomes() {
  if (outcomes_.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (const Outcome& o : outcomes_) {
    // A check that SetTargets dropped meanwhile has nothing to record.
    if (!o.check->retired) Finish(*o.check, o.ok, o.result);
  }
  outcomes_.clear();
}

// ---- The socket side (checking thread only) ---------------------------------

void HealthChecker::Watch(Check& c, uint32_t events) {
  if (c.watched == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = &c;
  epoll_ctl(epoll_fd_, c.watched == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &ev);
  c.watched = events;
}

void HealthChecker::CloseSocket(Check& c, bool reset) {
  if (c.fd < 0) return;
  if (reset) {
    // A TCP check ends with a RST (as HAProxy's do): no TIME_WAIT left
    // behind per check, and one packet instead of four.
    linger lg{1, 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  own_sockets_.Remove(c.inode);
  close(c.fd);  // also drops it from the epoll set
  c.fd = -1;
  c.inode = 0;
  c.watched = 0;
  --open_sockets_;
}

int HealthChecker::OpenAndConnect(Check& c, std::string* unresolved) {
  const TimePoint now = clock_.Now();
  if (c.addr_len == 0 || (!c.numeric && now - c.resolved_at >= kResolveTtl)) {
    bool numeric = false;
    if (!Resolve(c.address, &c.addr, &c.addr_len, &numeric, unresolved)) {
      c.addr_len = 0;
      return -1;
    }
    c.numeric = numeric;
    c.resolved_at = now;
  }
  const int fd = socket(c.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct stat st {};
  c.fd = fd;
  ++open_sockets_;
  if (fstat(fd, &st) == 0) {
    c.inode = st.st_ino;
    own_sockets_.Add(c.inode);
  }
  if (c.kind == ProbeKind::kHttp) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&c.addr), c.addr_len) == 0) return 0;
  const int err = errno;
  if (err == EINPROGRESS) Watch(c, EPOLLOUT);
  return err;
}

int HealthChecker::SendRequest(Check& c) {
  const ssize_t n = send(c.fd, c.request.data(), c.request.size(), MSG_NOSIGNAL);
  if (n < 0) return errno;
  // The request is one small write into an empty socket buffer; a short one
  // means the connection is unusable.
  if (static_cast<size_t>(n) != c.request.size()) return EPIPE;
  Watch(c, EPOLLIN | EPOLLRDHUP);
  return 0;
}

void HealthChecker::Disarm(Check& c) {
  if (!c.armed) return;
  deadlines_.erase(c.deadline_it);
  c.armed = false;
}

void HealthChecker::Carry(Check& c, ProbeSession::Action a) {
  // Each step either waits for the kernel or yields the next action; a
  // reconnect happens at most once per check, so this ends.
  for (;;) {
    if (a.finished) {
      Disarm(c);
      outcomes_.push_back(Outcome{&c, a.ok, std::move(a.result)});
      a.finished = false;
    }
    switch (a.what) {
      case ProbeSession::Action::kNothing: return;
      case ProbeSession::Action::kClose: CloseSocket(c, c.kind == ProbeKind::kTcp); return;
      case ProbeSession::Action::kReconnect: CloseSocket(c, false); [[fallthrough]];
      case ProbeSession::Action::kConnect: {
        std::string unresolved;
        const int err = OpenAndConnect(c, &unresolved);
        if (err == EINPROGRESS) return;
        if (err < 0) {
          // Not resolvable: no socket was opened.
          c.session.Abandon();
          Disarm(c);
          outcomes_.push_back(Outcome{&c, false, std::move(unresolved)});
          return;
        }
        a = c.session.Connected(err);
        continue;
      }
      case ProbeSession::Action::kSend: {
        const int err = SendRequest(c);
        if (err == 0) return;
        a = c.session.PeerClosed(err);
        continue;
      }
    }
    return;
  }
}

void HealthChecker::Begin(Check& c, const TimePoint now) {
  if (!c.valid_path) {
    outcomes_.push_back(Outcome{&c, false, "invalid health path " + c.path});
    return;
  }
  c.deadline = now + c.timeout;
  c.deadline_it = deadlines_.emplace(c.deadline, &c);
  c.armed = true;
  Carry(c, c.session.Begin(c.kind));
}

void HealthChecker::OnEvents(Check& c, uint32_t events) {
  if (c.fd < 0) return;
  if (c.session.state() == ProbeSession::State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    // Not finished yet (an event left over from a socket closed earlier in
    // this batch whose descriptor number was reused): wait.
    if (err == 0 && !(events & EPOLLOUT)) return;
    Carry(c, c.session.Connected(err));
    return;
  }
  // One read per event: a health answer fits, and a longer one raises the
  // (level-triggered) event again.
  char buf[kReadBuffer];
  const ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
  if (n > 0) {
    Carry(c, c.session.Received(buf, static_cast<size_t>(n)));
  } else if (n == 0) {
    Carry(c, c.session.PeerClosed(0));
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    Carry(c, c.session.PeerClosed(errno));
  }
}

void HealthChecker::ExpireDeadlines(TimePoint now) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    Check& c = *deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    c.armed = false;
    Carry(c, c.session.TimedOut(static_cast<long>(c.timeout.count())));
  }
}

void HealthChecker::Abandon(Check& c) {
  Disarm(c);
  CloseSocket(c, false);
  c.session.Abandon();
}

void HealthChecker::Step(Duration wait) {
  const TimePoint now = clock_.Now();
  Duration until_next = wait;
  std::vector<std::unique_ptr<Check>> retired;
  std::vector<Check*> starting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    retired.swap(retired_);
    // Only the due checks, in due order.
    while (!due_.empty() && due_.begin()->first <= now && in_flight_ < kMaxInFlight) {
      Check* c = due_.begin()->second;
      Unschedule(*c);
      c->in_flight = true;
      ++in_flight_;
      const HealthTarget& t = c->target;
      if (c->address.empty()) c->address = t.address;
      c->kind = t.path.empty() ? ProbeKind::kTcp : ProbeKind::kHttp;
      c->timeout = t.timeout;
      if (c->kind == ProbeKind::kHttp && (c->request.empty() || c->path != t.path)) {
        c->path = t.path;
        c->valid_path = ValidPath(t.path);
        c->request = c->valid_path ? BuildRequest(t.path, t.address) : std::string();
      }
      if (c->kind == ProbeKind::kTcp) c->valid_path = true;
      starting.push_back(c);
    }
    // With every slot taken, the next start waits for a finished check.
    if (!due_.empty() && in_flight_ < kMaxInFlight) {
      until_next = std::min(until_next, std::chrono::duration_cast<Duration>(due_.begin()->first - now));
    }
  }
  for (auto& c : retired) Abandon(*c);
  retired.clear();
  for (Check* c : starting) Begin(*c, now);
  RecordOutcomes();

  // Wait for socket events, the next deadline or the next due check.
  if (!deadlines_.empty()) {
    until_next = std::min(until_next, std::chrono::duration_cast<Duration>(deadlines_.begin()->first - now));
  }
  int timeout_ms = static_cast<int>(std::max<int64_t>(0, until_next.count()));
  // Every ready event is handled before any deadline is judged: when this
  // thread was kept off the CPU for a while, answers that arrived meanwhile
  // are waiting in their sockets and must not count as timeouts.
  constexpr int kMaxEvents = 1024;
  epoll_event events[kMaxEvents];
  for (;;) {
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        uint64_t count = 0;
        ssize_t r = read(wake_fd_, &count, sizeof(count));
        (void)r;
        continue;
      }
      OnEvents(*static_cast<Check*>(events[i].data.ptr), events[i].events);
    }
    if (n < kMaxEvents) break;
    timeout_ms = 0;
  }
  ExpireDeadlines(clock_.Now());
  RecordOutcomes();
}

void HealthChecker::Loop() {
  pthread_setname_np(pthread_self(), "reactor-health");
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
