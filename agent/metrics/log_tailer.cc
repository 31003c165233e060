#include "agent/metrics/log_tailer.h"

#include <algorithm>
#include <cstring>

namespace reactor {

namespace {

constexpr size_t kChunk = 1 << 20;

}  // namespace

LogTailer::LogTailer(std::string path, FileSystem& fs, Options options)
    : path_(std::move(path)), fs_(fs), options_(options) {}

bool LogTailer::OpenCurrent(bool at_end) {
  auto file = fs_.Open(path_);
  if (!file.ok()) {
    problem_ = file.status().message();
    return false;
  }
  auto info = (*file)->Stat();
  if (!info.ok()) {
    problem_ = info.status().message();
    return false;
  }
  Source s;
  s.file = std::move(file).value();
  s.info = *info;
  if (at_end && info->size > 0) {
    // Begin after the last complete line; remember the fingerprints a
    // truncation would change.
    char buf[kFingerprint];
    size_t n = static_cast<size_t>(std::min<uint64_t>(kFingerprint, info->size));
    auto got = s.file->ReadAt(0, buf, n);
    if (got.ok()) s.head.assign(buf, *got);
    got = s.file->ReadAt(info->size - n, buf, n);
    if (got.ok()) s.tail.assign(buf, *got);
    s.offset = info->size;
    s.skipping = s.tail.empty() || s.tail.back() != '\n';
  }
  current_ = std::move(s);
  return true;
}

size_t LogTailer::ReadNewLines(const std::function<void(std::string_view)>& on_line) {
  problem_.clear();
  size_t lines = 0;
  size_t budget = options_.max_read_per_call;
  const bool at_end = first_call_ && options_.start_at_end;
  first_call_ = false;

  // Lines nginx still wrote to a rotated-away file come first.
  if (rotated_) {
    bool eof = false;
    const uint64_t before = rotated_->offset;
    if (!ReadSource(*rotated_, &budget, &eof, &lines, on_line)) {
      problem_.clear();  // the rotated file's trouble is not the log's
      rotated_.reset();
    } else {
      rotated_->idle_calls = rotated_->offset == before ? rotated_->idle_calls + 1 : 0;
      if (!eof) return lines;  // budget spent
      if (rotated_->idle_calls >= kRotatedIdleCalls) {
        if (!rotated_->pending.empty() && !rotated_->skipping) {
          on_line(rotated_->pending);
          ++lines;
        }
        rotated_.reset();
      }
    }
  }

  if (!current_.file && !OpenCurrent(at_end)) return lines;
  // A few rotations per call at most; more are picked up on the next call.
  for (int round = 0; round < 4; ++round) {
    auto named = fs_.Stat(path_);
    const bool rotated = named.ok() && !named->SameFile(current_.info);
    bool eof = false;
    if (!ReadSource(current_, &budget, &eof, &lines, on_line)) {
      current_ = Source();  // reopened on the next call
      return lines;
    }
    if (!named.ok() && named.status().IsNotFound()) {
      problem_ = path_ + ": missing; still reading the file it named before";
    }
    if (!rotated || !eof) break;
    // The old file is read to its end: keep it open for late writes and
    // switch to the new file, from its start.
    if (rotated_ && !rotated_->pending.empty() && !rotated_->skipping) {
      on_line(rotated_->pending);
      ++lines;
    }
    rotated_ = std::make_unique<Source>(std::move(current_));
    rotated_->idle_calls = 0;
    current_ = Source();
    ++rotations_;
    if (!OpenCurrent(false)) break;
  }
  return lines;
}

bool LogTailer::CheckTruncated(Source& src, uint64_t size) {
  if (src.offset == 0) return false;
  if (size < src.offset) return true;
  // Same or larger size: it may have been truncated and refilled since.
  // A read error is not taken as proof: re-reading would double-count.
  char buf[kFingerprint];
  if (!src.head.empty()) {
    auto got = src.file->ReadAt(0, buf, src.head.size());
    if (got.ok() && (*got != src.head.size() || std::memcmp(buf, src.head.data(), *got) != 0)) return true;
  }
  if (!src.tail.empty()) {
    auto got = src.file->ReadAt(src.offset - src.tail.size(), buf, src.tail.size());
    if (got.ok() && (*got != src.tail.size() || std::memcmp(buf, src.tail.data(), *got) != 0)) return true;
  }
  return false;
}

bool LogTailer::ReadSource(Source& src, size_t* budget, bool* eof, size_t* lines,
                           const std::function<void(std::string_view)>& on_line) {
  *eof = false;
  auto info = src.file->Stat();
  if (!info.ok()) {
    problem_ = info.status().message();
    return false;
  }
  if (info->size < src.offset || (info->size > src.offset && CheckTruncated(src, info->size))) {
    ++truncations_;
    src.offset = 0;
    src.pending.clear();
    src.skipping = false;
    src.head.clear();
    src.tail.clear();
  }
  if (buffer_.empty()) buffer_.resize(kChunk);
  while (*budget > 0) {
    const size_t want = std::min(*budget, buffer_.size());
    auto got = src.file->ReadAt(src.offset, buffer_.data(), want);
    if (!got.ok()) {
      problem_ = got.status().message();
      return false;
    }
    const size_t n = *got;
    if (n == 0) {
      *eof = true;
      return true;
    }
    const char* data = buffer_.data();
    if (src.offset < kFingerprint && src.head.size() == src.offset) {
      src.head.append(data, std::min<size_t>(kFingerprint - src.head.size(), n));
    }
    if (n >= kFingerprint) {
      src.tail.assign(data + n - kFingerprint, kFingerprint);
    } else {
      src.tail.append(data, n);
      if (src.tail.size() > kFingerprint) src.tail.erase(0, src.tail.size() - kFingerprint);
    }
    src.offset += n;
    *budget -= n;
    Deliver(src, data, n, lines, on_line);
  }
  return true;
}

void LogTailer::Deliver(Source& src, const char* data, size_t n, size_t* lines,
                        const std::function<void(std::string_view)>& on_line) {
  const char* p = data;
  const char* end = data + n;
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (nl == nullptr) {
      const size_t rest = static_cast<size_t>(end - p);
      if (src.skipping) return;
      if (src.pending.size() + rest > options_.max_line) {
        ++dropped_lines_;
        src.pending.clear();
        src.skipping = true;
        return;
      }
      src.pending.append(p, rest);
      return;
    }
    const size_t len = static_cast<size_t>(nl - p);
    if (src.skipping) {
      src.skipping = false;
    } else if (!src.pending.empty()) {
      if (src.pending.size() + len > options_.max_line) {
        ++dropped_lines_;
      } else {
        src.pending.append(p, len);
        on_line(src.pending);
        ++*lines;
      }
      src.pending.clear();
    } else if (len > options_.max_line) {
      ++dropped_lines_;
    } else {
      on_line(std::string_view(p, len));
      ++*lines;
    }
    p = nl + 1;
  }
}

}  // namespace reactor
