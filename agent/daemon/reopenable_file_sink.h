// An spdlog sink that appends to a file and can reopen it by name, so that
// logrotate can move the file away and tell the agent (SIGUSR1) to start a
// new one without losing or interleaving lines.
#pragma once

#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/base_sink.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

namespace reactor {

/// Appends every formatted line to `path` and flushes it to the kernel before
/// the logging call returns (a crash loses nothing that was logged).
/// Thread-safe: logging and Reopen() take the sink's mutex.
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  /// Opens `path` for appending (created 0644 if missing; the directory must
  /// exist). Check ok() / error() afterwards.
  explicit ReopenableFileSink(std::string path) : path_(std::move(path)) { error_ = OpenLocked(); }
  ~ReopenableFileSink() override {
    if (file_ != nullptr) std::fclose(file_);
  }
  ReopenableFileSink(const ReopenableFileSink&) = delete;
  ReopenableFileSink& operator=(const ReopenableFileSink&) = delete;

  bool ok() const { return error_.empty(); }
  /// Why the file could not be opened ("" when it was).
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }

  /// Opens `path` again (the old file was typically renamed). On failure
  /// the sink keeps writing to the file it had, and returns why; else "".
  std::string Reopen() {
    std::lock_guard<std::mutex> lock(mutex_);
    return OpenLocked();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (file_ == nullptr) return;
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), file_);
    std::fflush(file_);
  }
  void flush_() override {
    if (file_ != nullptr) std::fflush(file_);
  }

 private:
  // REQUIRES: mutex_ held, or called from the constructor.
  std::string OpenLocked() {
    std::FILE* f = std::fopen(path_.c_str(), "ae");  // 'e': O_CLOEXEC, so children never inherit it
    if (f == nullptr) return path_ + ": " + std::strerror(errno);
    if (file_ != nullptr) std::fclose(file_);
    file_ = f;
    return "";
  }

  // Constant after construction.
  const std::string path_;
  std::string error_;  // from the constructor's open
  // Protected by mutex_.
  std::FILE* file_ = nullptr;
};

}  // namespace reactor
