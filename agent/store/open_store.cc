// OpenStore: the one place that maps a `state =` URL to a backend.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "agent/store/caching_store.h"
#include "agent/store/etcd_store.h"
#include "agent/store/sqlite_store.h"
#include "agent/store/store.h"

namespace reactor {
namespace {

constexpr const char* kAcceptedForms =
    "expected sqlite:/path/to/state.db, sqlite::memory: or etcd://host:port[,host:port...]";

bool StartsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

Result<std::string> ReadPassword(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("[agent] etcd_password_file " + path, std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  std::string password = text.str();
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
  if (password.empty()) return Status::InvalidArgument("[agent] etcd_password_file " + path + " is empty");
  if (password.find('\n') != std::string::npos) {
    return Status::InvalidArgument("[agent] etcd_password_file " + path + " has more than one line");
  }
  return password;
}

// "h1:2379,h2:2379" → {"h1:2379", "h2:2379"}; each must have a port.
Result<std::vector<std::string>> EtcdEndpoints(const std::string& url) {
  std::vector<std::string> out;
  const std::string list = url.substr(7);
  size_t start = 0;
  while (true) {
    const size_t comma = list.find(',', start);
    std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t colon = item.rfind(':');
    if (item.empty() || colon == std::string::npos || colon == 0 || colon + 1 == item.size() ||
        item.find_first_of("/?#@ ") != std::string::npos) {
      return Status::InvalidArgument("state = " + url + ": '" + item + "' is not host:port; " + kAcceptedForms);
    }
    out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenStore(const std::string& url, Clock& clock) {
  return OpenStore(url, clock, StoreOptions());
}

Result<std::unique_ptr<Store>> OpenStore(const std::string& url, Clock& clock, const StoreOptions& options) {
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
    auto endpoints = EtcdEndpoints(url);
    if (!endpoints.ok()) return endpoints.status();
    EtcdOptions eo;
    eo.endpoints = std::move(*endpoints);
    eo.tls.ca_file = options.etcd_ca_file;
    eo.tls.cert_file = options.etcd_cert_file;
    eo.tls.key_file = options.etcd_key_file;
    eo.compaction_retention = options.etcd_compaction;
    if (!options.etcd_user.empty()) {
      auto password = ReadPassword(options.etcd_password_file);
      if (!password.ok()) return password.status();
      eo.user = options.etcd_user;
      eo.password = std::move(*password);
    }
    auto store = EtcdStore::Open(std::move(eo));
    if (!store.ok()) return store.status().WithContext("state = " + url);
    if (!options.cached_prefixes.empty()) {
      return std::unique_ptr<Store>(std::make_unique<CachingStore>(std::move(store).value(), options.cached_prefixes));
    }
    return std::unique_ptr<Store>(std::move(store).value());
  }
  return Status::InvalidArgument("state = " + url + ": unknown store; " + kAcceptedForms);
}

}  // namespace reactor
