// Parsing of the value forms that config files share: durations, sizes,
// integers in a range, booleans, host:port.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/common/clock.h"
#include "agent/common/status.h"

namespace reactor {

/// "200ms", "1s", "5m", "1.5s"; a bare number is seconds. Negative → error.
Result<Duration> ParseDuration(std::string_view text);
/// Formats as the shortest exact form: "200ms", "1s", "5m".
std::string FormatDuration(Duration d);
/// Bytes with an optional k/m/g suffix (powers of 1024), case-insensitive.
Result<uint64_t> ParseSize(std::string_view text);
/// A decimal integer within [lo, hi].
Result<int64_t> ParseInt(std::string_view text, int64_t lo, int64_t hi);
/// "true/false/yes/no/on/off/1/0".
Result<bool> ParseBool(std::string_view text);
/// "lo-hi" with 1 <= lo <= hi <= 65535.
struct PortRange {
  int lo = 0;
  int hi = 0;
};
Result<PortRange> ParsePortRange(std::string_view text);
/// Trims ASCII whitespace from both ends.
std::string_view Trim(std::string_view s);

}  // namespace reactor
