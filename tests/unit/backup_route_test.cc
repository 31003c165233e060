// POST /v1/backup (`reactor backup`) on a loopback ApiServer.
#include <httplib.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "agent/api/api_server.h"
#include "agent/events/event_log.h"
#include "agent/store/sqlite_store.h"

namespace reactor {
namespace {

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct Served {
  int status = 0;
  nlohmann::json body;
};

Served PostBackup(std::function<Result<std::string>()> backup, const std::string& token = "tok") {
  // The API server streams events from its store, so it needs one.
  static std::unique_ptr<SqliteStore> store = std::move(SqliteStore::Open(":memory:", SystemClock::Get())).value();
  static EventLog events(*store, SystemClock::Get());
  ApiContext ctx;
  ctx.store = store.get();
  ctx.events = &events;
  ctx.token = "tok";
  ctx.manager = "host1";
  ctx.wake = [] {};
  ctx.backup = std::move(backup);
  ApiServer server(ctx);
  const int port = FreePort();
  EXPECT_TRUE(server.Start("127.0.0.1:" + std::to_string(port)).ok());
  httplib::Client c("127.0.0.1", port);
  Served out;
  for (int i = 0; i < 100; ++i) {
    auto r = c.Post("/v1/backup", {{"Authorization", "Bearer " + token}}, "{}", "application/json");
    if (r) {
      out.status = r->status;
      out.body = nlohmann::json::parse(r->body, nullptr, false);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  server.Stop();
  return out;
}

TEST(BackupRoute, ReturnsThePathOfTheBackupTaken) {
  int calls = 0;
  Served s = PostBackup([&]() -> Result<std::string> {
    ++calls;
    return std::string("/var/backups/reactor/state-20261203T103000Z.db");
  });
  EXPECT_EQ(s.status, 200) << s.body.dump();
  EXPECT_EQ(s.body["backup"], "/var/backups/reactor/state-20261203T103000Z.db");
  EXPECT_EQ(calls, 1);
}

TEST(BackupRoute, BackupsOffIs400AndABusyJobIs409) {
  Served off = PostBackup(nullptr);
  EXPECT_EQ(off.status, 400);
  EXPECT_NE(off.body["error"].get<std::string>().find("backup_dir"), std::string::npos);
  Served busy =
      PostBackup([]() -> Result<std::string> { return Status::Conflict("another agent is taking a backup"); });
  EXPECT_EQ(busy.status, 409);
}

TEST(BackupRoute, NeedsTheToken) {
  int calls = 0;
  Served s = PostBackup(
      [&]() -> Result<std::string> {
        ++calls;
        return std::string("x");
      },
      "wrong");
  EXPECT_EQ(s.status, 401);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace reactor
