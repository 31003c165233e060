// CurlEtcdHttp against a loopback HTTP server: the headers every etcd request
// carries, and the streaming line splitter.
#include "agent/store/etcd_http.h"

#include <httplib.h>
#include <gtest/gtest.h>

#include <atomic>
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
        const char* parts[] = {"{\"result\":{\"created\"", ":true}}\n{\"res", "ult\":{\"events\":[]}}\n\n", "{\"tail\""};
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
  EtcdHttpReply r = http.Stream({Url("/v3/watch"), "{}", "", Duration(0)},
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

}  // namespace
}  // namespace reactor
