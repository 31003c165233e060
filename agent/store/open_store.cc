// OpenStore: the one place that maps a `state =` URL to a backend.
#include <filesystem>
#include <system_error>

#include "agent/store/sqlite_store.h"
#include "agent/store/store.h"

namespace reactor {
namespace {

constexpr const char* kAcceptedForms =
    "expected sqlite:/path/to/state.db, sqlite::memory: or etcd://host:port[,host:port...]";

bool StartsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

Result<std::unique_ptr<Store>> OpenStore(const std::string& url, Clock& clock) {
  if (StartsWith(url, "sqlite:")) {
    const std::string path = url.substr(7);
    if (path.empty()) return Status::InvalidArgument("state = " + url + ": no database path; " + kAcceptedForms);
    if (path != ":memory:") {
      // SQLite would only say "unable to open database file"; name what is missing.
      std::filesystem::path dir = std::filesystem::path(path).parent_path();
      if (dir.empty()) dir = ".";
      std::error_code ec;
      if (!std::filesystem::is_directory(dir, ec)) {
        return Status::IOError("state = " + url, "directory " + dir.string() + " does not exist");
      }
    }
    auto store = SqliteStore::Open(path, clock);
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(std::move(store).value());
  }
  if (StartsWith(url, "etcd://")) {
    return Status::InvalidArgument("state = " + url + ": the etcd backend is not available in this build yet");
  }
  return Status::InvalidArgument("state = " + url + ": unknown store; " + kAcceptedForms);
}

}  // namespace reactor
