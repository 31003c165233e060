// The filesystem as the log tailer sees it: open a path, stat a path or an
// open handle (inode and size), read at an offset. Abstract so that unit
// tests can rotate and truncate a fake file; RealFileSystem is POSIX.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "agent/common/status.h"

namespace reactor {

struct FileInfo {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  bool SameFile(const FileInfo& o) const { return device == o.device && inode == o.inode; }
};

/// An open file. It stays readable after the path is renamed or unlinked.
class OpenFile {
 public:
  virtual ~OpenFile() = default;
  /// The open file's identity and current size (fstat).
  virtual Result<FileInfo> Stat() = 0;
  /// Reads up to `n` bytes at `offset` into `buf`; 0 at end of file.
  virtual Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  /// Opens `path` for reading. NotFound if it does not exist, IOError otherwise.
  virtual Result<std::unique_ptr<OpenFile>> Open(const std::string& path) = 0;
  /// The identity and size of what `path` names now. NotFound if nothing.
  virtual Result<FileInfo> Stat(const std::string& path) = 0;
};

/// POSIX open/fstat/stat/pread. Thread-safe.
class RealFileSystem : public FileSystem {
 public:
  Result<std::unique_ptr<OpenFile>> Open(const std::string& path) override;
  Result<FileInfo> Stat(const std::string& path) override;
};

}  // namespace reactor
