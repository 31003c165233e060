#include "agent/metrics/log_totals.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

namespace reactor {

namespace {

constexpr size_t kBlock = 1 << 20;

inline uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 32);
}

// O(1) per part: its length and its first and last eight bytes. Slots compare
// the whole key, so a weaker hash only costs a probe.
inline uint64_t HashPart(uint64_t h, std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  uint64_t a = 0, b = 0;
  if (n >= 8) {
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + n - 8, 8);
  } else {
    for (size_t i = 0; i < n; ++i) a = (a << 8) | static_cast<unsigned char>(p[i]);
  }
  return Mix(Mix(h, a ^ n), b);
}

inline uint64_t Hash(std::string_view endpoint, std::string_view backend) {
  return HashPart(HashPart(0x12345678ull, endpoint), backend);
}

}  // namespace

LogTotals::LogTotals() : slots_(64) {}

BackendTotals& LogTotals::Find(std::string_view endpoint, std::string_view backend) {
  const uint64_t h = Hash(endpoint, backend);
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (!s.used) {
      if ((used_ + 1) * 2 > slots_.size()) {
        Grow();
        return Find(endpoint, backend);
      }
      s.used = true;
      s.hash = h;
      s.key.reserve(endpoint.size() + 1 + backend.size());
      s.key.append(endpoint).push_back('\0');
      s.key.append(backend);
      s.split = endpoint.size();
      ++used_;
      return s.totals;
    }
    if (s.hash == h && s.split == endpoint.size() && s.key.size() == endpoint.size() + 1 + backend.size() &&
        std::memcmp(s.key.data(), endpoint.data(), endpoint.size()) == 0 &&
        std::memcmp(s.key.data() + s.split + 1, backend.data(), backend.size()) == 0) {
      return s.totals;
    }
  }
}

void LogTotals::Grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.resize(old.size() * 2);
  size_t mask = slots_.size() - 1;
  for (Slot& s : old) {
    if (!s.used) continue;
    size_t i = s.hash & mask;
    while (slots_[i].used) i = (i + 1) & mask;
    slots_[i] = std::move(s);
  }
}

void LogTotals::Add(const LogRecord& r) {
  for (int i = 0; i < r.n_attempts; ++i) {
    const UpstreamAttempt& a = r.attempts[i];
    BackendTotals& t = Find(r.endpoint, a.addr);
    ++t.hits;
    if (a.response_time >= 0) t.response_sum += a.response_time;
    if (IsServerError(AttemptStatus(r, i))) ++t.errors;
    if (i == r.n_attempts - 1) t.bytes += r.bytes;
  }
}

void LogTotals::AddLine(std::string_view line) {
  ++lines_;
  if (ParseLogLine(line, &scratch_)) {
    Add(scratch_);
  } else {
    ++unparsed_;
  }
}

Status LogTotals::AddFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path, std::strerror(errno));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  // One block plus room to carry a partial line to the front of the next read.
  std::vector<char> buf(2 * kBlock);
  size_t have = 0;  // bytes of a partial line at buf[0, have)
  for (;;) {
    if (buf.size() - have < kBlock) buf.resize(have + kBlock);  // a line longer than a block
    ssize_t n = ::read(fd, buf.data() + have, buf.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = Status::IOError(path, std::strerror(errno));
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    const char* p = buf.data();
    const char* end = p + have + static_cast<size_t>(n);
    for (;;) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      if (nl == nullptr) break;
      AddLine(std::string_view(p, static_cast<size_t>(nl - p)));
      p = nl + 1;
    }
    have = static_cast<size_t>(end - p);
    if (have > 0 && p != buf.data()) std::memmove(buf.data(), p, have);
  }
  ::close(fd);
  if (have > 0) AddLine(std::string_view(buf.data(), have));
  return Status::Ok();
}

std::string LogTotals::ToJson() const {
  std::map<std::string_view, std::map<std::string_view, const BackendTotals*>> sorted;
  ForEach([&](std::string_view ep, std::string_view be, const BackendTotals& t) { sorted[ep][be] = &t; });
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [ep, backends] : sorted) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [be, t] : backends) {
      j[std::string(be)] = {
          {"hits", t->hits}, {"bytes", t->bytes}, {"errors", t->errors}, {"response_sum", t->response_sum}};
    }
    out[std::string(ep)] = std::move(j);
  }
  return out.dump();
}

}  // namespace reactor
