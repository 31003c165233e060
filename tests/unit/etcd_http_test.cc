// CurlEtcdHttp against a loopback HTTP server: the headers every etcd request
// carries, and the streaming line splitter.
#include "agent/store/etcd_http.h"

#include <httplib.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace reactor {
namespace {

class EtcdHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Post("/v3/kv/range", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      hasleader_ = req.get_header_value("Grpc-Metadata-hasleader");
      authorization_ = req.get_header_value("Authorization");
      body_ = req.body;
      res.set_content(R"({"header":{"revision":"7"}})", "application/json");
    });
    server_.Post("/v3/watch", [](const httplib::Request&, httplib::Response& res) {
      // Lines split across chunks at awkward places, as a real stream may be.
      res.set_chunked_content_provider("application/json", [](size_t offset, httplib::DataSink& sink) {
        if (offset > 0) {
          sink.done();
          return true;
        }
        const char* parts[] = {"{\"result\":{\"created\"", ":true}}\n{\"res", "ult\":{\"events\":[]}}\n\n",
                               "{\"tail\""};
        for (const char* p : parts) sink.write(p, std::strlen(p));
        sink.done();
        return true;
      });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::string hasleader_, authorization_, body_;
};

TEST_F(EtcdHttpTest, EveryRequestAsksForALeaderAndCarriesTheToken) {
  CurlEtcdHttp http({}, Duration(1000));
  EtcdHttpReply r = http.Post({Url("/v3/kv/range"), R"({"key":"L2E="})", "tok123", Duration(2000)});
  ASSERT_TRUE(r.ok()) << r.transport_error;
  EXPECT_EQ(r.body, R"({"header":{"revision":"7"}})");
  std::lock_guard<std::mutex> lock(mu_);
  // Without it a member cut off from its leader answers reads and keeps
  // watches open but silent.
  EXPECT_EQ(hasleader_, "true");
  EXPECT_EQ(authorization_, "tok123");
  EXPECT_EQ(body_, R"({"key":"L2E="})");
}

TEST_F(EtcdHttpTest, StreamDeliversWholeLinesAcrossChunks) {
  CurlEtcdHttp http({}, Duration(1000));
  std::vector<std::string> lines;
  std::atomic<bool> stop{false};
  EtcdHttpReply r = http.Stream(
      {Url("/v3/watch"), "{}", "", Duration(0)},
      [&](const std::string& line) {
        lines.push_back(line);
        return true;
      },
      stop);
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], R"({"result":{"created":true}})");
  EXPECT_EQ(lines[1], R"({"result":{"events":[]}})");
  EXPECT_EQ(r.body, R"({"tail")");  // no newline: not a line
}

TEST_F(EtcdHttpTest, RefusedConnectionIsCertainlyNotSent) {
  CurlEtcdHttp http({}, Duration(1000));
  server_.stop();
  thread_.join();
  EtcdHttpReply r = http.Post({Url("/v3/kv/range"), "{}", "", Duration(1000)});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.not_sent) << r.transport_error;
  EXPECT_NE(r.transport_error.find("127.0.0.1"), std::string::npos);
}

// One keep-alive HTTP connection on a raw socket: it answers the first
// request, reads the second in full (as a member that applies a write and
// dies before answering), then stops listening and drops the connection.
class AnswerOnceThenDie {
 public:
  AnswerOnceThenDie() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listen_fd_, 4) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~AnswerOnceThenDie() {
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  int port() const { return port_; }
  int requests() const { return requests_.load(); }

 private:
  // Reads one request (headers and a Content-Length body) from `fd`.
  bool ReadRequest(int fd, std::string* buffer) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      const size_t end = buffer->find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        const size_t cl = buffer->find("Content-Length: ");
        if (cl != std::string::npos && cl < end) length = std::stoul(buffer->substr(cl + 16));
        if (buffer->size() >= end + 4 + length) {
          buffer->erase(0, end + 4 + length);
          ++requests_;
          return true;
        }
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(fd, chunk, sizeof(chunk));
      if (n <= 0) return false;
      buffer->append(chunk, static_cast<size_t>(n));
    }
    return false;
  }
  void Serve() {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return;
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    std::string buffer;
    if (ReadRequest(fd, &buffer)) {
      const std::string body = R"({"header":{"revision":"7"}})";
      const std::string reply =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n\r\n" + body;
      if (::write(fd, reply.data(), reply.size()) == static_cast<ssize_t>(reply.size())) ReadRequest(fd, &buffer);
    }
    ::close(listen_fd_);  // the member is gone: a new connection is refused
    listen_fd_ = -1;
    ::close(fd);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST(EtcdHttp, WriteOnAReusedConnectionThatDiesUnansweredIsNotCalledUnsent) {
  // curl sends a request again on a fresh connection when a reused one dies
  // before any answer; if that connection is refused, the error must not
  // say "never sent": the server had the first copy, and a conditional
  // write sent again to another member could apply twice or report a
  // false failure.
  AnswerOnceThenDie server;
  ASSERT_GT(server.port(), 0);
  CurlEtcdHttp http({}, Duration(1000));
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/v3/kv/txn";
  EtcdHttpReply first = http.Post({url, R"({"compare":[]})", "", Duration(3000)});
  ASSERT_TRUE(first.ok()) << first.transport_error;
  EtcdHttpReply second = http.Post({url, R"({"compare":[{"key":"L2E="}]})", "", Duration(3000)});
  EXPECT_FALSE(second.ok());
  EXPECT_FALSE(second.transport_error.empty());
  EXPECT_FALSE(second.not_sent) << second.transport_error;
  EXPECT_EQ(server.requests(), 2);
}

}  // namespace
}  // namespace reactor
