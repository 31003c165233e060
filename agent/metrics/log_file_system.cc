#include "agent/metrics/log_file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace reactor {

namespace {

FileInfo InfoOf(const struct stat& st) {
  FileInfo info;
  info.device = static_cast<uint64_t>(st.st_dev);
  info.inode = static_cast<uint64_t>(st.st_ino);
  info.size = static_cast<uint64_t>(st.st_size);
  return info;
}

Status ErrnoStatus(const std::string& path, int err) {
  if (err == ENOENT || err == ENOTDIR) return Status::NotFound(path + ": " + std::strerror(err));
  return Status::IOError(path, std::strerror(err));
}

class PosixFile : public OpenFile {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  Result<FileInfo> Stat() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return Status::IOError(path_, std::strerror(errno));
    return InfoOf(st);
  }

  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    for (;;) {
      ssize_t got = ::pread(fd_, buf, n, static_cast<off_t>(offset));
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return Status::IOError(path_, std::strerror(errno));
    }
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

Result<std::unique_ptr<OpenFile>> RealFileSystem::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(path, errno);
  return std::unique_ptr<OpenFile>(std::make_unique<PosixFile>(fd, path));
}

Result<FileInfo> RealFileSystem::Stat(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(path, errno);
  return InfoOf(st);
}

}  // namespace reactor
