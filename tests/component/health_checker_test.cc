// The health prober against real HTTP servers on loopback sockets: kept-alive
// connections, servers that close after each response (saying so or not),
// chunked bodies, a hung server, a refused port, a server that dies, TCP
// checks, and the prober's sockets kept out of connection counts. Every
// wait is bounded; each server is a thread of the test, stopped in its
// destructor.
#include "agent/health/health_checker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "agent/metrics/tcp_table.h"

namespace reactor {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A small HTTP/1.1 server on 127.0.0.1:0 on its own thread.
class TestServer {
 public:
  enum class Mode {
    kKeepAlive,    // Content-Length, keeps the connection
    kClose,        // "Connection: close", then closes
    kSilentClose,  // keep-alive headers, then closes anyway
    kChunked,      // a chunked body, keeps the connection
    kHung,         // accepts and reads, never answers
  };

  explicit TestServer(Mode mode, int status = 200) : mode_(mode), status_(status) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(listener_, 64) != 0 || getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        pipe2(stop_pipe_, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "cannot start a test server: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~TestServer() { Stop(); }

  /// Closes the listener and every connection (a server that dies).
  void Stop() {
    if (!thread_.joinable()) return;
    char x = 'x';
    ssize_t n = write(stop_pipe_[1], &x, 1);
    (void)n;
    thread_.join();
    close(stop_pipe_[0]);
    close(stop_pipe_[1]);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  int requests() const { return requests_.load(); }
  void set_status(int s) { status_.store(s); }
  std::string last_request() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_request_;
  }

 private:
  std::string Response() const {
    const std::string code = std::to_string(status_.load());
    switch (mode_) {
      case Mode::kClose: return "HTTP/1.1 " + code + " X\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
      case Mode::kChunked:
        return "HTTP/1.1 " + code + " X\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n3\r\n...\r\n0\r\n\r\n";
      default: return "HTTP/1.1 " + code + " X\r\nContent-Length: 2\r\n\r\nok";
    }
  }

  void Run() {
    std::map<int, std::string> conns;  // fd → bytes of an unfinished request
    for (;;) {
      std::vector<pollfd> fds{{stop_pipe_[0], POLLIN, 0}, {listener_, POLLIN, 0}};
      for (auto& [fd, buf] : conns) fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) break;
      if (fds[0].revents) break;
      if (fds[1].revents & POLLIN) {
        for (;;) {
          int c = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c < 0) break;
          ++accepted_;
          conns[c];
        }
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        const int fd = fds[i].fd;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
          if (n < 0 && errno == EAGAIN) continue;
          close(fd);
          conns.erase(fd);
          continue;
        }
        std::string& pending = conns[fd];
        pending.append(buf, static_cast<size_t>(n));
        bool closed = false;
        size_t end;
        while (!closed && (end = pending.find("\r\n\r\n")) != std::string::npos) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            last_request_ = pending.substr(0, end + 4);
          }
          pending.erase(0, end + 4);
          ++requests_;
          if (mode_ == Mode::kHung) continue;
          const std::string r = Response();
          ssize_t w = send(fd, r.data(), r.size(), MSG_NOSIGNAL);
          (void)w;
          if (mode_ == Mode::kClose || mode_ == Mode::kSilentClose) closed = true;
        }
        if (closed) {
          close(fd);
          conns.erase(fd);
        }
      }
    }
    for (auto& [fd, buf] : conns) close(fd);
    close(listener_);
  }

  const Mode mode_;
  std::atomic<int> status_;
  int listener_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  mutable std::mutex mu_;
  std::string last_request_;
  std::thread thread_;
};

HealthTarget Target(const std::string& id, const std::string& address, const std::string& path = "/health",
                    int timeout_ms = 1000) {
  HealthTarget t;
  t.id = id;
  t.endpoint = "web";
  t.address = address;
  t.path = path;
  t.interval = Duration(1000);
  t.timeout = Duration(timeout_ms);
  t.rise = 1;
  t.fall = 1;
  return t;
}

// A port nothing listens on: bound, then closed.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class HealthProber : public ::testing::Test {
 protected:
  // One round: every target checked once (bounded).
  HealthReport Round(const std::string& id = "a") {
    checker_.RunRound(Duration(5000));
    return checker_.Snapshot()[id];
  }

  ExcludedSockets probes_;
  HealthChecker checker_{SystemClock::Get(), probes_};
};

