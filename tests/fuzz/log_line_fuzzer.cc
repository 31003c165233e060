// libFuzzer target for the access-log line parser (agent/metrics/
// access_log_parser.h): any bytes, no crash, and when a line parses the
// record keeps its invariants; the aggregations accept whatever parses.
//
// Build: CXX=clang++-14 cmake -DREACTOR_FUZZ=ON ...; run:
//   log_line_fuzzer -max_total_time=60
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/metrics/access_log_parser.h"
#include "agent/metrics/log_totals.h"
#include "agent/metrics/traffic_window.h"

namespace {

using namespace reactor;

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

bool Within(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool SameRecord(const LogRecord& a, const LogRecord& b) {
  if (a.time != b.time || a.endpoint != b.endpoint || a.status != b.status || a.bytes != b.bytes ||
      a.request_time != b.request_time || a.n_attempts != b.n_attempts || a.extra_attempts != b.extra_attempts) {
    return false;
  }
  for (int i = 0; i < a.n_attempts; ++i) {
    if (a.attempts[i].addr != b.attempts[i].addr || a.attempts[i].status != b.attempts[i].status ||
        a.attempts[i].response_time != b.attempts[i].response_time) {
      return false;
    }
  }
  return true;
}

void CheckRecord(std::string_view line, const LogRecord& r) {
  FUZZ_CHECK(std::isfinite(r.time) && r.time >= 0);
  FUZZ_CHECK(std::isfinite(r.request_time) && r.request_time >= 0);
  FUZZ_CHECK(r.status >= 100 && r.status <= 999);
  FUZZ_CHECK(!r.endpoint.empty() && r.endpoint.size() <= 63 && Within(r.endpoint, line));
  for (char c : r.endpoint) FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  FUZZ_CHECK(r.n_attempts >= 0 && r.n_attempts <= LogRecord::kMaxAttempts);
  FUZZ_CHECK(r.extra_attempts >= 0);
  FUZZ_CHECK(r.extra_attempts == 0 || r.n_attempts == LogRecord::kMaxAttempts);
  for (int i = 0; i < r.n_attempts; ++i) {
    const UpstreamAttempt& a = r.attempts[i];
    FUZZ_CHECK(!a.addr.empty() && a.addr != "-" && Within(a.addr, line));
    FUZZ_CHECK(a.addr.find('|') == std::string_view::npos);
    FUZZ_CHECK(a.status == 0 || (a.status >= 100 && a.status <= 999));
    FUZZ_CHECK(a.response_time < 0 || std::isfinite(a.response_time));
    const int s = AttemptStatus(r, i);
    FUZZ_CHECK(s == 0 || (s >= 100 && s <= 999));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so reads past the line are caught.
  std::string line(reinterpret_cast<const char*>(data), size);
  LogRecord r;
  bool foreign = false;
  const bool ok = ParseLogLine(line, &r, &foreign);
  FUZZ_CHECK(!(ok && foreign));
  if (ok) {
    CheckRecord(line, r);
    // Deterministic, and a trailing '\r' changes nothing.
    LogRecord again;
    FUZZ_CHECK(ParseLogLine(line, &again));
    FUZZ_CHECK(SameRecord(r, again));
    std::string crlf = line + "\r";
    if (line.empty() || line.back() != '\r') {
      FUZZ_CHECK(ParseLogLine(crlf, &again));
      FUZZ_CHECK(SameRecord(r, again));
    }
    TrafficWindow w;
    w.Add(0, r);
    auto sums = w.Sum(0, 0);
    FUZZ_CHECK(sums.requests == 1);
    uint64_t hits = 0;
    for (const auto& [addr, c] : sums.backends) hits += c.hits, (void)addr;
    FUZZ_CHECK(hits == static_cast<uint64_t>(r.n_attempts));
    const double p = sums.Percentile(0.99);
    FUZZ_CHECK(std::isfinite(p) && p >= 0);
  }
  LogTotals totals;
  totals.AddLine(line);
  FUZZ_CHECK(totals.unparsed() == (ok ? 0u : 1u));

  double d = 0;
  if (ParseLogDecimal(line, &d)) FUZZ_CHECK(std::isfinite(d) && d >= 0);
  return 0;
}
