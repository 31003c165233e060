// An in-memory FileSystem for the log tailer's tests: files are shared byte
// strings with an inode; open handles keep reading a file after it is renamed
// or removed, as on POSIX.
#pragma once

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "agent/metrics/log_file_system.h"

namespace reactor {

class FakeLogFileSystem : public FileSystem {
 public:
  struct Data {
    std::string bytes;
    uint64_t inode = 0;
  };

  Result<std::unique_ptr<OpenFile>> Open(const std::string& path) override {
    auto it = files_.find(path);
    if (it == files_.end()) return Status::NotFound(path + ": No such file or directory");
    if (unreadable_) return Status::IOError(path, "Permission denied");
    return std::unique_ptr<OpenFile>(std::make_unique<Handle>(it->second));
  }
  Result<FileInfo> Stat(const std::string& path) override {
    auto it = files_.find(path);
    if (it == files_.end()) return Status::NotFound(path + ": No such file or directory");
    return Info(*it->second);
  }

  void Create(const std::string& path) {
    auto d = std::make_shared<Data>();
    d->inode = ++next_inode_;
    files_[path] = d;
  }
  void Append(const std::string& path, const std::string& text) {
    if (!files_.count(path)) Create(path);
    files_[path]->bytes += text;
  }
  void Rename(const std::string& from, const std::string& to) {
    files_[to] = files_[from];
    files_.erase(from);
  }
  void Remove(const std::string& path) { files_.erase(path); }
  void Truncate(const std::string& path) { files_[path]->bytes.clear(); }
  /// What logrotate's copytruncate does.
  void CopyTruncate(const std::string& path, const std::string& copy) {
    Create(copy);
    files_[copy]->bytes = files_[path]->bytes;
    files_[path]->bytes.clear();
  }
  void SetUnreadable(bool u) { unreadable_ = u; }

 private:
  static FileInfo Info(const Data& d) {
    FileInfo i;
    i.device = 1;
    i.inode = d.inode;
    i.size = d.bytes.size();
    return i;
  }
  class Handle : public OpenFile {
   public:
    explicit Handle(std::shared_ptr<Data> d) : d_(std::move(d)) {}
    Result<FileInfo> Stat() override { return Info(*d_); }
    Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
      if (offset >= d_->bytes.size()) return size_t{0};
      size_t got = std::min<size_t>(n, d_->bytes.size() - offset);
      std::memcpy(buf, d_->bytes.data() + offset, got);
      return got;
    }

   private:
    std::shared_ptr<Data> d_;
  };

  std::map<std::string, std::shared_ptr<Data>> files_;
  uint64_t next_inode_ = 100;
  bool unreadable_ = false;
};

}  // namespace reactor