TEST_F(HealthProber, KeepAliveServerIsCheckedOnOnePersistentConnection) {
  TestServer server(TestServer::Mode::kKeepAlive);
  checker_.SetTargets({Target("a", server.address())});
  for (int i = 1; i <= 5; ++i) {
    HealthReport r = Round();
    EXPECT_EQ(r.last_result, "HTTP 200");
    EXPECT_EQ(r.checks, static_cast<uint64_t>(i));
    EXPECT_EQ(r.state, HealthState::kHealthy);
  }
  EXPECT_EQ(server.requests(), 5);
  EXPECT_EQ(server.accepted(), 1);
  const std::string req = server.last_request();
  EXPECT_EQ(req.rfind("GET /health HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("\r\nHost: " + server.address() + "\r\n"), std::string::npos) << req;
}

TEST_F(HealthProber, ServerClosingAfterEachResponseIsReconnectedWithoutFailures) {
  TestServer server(TestServer::Mode::kClose);
  checker_.SetTargets({Target("a", server.address())});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Round().last_result, "HTTP 200");
  EXPECT_EQ(Round().consecutive_failures, 0);
  EXPECT_EQ(server.accepted(), 5);
}

TEST_F(HealthProber, ServerClosingWithoutSayingSoIsNoFailure) {
  // The next request can go out on the connection the server just closed:
  // the prober retries on a fresh one instead of failing the check.
  TestServer server(TestServer::Mode::kSilentClose);
  checker_.SetTargets({Target("a", server.address())});
  for (int i = 0; i < 5; ++i) {
    HealthReport r = Round();
    EXPECT_EQ(r.last_result, "HTTP 200");
    EXPECT_EQ(r.consecutive_failures, 0);
  }
  EXPECT_EQ(server.requests(), 5);
}

TEST_F(HealthProber, ChunkedBodyIsReadToItsEnd) {
  TestServer server(TestServer::Mode::kChunked, 503);
  checker_.SetTargets({Target("a", server.address())});
  HealthReport r = Round();
  EXPECT_EQ(r.last_result, "HTTP 503");
  EXPECT_EQ(r.state, HealthState::kPending);
  server.set_status(200);
  r = Round();
  EXPECT_EQ(r.last_result, "HTTP 200");
  EXPECT_EQ(r.state, HealthState::kHealthy);
  EXPECT_EQ(server.accepted(), 1);  // the chunked body ended where it said
}

TEST_F(HealthProber, ErrorStatusIsReportedAsToday) {
  TestServer server(TestServer::Mode::kKeepAlive, 404);
  HealthTarget t = Target("a", server.address());
  t.initially_healthy = true;
  checker_.SetTargets({t});
  HealthReport r = Round();
  EXPECT_EQ(r.last_result, "HTTP 404");
  EXPECT_EQ(r.state, HealthState::kUnhealthy);
  EXPECT_EQ(r.transitions, 1u);
}

TEST_F(HealthProber, HungServerTimesOutAndTheConnectionIsDropped) {
  TestServer server(TestServer::Mode::kHung);
  checker_.SetTargets({Target("a", server.address(), "/health", 200)});
  const auto t0 = steady_clock::now();
  HealthReport r = Round();
  const auto took = steady_clock::now() - t0;
  EXPECT_EQ(r.last_result, "timeout after 200ms");
  EXPECT_GE(took, milliseconds(190));
  EXPECT_LT(took, milliseconds(2000));
  Round();
  EXPECT_EQ(server.accepted(), 2);  // a late answer can never be taken for the next check's
}

TEST_F(HealthProber, RefusedPortIsConnectionRefused) {
  checker_.SetTargets({Target("a", "127.0.0.1:" + std::to_string(FreePort()))});
  EXPECT_EQ(Round().last_result, "connection refused");
}

TEST_F(HealthProber, ServerThatDiesFailsTheNextCheck) {
  auto server = std::make_unique<TestServer>(TestServer::Mode::kKeepAlive);
  checker_.SetTargets({Target("a", server->address())});
  EXPECT_EQ(Round().state, HealthState::kHealthy);
  server->Stop();
  HealthReport r = Round();
  EXPECT_EQ(r.last_result, "connection refused");
  EXPECT_EQ(r.state, HealthState::kUnhealthy);
}

TEST_F(HealthProber, TcpCheckConnectsAndCloses) {
  TestServer server(TestServer::Mode::kKeepAlive);
  checker_.SetTargets({Target("a", server.address(), "")});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Round().last_result, "TCP connect ok");
  EXPECT_EQ(probes_.size(), 0u);  // nothing stays open
  checker_.SetTargets({Target("b", "127.0.0.1:" + std::to_string(FreePort()), "")});
  EXPECT_EQ(Round("b").last_result, "connection refused");
}

TEST_F(HealthProber, UnsafePathIsRefusedWithoutSendingIt) {
  TestServer server(TestServer::Mode::kKeepAlive);
  checker_.SetTargets({Target("a", server.address(), "/x HTTP/1.1\r\nX-Evil: 1")});
  HealthReport r = Round();
  EXPECT_EQ(r.last_result.rfind("invalid health path", 0), 0u) << r.last_result;
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(HealthProber, ProbeConnectionsAreNotCountedAsTheInstancesConnections) {
  TestServer server(TestServer::Mode::kKeepAlive);
  checker_.SetTargets({Target("a", server.address())});
  ASSERT_EQ(Round().last_result, "HTTP 200");
  ASSERT_EQ(probes_.size(), 1u);
  const auto table = ReadTcpTable();
  ExcludedSockets none;
  EXPECT_EQ(CountEstablishedTo(table, server.address(), none), 1);  // the kept-alive probe is there
  EXPECT_EQ(CountEstablishedTo(table, server.address(), probes_), 0);
  checker_.SetTargets({});
  checker_.RunRound(Duration(1000));  // the checking side closes retired sockets
  EXPECT_EQ(probes_.size(), 0u);
}

TEST_F(HealthProber, RunsOnItsThreadAndNotifiesTransitions) {
  TestServer server(TestServer::Mode::kKeepAlive);
  std::atomic<int> transitions{0};
  checker_.SetOnTransition([&] { ++transitions; });
  HealthTarget t = Target("a", server.address());
  t.interval = Duration(50);
  checker_.SetTargets({t});
  checker_.Start();
  const auto deadline = steady_clock::now() + milliseconds(5000);
  while (steady_clock::now() < deadline && checker_.Snapshot()["a"].checks < 5) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  checker_.Stop();
  HealthReport r = checker_.Snapshot()["a"];
  EXPECT_GE(r.checks, 5u);
  EXPECT_EQ(r.state, HealthState::kHealthy);
  EXPECT_GE(transitions.load(), 1);
  EXPECT_EQ(server.accepted(), 1);
}

}  // namespace
}  // namespace reactor
