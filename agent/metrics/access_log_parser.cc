#include "agent/metrics/access_log_parser.h"

#include <cstddef>
#include <cstring>

#include "agent/metrics/log_format.h"

namespace reactor {

namespace {

constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8, 1e9,
                             1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

// The parser is one pass over the line with a cursor: each helper parses one
// token at `p` and returns the position after it, or nullptr if there is no
// such token. No field is located first and parsed later (that doubled the
// cost: SPEC §11 wants the parser close to `wc -l`). Runs of digits and the
// search for the end of an upstream address go eight bytes at a time
// (word-at-a-time, as memchr does) where eight bytes of the line remain.

inline bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// a-z 0-9 _ -
struct NameChars {
  bool is[256] = {};
  constexpr NameChars() {
    for (int c = 'a'; c <= 'z'; ++c) is[c] = true;
    for (int c = '0'; c <= '9'; ++c) is[c] = true;
    is[static_cast<int>('_')] = true;
    is[static_cast<int>('-')] = true;
  }
};
constexpr NameChars kNameChars;
inline bool IsNameChar(char c) { return kNameChars.is[static_cast<unsigned char>(c)]; }

constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kHighs = 0x8080808080808080ull;

inline uint64_t Load8(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Bytes of `v` that are not ASCII digits, as nonzero bytes of the result.
// The first such byte is exact (a carry only reaches bytes after a non-digit),
// which is all the callers use.
inline uint64_t NonDigits(uint64_t v) {
  return ((v & 0xF0F0F0F0F0F0F0F0ull) ^ 0x3030303030303030ull) |
         (((v + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) ^ 0x3030303030303030ull);
}

// The value of eight digit bytes, the first the most significant; zero bytes
// count as leading zeros.
inline uint64_t EightDigits(uint64_t v) {
  v = ((v & 0x0F0F0F0F0F0F0F0Full) * 2561) >> 8;
  v = ((v & 0x00FF00FF00FF00FFull) * 6553601) >> 16;
  return ((v & 0x0000FFFF0000FFFFull) * 42949672960001ull) >> 32;
}

constexpr uint64_t kPow10u[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

// A run of digits at p, appended to *acc (acc * 10^len + value, wrapping
// past 2^64 like the digit-by-digit sum). Returns the end of the run.
inline const char* Digits(const char* p, const char* end, uint64_t* acc) {
  uint64_t m = *acc;
  while (end - p >= 8) {
    const uint64_t v = Load8(p);
    const uint64_t bad = NonDigits(v);
    if (bad == 0) {
      m = m * 100000000u + EightDigits(v);
      p += 8;
      continue;
    }
    const int k = __builtin_ctzll(bad) >> 3;
    if (k > 0) m = m * kPow10u[k] + EightDigits(v << (8 * (8 - k)));
    *acc = m;
    return p + k;
  }
  for (; p < end && IsDigit(*p); ++p) m = m * 10 + static_cast<uint64_t>(*p - '0');
  *acc = m;
  return p;
}

// DIGITS[.DIGITS], correctly rounded: the digits without the point, as an
// integer, must be below 2^53 (15 significant digits always are).
// Inlined: three or four per line, and the call was a tenth of the line's cost.
__attribute__((always_inline)) inline const char* Decimal(const char* p, const char* end, double* out) {
  const char* start = p;
  while (p < end && *p == '0') ++p;  // leading zeros are no digits
  const char* digits = p;
  uint64_t mantissa = 0;
  p = Digits(p, end, &mantissa);
  if (p == start) return nullptr;
  std::ptrdiff_t n = p - digits;
  std::ptrdiff_t frac = 0;
  if (p < end && *p == '.') {
    const char* frac_start = ++p;
    p = Digits(p, end, &mantissa);
    frac = p - frac_start;
    if (frac == 0) return nullptr;
  }
  // 19 digits cannot overflow 64 bits; 10^18 is the largest exact power.
  if (n + frac > 19 || frac > 18 || mantissa >= (uint64_t{1} << 53)) return nullptr;
  // One division of two exact doubles rounds correctly.
  *out = frac > 0 ? static_cast<double>(mantissa) / kPow10[frac] : static_cast<double>(mantissa);
  return p;
}

// Up to 19 digits.
const char* Unsigned(const char* p, const char* end, uint64_t* out) {
  uint64_t v = 0;
  const char* start = p;
  p = Digits(p, end, &v);
  if (p == start || p - start > 19) return nullptr;
  *out = v;
  return p;
}

// The first '|', ',' or ' ' in [p, end), or end.
inline const char* FindItemEnd(const char* p, const char* end) {
  constexpr uint64_t kBar = kOnes * '|', kComma = kOnes * ',', kSpace = kOnes * ' ';
  while (end - p >= 8) {
    const uint64_t v = Load8(p);
    const uint64_t a = v ^ kBar, b = v ^ kComma, s = v ^ kSpace;
    // A zero byte in a, b or s is a match; the lowest one is exact.
    const uint64_t hit = ((a - kOnes) & ~a) | ((b - kOnes) & ~b) | ((s - kOnes) & ~s);
    const uint64_t m = hit & kHighs;
    if (m != 0) return p + (__builtin_ctzll(m) >> 3);
    p += 8;
  }
  for (; p < end; ++p) {
    const char c = *p;
    if (c == '|' || c == ',' || c == ' ') return p;
  }
  return end;
}

// An HTTP status: exactly three digits, 100..999.
const char* Status3(const char* p, const char* end, int* out) {
  if (end - p < 3 || !IsDigit(p[0]) || !IsDigit(p[1]) || !IsDigit(p[2]) || p[0] == '0') return nullptr;
  if (end - p > 3 && IsDigit(p[3])) return nullptr;
  *out = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
  return p + 3;
}

// A list separator at p: ", " or " : ". Returns its length, 0 if none.
inline int Separator(const char* p, const char* end) {
  if (*p == ',') return end - p >= 2 && p[1] == ' ' ? 2 : 0;
  if (*p == ' ') return end - p >= 3 && p[1] == ':' && p[2] == ' ' ? 3 : 0;
  return 0;
}

// After item `i` of `total`: a separator before the last item, `last` (the
// field's end: '|', or the line's end when last == 0) after it.
const char* AfterItem(const char* p, const char* end, int i, int total, char last) {
  if (i + 1 < total) {
    if (p >= end) return nullptr;
    int sep = Separator(p, end);
    return sep ? p + sep : nullptr;
  }
  if (last == 0) return p == end ? p : nullptr;
  return p < end && *p == last ? p + 1 : nullptr;
}

}  // namespace

bool ParseLogDecimal(std::string_view text, double* out) {
  const char* end = text.data() + text.size();
  const char* p = Decimal(text.data(), end, out);
  return p != nullptr && p == end;
}

bool ParseLogLine(std::string_view line, LogRecord* out, bool* foreign) {
  if (foreign) *foreign = false;
  const char* p = line.data();
  const char* end = p + line.size();
  if (p < end && end[-1] == '\r') --end;

  // $msec|
  p = Decimal(p, end, &out->time);
  if (p == nullptr || p >= end || *p != '|') return false;
  ++p;

  // $proxy_host|: ours is "reactor_" + an endpoint name; anything else up to
  // the next '|' is foreign, decided once the rest proves well formed.
  const char* host = p;
  constexpr std::string_view kPrefix(kUpstreamPrefix);
  bool ours = static_cast<size_t>(end - p) > kPrefix.size() && std::memcmp(p, kPrefix.data(), kPrefix.size()) == 0;
  if (ours) {
    const char* name = p + kPrefix.size();
    p = name;
    while (p < end && IsNameChar(*p)) ++p;
    ours = p > name && p - name <= 63 && *name != '_' && *name != '-';
  }
  if (p >= end || *p != '|') {
    ours = false;
    p = static_cast<const char*>(std::memchr(p, '|', static_cast<size_t>(end - p)));
    if (p == nullptr) return false;
  }
  const std::string_view proxy_host(host, static_cast<size_t>(p - host));
  ++p;

  // $status|$bytes_sent|$request_time|
  p = Status3(p, end, &out->status);
  if (p == nullptr || p >= end || *p != '|') return false;
  p = Unsigned(p + 1, end, &out->bytes);
  if (p == nullptr || p >= end || *p != '|') return false;
  p = Decimal(p + 1, end, &out->request_time);
  if (p == nullptr || p >= end || *p != '|') return false;
  ++p;

  // $upstream_addr|$upstream_status|$upstream_response_time: parallel lists.
  // Item i goes to slot min(i, kMaxAttempts - 1), so the final attempt always
  // ends up in the last slot used.
  constexpr int kMax = LogRecord::kMaxAttempts;
  int total = 0;
  if (end - p >= 2 && p[0] == '-' && p[1] == '|') {
    // Not proxied: the other two lists must be "-" as well.
    if (end - p != 5 || p[2] != '-' || p[3] != '|' || p[4] != '-') return false;
  } else {
    for (;;) {
      const char* item = p;
      int sep = 0;
      for (;;) {
        p = FindItemEnd(p, end);
        if (p >= end || *p == '|' || (sep = Separator(p, end)) != 0) break;
        ++p;  // a ',' or ' ' inside the address
      }
      if (p >= end || p == item || (p - item == 1 && *item == '-')) return false;
      out->attempts[total < kMax ? total : kMax - 1].addr = std::string_view(item, static_cast<size_t>(p - item));
      ++total;
      if (*p == '|') {
        ++p;
        break;
      }
      p += sep;
    }
    for (int i = 0; i < total; ++i) {
      UpstreamAttempt& a = out->attempts[i < kMax ? i : kMax - 1];
      if (p < end && *p == '-') {
        a.status = 0;
        ++p;
      } else if ((p = Status3(p, end, &a.status)) == nullptr) {
        return false;
      }
      if ((p = AfterItem(p, end, i, total, '|')) == nullptr) return false;
    }
    for (int i = 0; i < total; ++i) {
      UpstreamAttempt& a = out->attempts[i < kMax ? i : kMax - 1];
      if (p < end && *p == '-') {
        a.response_time = -1;
        ++p;
      } else if ((p = Decimal(p, end, &a.response_time)) == nullptr) {
        return false;
      }
      if ((p = AfterItem(p, end, i, total, 0)) == nullptr) return false;
    }
  }

  if (!ours) {
    if (foreign && !proxy_host.empty() && proxy_host.find(' ') == std::string_view::npos) *foreign = true;
    return false;
  }
  out->endpoint = proxy_host.substr(kPrefix.size());
  // "no live upstreams": nginx names the upstream itself; that is no backend.
  const int stored = total < kMax ? total : kMax;
  int n = 0;
  for (int i = 0; i < stored; ++i) {
    if (out->attempts[i].addr == proxy_host) continue;
    if (n != i) out->attempts[n] = out->attempts[i];
    ++n;
  }
  out->n_attempts = n;
  out->extra_attempts = total - stored;
  return true;
}

}  // namespace reactor
