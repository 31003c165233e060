// The access-log format the agent owns. nginx writes it (templates use
// kLogFormat in `log_format reactor '...'`), the tailer parses it. Standard
// nginx variables only; '|' separates fields (no field can contain one:
// upstream lists use ", " and " : ").
//   msec | proxy_host (= "reactor_<endpoint>") | status | bytes_sent |
//   request_time | upstream_addr | upstream_status | upstream_response_time
#pragma once

namespace reactor {

inline constexpr const char* kLogFormat =
    "$msec|$proxy_host|$status|$bytes_sent|$request_time|$upstream_addr|$upstream_status|$upstream_response_time";

/// Upstream names are this prefix plus the endpoint name, so $proxy_host in
/// the log names the endpoint.
inline constexpr const char* kUpstreamPrefix = "reactor_";

}  // namespace reactor
