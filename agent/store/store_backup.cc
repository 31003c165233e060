#include "agent/store/store_backup.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/store/etcd_store.h"
#include "agent/store/sqlite_store.h"

namespace reactor {
namespace {

Status FsyncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("backup " + path, std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IOError("backup " + path, std::string("fsync: ") + std::strerror(err));
  return Status::Ok();
}

}  // namespace

std::string BackupFileExtension(Store& wrapped) {
  return dynamic_cast<EtcdStore*>(&wrapped.Backend()) != nullptr ? ".snapshot" : ".db";
}

Status WriteStoreBackup(Store& wrapped, const std::string& path) {
  Store& store = wrapped.Backend();
  if (auto* sqlite = dynamic_cast<SqliteStore*>(&store)) {
    ::unlink(path.c_str());  // the backup API writes into an existing database
    REACTOR_RETURN_IF_ERROR(sqlite->BackupTo(path));
    return FsyncFile(path);
  }
  if (auto* etcd = dynamic_cast<EtcdStore*>(&store)) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Status::IOError("backup " + path, std::strerror(errno));
    Status st = etcd->Snapshot([&](const std::string& chunk) -> Status {
      size_t done = 0;
      while (done < chunk.size()) {
        const ssize_t n = ::write(fd, chunk.data() + done, chunk.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status::IOError("backup " + path, std::strerror(errno));
        done += static_cast<size_t>(n);
      }
      return Status::Ok();
    });
    if (st.ok() && ::fsync(fd) != 0)
      st = Status::IOError("backup " + path, std::string("fsync: ") + std::strerror(errno));
    ::close(fd);
    return st;
  }
  return Status::Internal("backup: this store has no backup method");
}

}  // namespace reactor
