#include "agent/endpoint/endpoint_parser.h"

#include <algorithm>
#include <set>

#include "agent/common/agent_config.h"
#include "agent/common/units.h"
#include "rules/rules.h"

namespace reactor {

namespace {

using Key = IniKey<EndpointConfig>;

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// "" if every character of `s` is alphanumeric or in `extra`, else why not.
std::string CheckCharset(const std::string& s, const std::string& extra, const std::string& described) {
  for (char c : s) {
    if (!IsAlnum(c) && extra.find(c) == std::string::npos) {
      std::string shown = (c >= 0x20 && c < 0x7f) ? std::string("'") + c + "'" : "a control character";
      return "'" + s + "' contains " + shown + "; allowed are " + described;
    }
  }
  return "";
}

// Every '%' starts a %XX escape.
bool PercentEscapesValid(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && (i + 2 >= s.size() || !IsHex(s[i + 1]) || !IsHex(s[i + 2]))) return false;
  }
  return true;
}

std::string ParseIntIn(const std::string& v, int lo, int hi, int* out) {
  auto n = ParseInt(v, lo, hi);
  if (!n.ok()) return n.status().message();
  *out = static_cast<int>(*n);
  return "";
}

std::string ParseDurationIn(const std::string& v, Duration lo, Duration hi, Duration* out) {
  auto d = ParseDuration(v);
  if (!d.ok()) return d.status().message();
  if (*d < lo || *d > hi) {
    return FormatDuration(*d) + " is out of range [" + FormatDuration(lo) + ", " + FormatDuration(hi) + "]";
  }
  *out = *d;
  return "";
}

// Items of a list separated by ',' or newlines (a line may end in ','),
// trimmed. An empty value is an empty list; an empty item ("a,,b", a
// trailing ',' at the very end) is an error.
std::string SplitList(const std::string& v, std::vector<std::string>* items) {
  items->clear();
  if (v.empty()) return "";
  std::string joined;
  bool first = true;
  size_t start = 0;
  while (start <= v.size()) {
    size_t nl = v.find('\n', start);
    std::string line(Trim(std::string_view(v).substr(start, nl == std::string::npos ? std::string::npos : nl - start)));
    if (nl != std::string::npos && !line.empty() && line.back() == ',') line.pop_back();
    joined += (first ? "" : ",") + line;
    first = false;
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  start = 0;
  while (true) {
    size_t end = joined.find(',', start);
    std::string item(
        Trim(std::string_view(joined).substr(start, end == std::string::npos ? std::string::npos : end - start)));
    if (item.empty()) return "empty item in the list (items are separated by ',')";
    items->push_back(item);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

std::string Join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

// --- [endpoint] ---------------------------------------------------------------

const char kUrlPathChars[] = "._~/-";

std::string CheckUrlPath(const std::string& path) {
  std::string why = CheckCharset(path, kUrlPathChars, "letters, digits and . _ ~ / -");
  if (!why.empty()) return why;
  if (path.find("..") != std::string::npos) return "'" + path + "' must not contain '..'";
  if (path.find("//") != std::string::npos) return "'" + path + "' must not contain '//'";
  return "";
}

std::string ParseUrl(const std::string& v, EndpointUrl* out) {
  size_t sep = v.find("://");
  if (sep == std::string::npos) return "'" + v + "' is not scheme://[host][:port][/path]";
  EndpointUrl u;
  u.scheme = v.substr(0, sep);
  if (u.scheme != "http" && u.scheme != "https") return "scheme '" + u.scheme + "' is not http or https";
  std::string rest = v.substr(sep + 3);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string port_text;
  bool has_port = false;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return "'" + authority + "': '[' without ']'";
    std::string inner = authority.substr(1, close - 1);
    if (inner.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos || !CheckIpAddress(inner).empty() ||
        inner.find(':') == std::string::npos) {
      return "'" + inner + "' is not an IPv6 address";
    }
    u.host = authority.substr(0, close + 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return "unexpected '" + after + "' after the host";
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string::npos && authority.find(':', colon + 1) != std::string::npos) {
      return "'" + authority + "': write an IPv6 host in brackets, e.g. [::1]:8080";
    }
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (!u.host.empty()) {
      std::string why = CheckHostName(u.host);
      if (!why.empty()) return why;
    }
  }
  u.port = u.scheme == "https" ? 443 : 80;
  if (has_port) {
    auto p = ParseInt(port_text, 1, 65535);
    if (!p.ok() || port_text.empty() || port_text != std::string(Trim(port_text))) {
      return "port '" + port_text + "' is not 1-65535";
    }
    u.port = static_cast<int>(*p);
  }
  std::string why = CheckUrlPath(path);
  if (!why.empty()) return "path " + why;
  if (path.back() != '/') path += '/';
  u.path = path;
  *out = u;
  return "";
}

std::string FormatUrl(const EndpointUrl& u) {
  return u.scheme + "://" + u.host + ":" + std::to_string(u.port) + u.path;
}

std::string ParseCloud(const std::string& v, CloudKind* out) {
  for (CloudKind k : {CloudKind::kProcess, CloudKind::kDocker, CloudKind::kStatic}) {
    if (v == CloudKindName(k)) {
      *out = k;
      return "";
    }
  }
  return "'" + v + "' is not process, docker or static";
}

std::string ParseStaticInstances(const std::string& v, std::vector<HostPort>* out) {
  std::vector<std::string> items;
  std::string why = SplitList(v, &items);
  if (!why.empty()) return why;
  std::vector<HostPort> list;
  for (const auto& item : items) {
    HostPort hp;
    why = ParseHostPortText(item, &hp.host, &hp.port);
    if (!why.empty()) return why;
    if (std::find(list.begin(), list.end(), hp) != list.end()) return "'" + item + "' is listed twice";
    list.push_back(hp);
  }
  *out = list;
  return "";
}

std::string FormatStaticInstances(const std::vector<HostPort>& list) {
  std::vector<std::string> items;
  for (const auto& hp : list) items.push_back(hp.ToString());
  return Join(items, ", ");
}

// --- [scaling] ------------------------------------------------------------------

std::string ParseRulesKey(const std::string& v, std::string* out) {
  rules::ParseResult r = rules::ParseRules(v);
  if (!r.ok()) return r.error ? r.error->Format() : "not a valid rule list";
  *out = v;
  return "";
}

std::string ParsePolicy(const std::string& v, PolicyKind* out) {
  for (PolicyKind k : {PolicyKind::kLean, PolicyKind::kReactor, PolicyKind::kMidpoint, PolicyKind::kHpa}) {
    if (v == PolicyKindName(k)) {
      *out = k;
      return "";
    }
  }
  return "'" + v + "' is not lean, reactor, midpoint or hpa";
}

std::string ParsePlacement(const std::string& v, PlacementKind* out) {
  for (PlacementKind k : {PlacementKind::kSpread, PlacementKind::kPack, PlacementKind::kRoundRobin}) {
    if (v == PlacementKindName(k)) {
      *out = k;
      return "";
    }
  }
  return "'" + v + "' is not spread, pack or round_robin";
}

// "10%" or "10": a whole percentage in [0, 90].
std::string ParseHeadroom(const std::string& v, int* out) {
  std::string digits = !v.empty() && v.back() == '%' ? v.substr(0, v.size() - 1) : v;
  std::string why = ParseIntIn(digits, 0, 90, out);
  return why.empty() ? "" : "'" + v + "' is not a percentage from 0% to 90%";
}

// --- [health] -------------------------------------------------------------------

std::string ParseHealthPath(const std::string& v, std::string* out) {
  if (!v.empty()) {
    if (v[0] != '/') return "'" + v + "' must start with '/' (or be empty for a TCP check)";
    std::string why = CheckCharset(v, "._~/-?=&%", "letters, digits and . _ ~ / - ? = & %");
    if (!why.empty()) return why;
    if (!PercentEscapesValid(v)) return "'" + v + "': '%' must start a %XX escape";
    if (v.find("..") != std::string::npos) return "'" + v + "' must not contain '..'";
  }
  *out = v;
  return "";
}

// --- [cloud:*] ------------------------------------------------------------------

std::string ParseCommand(const std::string& v, std::string* out) {
  if (v.find('\n') != std::string::npos) return "must be on one line";
  *out = v;
  return "";
}

std::string ParseEnvironment(const std::string& v, std::vector<std::pair<std::string, std::string>>* out) {
  std::vector<std::string> items;
  std::string why = SplitList(v, &items);
  if (!why.empty()) return why;
  std::vector<std::pair<std::string, std::string>> env;
  for (const auto& item : items) {
    size_t eq = item.find('=');
    if (eq == std::string::npos) return "'" + item + "' is not KEY=value";
    std::string key(Trim(std::string_view(item).substr(0, eq)));
    std::string value(Trim(std::string_view(item).substr(eq + 1)));
    bool first_ok = !key.empty() && (key[0] == '_' || (IsAlnum(key[0]) && !(key[0] >= '0' && key[0] <= '9')));
    if (!first_ok || !CheckCharset(key, "_", "").empty()) {
      return "'" + key + "' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)";
    }
    for (const auto& e : env) {
      if (e.first == key) return "'" + key + "' is set twice";
    }
    env.emplace_back(key, value);
  }
  *out = env;
  return "";
}

std::string FormatEnvironment(const std::vector<std::pair<std::string, std::string>>& env) {
  std::vector<std::string> items;
  for (const auto& [k, v] : env) items.push_back(k + "=" + v);
  return Join(items, ", ");
}

std::string ParseWorkingDir(const std::string& v, std::string* out) {
  if (!v.empty()) {
    if (v[0] != '/') return "'" + v + "' is not an absolute path";
    if (v.find('\n') != std::string::npos) return "must be on one line";
    size_t start = 0;
    while (start <= v.size()) {
      size_t slash = v.find('/', start);
      if (v.substr(start, slash == std::string::npos ? std::string::npos : slash - start) == "..") {
        return "'" + v + "' must not contain '..'";
      }
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
  }
  *out = v;
  return "";
}

std::string ParseImage(const std::string& v, std::string* out) {
  if (!v.empty()) {
    if (v.size() > 255) return "longer than 255 characters";
    if (!IsAlnum(v[0])) return "'" + v + "' must start with a letter or digit";
    std::string why = CheckCharset(v, "._/:@-", "letters, digits and . _ / : @ -");
    if (!why.empty()) return why;
    // The name reaches the Docker Engine API's URL path (/images/NAME/json):
    // no "..", no empty or dot-led path component, so it cannot walk to another route.
    if (v.find("..") != std::string::npos) return "'" + v + "' contains '..'";
    if (v.back() == '/' || v.find("//") != std::string::npos || v.find("/.") != std::string::npos) {
      return "'" + v + "' has an empty or '.'-led path component";
    }
  }
  *out = v;
  return "";
}

std::string ParseUser(const std::string& v, std::string* out) {
  if (v.size() > 64) return "longer than 64 characters";
  std::string why = CheckCharset(v, "_.:-", "letters, digits and _ . : -");
  if (!why.empty()) return why;
  *out = v;
  return "";
}

std::string ParseMemLimit(const std::string& v, uint64_t* out) {
  auto n = ParseSize(v);
  if (!n.ok()) return n.status().message();
  // Docker refuses limits below 6 MiB; say so here rather than at launch.
  if (*n != 0 && *n < 6ull * 1024 * 1024) return v + " is below Docker's minimum of 6m (0 = no limit)";
  *out = *n;
  return "";
}

std::string ParseDns(const std::string& v, std::vector<std::string>* out) {
  std::vector<std::string> items;
  std::string why = SplitList(v, &items);
  if (!why.empty()) return why;
  for (const auto& item : items) {
    why = CheckIpAddress(item);
    if (!why.empty()) return why;
  }
  *out = items;
  return "";
}

std::string ParseContainerHostname(const std::string& v, std::string* out) {
  if (!v.empty()) {
    if (v.size() > 63) return "longer than 63 characters";
    std::string why = CheckHostName(v);
    if (!why.empty()) return why;
  }
  *out = v;
  return "";
}

// --- [loadbalancer:nginx] -------------------------------------------------------

std::string ParseBalance(const std::string& v, Balance* out) {
  for (Balance b : {Balance::kRoundRobin, Balance::kLeastConn, Balance::kIpHash}) {
    if (v == BalanceName(b)) {
      *out = b;
      return "";
    }
  }
  return "'" + v + "' is not round_robin, least_conn or ip_hash";
}

std::string ParseCertPath(const std::string& v, std::string* out) {
  if (!v.empty()) {
    std::string why = CheckAbsolutePath(v);
    if (!why.empty()) return why;
  }
  *out = v;
  return "";
}

// Used as `return 301 <redirect>;`: no whitespace, quotes, ';', braces, '$',
// backslash or '#' can get through, so the value stays one nginx token.
std::string ParseRedirect(const std::string& v, std::string* out) {
  if (!v.empty()) {
    size_t sep = v.find("://");
    std::string scheme = sep == std::string::npos ? "" : v.substr(0, sep);
    if (scheme != "http" && scheme != "https") return "'" + v + "' is not an http:// or https:// URL";
    if (v.size() > 2048) return "longer than 2048 characters";
    std::string why = CheckCharset(v, "-._~:/?&=%+@,[]", "letters, digits and - . _ ~ : / ? & = % + @ , [ ]");
    if (!why.empty()) return why;
    if (!PercentEscapesValid(v)) return "'" + v + "': '%' must start a %XX escape";
    std::string rest = v.substr(sep + 3);
    std::string authority = rest.substr(0, rest.find_first_of("/?"));
    if (authority.empty()) return "'" + v + "' has no host";
  }
  *out = v;
  return "";
}

// --- the key table -----------------------------------------------------------------

// `field` maps a config (const or not) to the member: [](auto& c) -> auto& { ... }.
template <typename F>
Key IntKey(const char* section, const char* key, int lo, int hi, F field) {
  return {section, key, [=](const std::string& v, EndpointConfig* c) { return ParseIntIn(v, lo, hi, &field(*c)); },
          [=](const EndpointConfig& c) { return std::to_string(field(c)); }};
}

template <typename F>
Key DurationKey(const char* section, const char* key, Duration lo, Duration hi, F field) {
  return {section, key, [=](const std::string& v, EndpointConfig* c) { return ParseDurationIn(v, lo, hi, &field(*c)); },
          [=](const EndpointConfig& c) { return FormatDuration(field(c)); }};
}

// A key whose text is its value, checked by `parse(value, &member)`.
template <typename P, typename F>
Key TextKey(const char* section, const char* key, P parse, F field) {
  return {section, key, [=](const std::string& v, EndpointConfig* c) { return parse(v, &field(*c)); },
          [=](const EndpointConfig& c) { return std::string(field(c)); }};
}

const std::vector<Key>& EndpointKeys() {
  static const std::vector<Key> keys = {
      {"endpoint", "url", [](const std::string& v, EndpointConfig* c) { return ParseUrl(v, &c->url); },
       [](const EndpointConfig& c) { return FormatUrl(c.url); }},
      IntKey(
          "endpoint", "port", 1, 65535, [](auto& c) -> auto& { return c.port; }),
      {"endpoint", "cloud", [](const std::string& v, EndpointConfig* c) { return ParseCloud(v, &c->cloud); },
       [](const EndpointConfig& c) { return std::string(CloudKindName(c.cloud)); }},
      {"endpoint", "static_instances",
       [](const std::string& v, EndpointConfig* c) { return ParseStaticInstances(v, &c->static_instances); },
       [](const EndpointConfig& c) { return FormatStaticInstances(c.static_instances); }},
      IntKey(
          "endpoint", "weight", 1, 1000, [](auto& c) -> auto& { return c.weight; }),

      IntKey(
          "scaling", "min_instances", 0, 10000, [](auto& c) -> auto& { return c.scaling.min_instances; }),
      IntKey(
          "scaling", "max_instances", 0, 10000, [](auto& c) -> auto& { return c.scaling.max_instances; }),
      TextKey(
          "scaling", "rules", ParseRulesKey, [](auto& c) -> auto& { return c.scaling.rules; }),
      IntKey(
          "scaling", "ramp_limit", 1, 1000, [](auto& c) -> auto& { return c.scaling.ramp_limit; }),
      DurationKey(
          "scaling", "window", Duration(1000), Duration(3600000), [](auto& c) -> auto& { return c.scaling.window; }),
      DurationKey(
          "scaling", "scale_down_delay", Duration(0), Duration(86400000),
          [](auto& c) -> auto& { return c.scaling.scale_down_delay; }),
      DurationKey(
          "scaling", "drain_timeout", Duration(0), Duration(86400000),
          [](auto& c) -> auto& { return c.scaling.drain_timeout; }),
      {"scaling", "policy", [](const std::string& v, EndpointConfig* c) { return ParsePolicy(v, &c->scaling.policy); },
       [](const EndpointConfig& c) { return std::string(PolicyKindName(c.scaling.policy)); }},
      {"scaling", "placement",
       [](const std::string& v, EndpointConfig* c) { return ParsePlacement(v, &c->scaling.placement); },
       [](const EndpointConfig& c) { return std::string(PlacementKindName(c.scaling.placement)); }},
      DurationKey(
          "scaling", "scale_up_window", Duration(1000), Duration(3600000),
          [](auto& c) -> auto& { return c.scaling.scale_up_window; }),
      {"scaling", "headroom",
       [](const std::string& v, EndpointConfig* c) { return ParseHeadroom(v, &c->scaling.headroom_percent); },
       [](const EndpointConfig& c) { return std::to_string(c.scaling.headroom_percent) + "%"; }},
      DurationKey(
          "scaling", "predict", Duration(0), Duration(600000), [](auto& c) -> auto& { return c.scaling.predict; }),
      DurationKey(
          "scaling", "idle_timeout", Duration(0), Duration(30LL * 86400000),
          [](auto& c) -> auto& { return c.scaling.idle_timeout; }),

      TextKey(
          "health", "path", ParseHealthPath, [](auto& c) -> auto& { return c.health.path; }),
      DurationKey(
          "health", "interval", Duration(100), Duration(3600000), [](auto& c) -> auto& { return c.health.interval; }),
      DurationKey(
          "health", "timeout", Duration(10), Duration(3600000), [](auto& c) -> auto& { return c.health.timeout; }),
      IntKey(
          "health", "rise", 1, 100, [](auto& c) -> auto& { return c.health.rise; }),
      IntKey(
          "health", "fall", 1, 100, [](auto& c) -> auto& { return c.health.fall; }),

      TextKey(
          "cloud:process", "command", ParseCommand, [](auto& c) -> auto& { return c.process.command; }),
      {"cloud:process", "environment",
       [](const std::string& v, EndpointConfig* c) { return ParseEnvironment(v, &c->process.environment); },
       [](const EndpointConfig& c) { return FormatEnvironment(c.process.environment); }},
      TextKey(
          "cloud:process", "working_dir", ParseWorkingDir, [](auto& c) -> auto& { return c.process.working_dir; }),
      IntKey(
          "cloud:process", "slots", 0, 100000, [](auto& c) -> auto& { return c.process.slots; }),

      TextKey(
          "cloud:docker", "image", ParseImage, [](auto& c) -> auto& { return c.docker.image; }),
      TextKey(
          "cloud:docker", "command", ParseCommand, [](auto& c) -> auto& { return c.docker.command; }),
      {"cloud:docker", "environment",
       [](const std::string& v, EndpointConfig* c) { return ParseEnvironment(v, &c->docker.environment); },
       [](const EndpointConfig& c) { return FormatEnvironment(c.docker.environment); }},
      TextKey(
          "cloud:docker", "user", ParseUser, [](auto& c) -> auto& { return c.docker.user; }),
      {"cloud:docker", "mem_limit",
       [](const std::string& v, EndpointConfig* c) { return ParseMemLimit(v, &c->docker.mem_limit); },
       [](const EndpointConfig& c) { return std::to_string(c.docker.mem_limit); }},
      {"cloud:docker", "dns", [](const std::string& v, EndpointConfig* c) { return ParseDns(v, &c->docker.dns); },
       [](const EndpointConfig& c) { return Join(c.docker.dns, ", "); }},
      TextKey(
          "cloud:docker", "hostname", ParseContainerHostname, [](auto& c) -> auto& { return c.docker.hostname; }),
      IntKey(
          "cloud:docker", "slots", 0, 100000, [](auto& c) -> auto& { return c.docker.slots; }),

      {"loadbalancer:nginx", "balance",
       [](const std::string& v, EndpointConfig* c) { return ParseBalance(v, &c->lb.balance); },
       [](const EndpointConfig& c) { return std::string(BalanceName(c.lb.balance)); }},
      IntKey(
          "loadbalancer:nginx", "keepalive", 0, 10000, [](auto& c) -> auto& { return c.lb.keepalive; }),
      TextKey(
          "loadbalancer:nginx", "ssl_certificate", ParseCertPath,
          [](auto& c) -> auto& { return c.lb.ssl_certificate; }),
      TextKey(
          "loadbalancer:nginx", "ssl_key", ParseCertPath, [](auto& c) -> auto& { return c.lb.ssl_key; }),
      TextKey(
          "loadbalancer:nginx", "redirect", ParseRedirect, [](auto& c) -> auto& { return c.lb.redirect; }),
      DurationKey(
          "loadbalancer:nginx", "hold_timeout", Duration(0), Duration(600000),
          [](auto& c) -> auto& { return c.lb.hold_timeout; }),
      IntKey(
          "loadbalancer:nginx", "hold_max", 0, 100000, [](auto& c) -> auto& { return c.lb.hold_max; }),
  };
  return keys;
}

// Rules that tie keys together; checked once every key has parsed. A check
// whose keys already failed on their own is skipped, to report each mistake once.
void CheckCrossKeyRules(const EndpointConfig& c, const IniKeyLines& lines, std::vector<IniError>* errors) {
  std::set<std::string> failed;
  for (const auto& e : *errors) failed.insert(IniKeyId(e.section, e.key));
  auto ok = [&](const char* section, const char* key) { return failed.count(IniKeyId(section, key)) == 0; };
  auto line = [&](const char* section, const char* key) { return IniLine(lines, section, key); };
  auto add = [&](const char* section, const char* key, std::string why) {
    errors->push_back({line(section, key), section, key, std::move(why)});
  };

  if (ok("scaling", "min_instances") && ok("scaling", "max_instances") &&
      c.scaling.max_instances < c.scaling.min_instances) {
    // Blame the key just written: with `set` on a stored text that is the
    // one entry without a line; otherwise max, unless only min was written.
    const int min_line = line("scaling", "min_instances"), max_line = line("scaling", "max_instances");
    const bool min_given = lines.count(IniKeyId("scaling", "min_instances")) > 0;
    const bool max_given = lines.count(IniKeyId("scaling", "max_instances")) > 0;
    bool max_set = max_line > 0 || min_line == 0;
    if (min_given && max_given && min_line == 0 && max_line > 0) max_set = false;
    if (min_given && max_given && max_line == 0 && min_line > 0) max_set = true;
    if (max_set) {
      add("scaling", "max_instances",
          std::to_string(c.scaling.max_instances) + " is less than min_instances (" +
              std::to_string(c.scaling.min_instances) + ")");
    } else {
      add("scaling", "min_instances",
          std::to_string(c.scaling.min_instances) + " is more than max_instances (" +
              std::to_string(c.scaling.max_instances) + ")");
    }
  }
  if (ok("health", "interval") && ok("health", "timeout") && c.health.timeout > c.health.interval) {
    add("health", "timeout",
        FormatDuration(c.health.timeout) + " is longer than interval (" + FormatDuration(c.health.interval) + ")");
  }
  bool cert = !c.lb.ssl_certificate.empty(), key = !c.lb.ssl_key.empty();
  if (ok("loadbalancer:nginx", "ssl_certificate") && ok("loadbalancer:nginx", "ssl_key") && cert != key) {
    if (cert)
      add("loadbalancer:nginx", "ssl_key", "required when ssl_certificate is set");
    else
      add("loadbalancer:nginx", "ssl_certificate", "required when ssl_key is set");
  }
  if (ok("endpoint", "url") && c.url.scheme == "https" && (!cert || !key)) {
    add("endpoint", "url", "https needs [loadbalancer:nginx] ssl_certificate and ssl_key");
  }
  if (ok("endpoint", "cloud")) {
    if (c.cloud == CloudKind::kStatic && c.static_instances.empty() && ok("endpoint", "static_instances")) {
      add("endpoint", "static_instances", "cloud = static needs at least one host:port");
    }
    if (c.cloud == CloudKind::kProcess && c.process.command.empty() && ok("cloud:process", "command")) {
      add("cloud:process", "command", "required when cloud = process");
    }
    if (c.cloud == CloudKind::kDocker && c.docker.image.empty() && ok("cloud:docker", "image")) {
      add("cloud:docker", "image", "required when cloud = docker");
    }
  }
}

// A default that another key's value can contradict follows what the user
// wrote instead (HAProxy's `timeout check` follows `inter` the same way), so
// only two values the user wrote can ever conflict:
//   [health] timeout       = min(1s, interval)
//   [scaling] max_instances = max(1, min_instances)
//   [scaling] min_instances = min(1, max_instances)
void DeriveDefaults(const IniKeyLines& lines, const std::vector<IniError>& errors, EndpointConfig* c) {
  auto given = [&](const char* section, const char* key) { return lines.count(IniKeyId(section, key)) > 0; };
  auto failed = [&](const char* section, const char* key) {
    return std::any_of(errors.begin(), errors.end(),
                       [&](const IniError& e) { return e.section == section && e.key == key; });
  };
  const HealthConfig health_defaults;
  if (!given("health", "timeout") && !failed("health", "interval")) {
    c->health.timeout = std::min(health_defaults.timeout, c->health.interval);
  }
  const ScalingConfig scaling_defaults;
  bool min_given = given("scaling", "min_instances") && !failed("scaling", "min_instances");
  bool max_given = given("scaling", "max_instances") && !failed("scaling", "max_instances");
  if (min_given && !given("scaling", "max_instances")) {
    c->scaling.max_instances = std::max(scaling_defaults.max_instances, c->scaling.min_instances);
  }
  if (max_given && !given("scaling", "min_instances")) {
    c->scaling.min_instances = std::min(scaling_defaults.min_instances, c->scaling.max_instances);
  }
}

Result<EndpointConfig> Validate(const std::string& name, const IniDocument& doc) {
  EndpointConfig config;
  config.name = name;
  std::vector<IniError> errors;
  if (!IsValidEndpointName(name)) {
    errors.push_back({0, "", "name", "'" + name + "' must match [a-z0-9][a-z0-9_-]{0,62}"});
  }
  IniKeyLines lines;
  std::vector<IniError> found = ApplyIni(doc, EndpointKeys(), &config, &lines);
  errors.insert(errors.end(), found.begin(), found.end());
  DeriveDefaults(lines, errors, &config);
  CheckCrossKeyRules(config, lines, &errors);
  if (errors.empty()) return config;
  std::string msg;
  for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + e.Format();
  return Status::InvalidArgument(msg);
}

std::string SectionList() {
  std::string out;
  for (const auto& s : EndpointSectionNames()) out += (out.empty() ? "[" : ", [") + s + "]";
  return out;
}

bool IsSection(const std::string& section) {
  const auto& names = EndpointSectionNames();
  return std::find(names.begin(), names.end(), section) != names.end();
}

}  // namespace

bool IsValidEndpointName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return lower_or_digit(c) || c == '_' || c == '-'; });
}

Result<EndpointConfig> ParseEndpointIni(const std::string& name, const std::string& text) {
  return Validate(name, ParseIniText(text));
}

const std::vector<std::string>& EndpointSectionNames() {
  static const std::vector<std::string> names = {"endpoint",      "scaling",      "health",
                                                 "cloud:process", "cloud:docker", "loadbalancer:nginx"};
  return names;
}

std::vector<std::pair<std::string, EndpointSection>> EndpointSections(const EndpointConfig& config) {
  std::vector<std::pair<std::string, EndpointSection>> out;
  for (const auto& k : EndpointKeys()) {
    if (out.empty() || out.back().first != k.section) out.emplace_back(k.section, EndpointSection{});
    out.back().second.emplace_back(k.key, k.format(config));
  }
  return out;
}

std::string SerializeEndpointIni(const EndpointConfig& config) {
  std::string out;
  for (const auto& [section, keys] : EndpointSections(config)) {
    out += (out.empty() ? "[" : "\n[") + section + "]\n";
    for (const auto& [key, value] : keys) out += FormatIniEntry(key, value);
  }
  return out;
}

Result<EndpointSection> EndpointSectionKeys(const EndpointConfig& config, const std::string& section) {
  for (auto& [name, keys] : EndpointSections(config)) {
    if (name == section) return keys;
  }
  return Status::InvalidArgument("unknown section [" + section + "] (expected one of " + SectionList() + ")");
}

Result<std::string> GetEndpointKey(const EndpointConfig& config, const std::string& section, const std::string& key) {
  auto keys = EndpointSectionKeys(config, section);
  if (!keys.ok()) return keys.status();
  for (const auto& [k, v] : *keys) {
    if (k == key) return v;
  }
  return Status::InvalidArgument("[" + section + "] " + key + ": unknown key");
}

Result<EndpointConfig> SetEndpointKey(const EndpointConfig& current, const std::string& section, const std::string& key,
                                      const std::string& value) {
  if (!IsSection(section)) {
    return Status::InvalidArgument("unknown section [" + section + "] (expected one of " + SectionList() + ")");
  }
  IniDocument doc;
  bool found = false;
  for (const auto& [name, keys] : EndpointSections(current)) {
    doc.sections.push_back({name, 0});
    for (const auto& [k, v] : keys) {
      bool target = name == section && k == key;
      found = found || target;
      doc.entries.push_back({name, k, target ? CanonicalIniValue(value) : v, 0});
    }
  }
  if (!found) return Status::InvalidArgument("[" + section + "] " + key + ": unknown key");
  return Validate(current.name, doc);
}

Result<EndpointConfig> ParseEndpointIniLenient(const std::string& name, const std::string& text) {
  IniDocument doc = ParseIniText(text);
  doc.errors.clear();
  // Each pass drops the entries an error names; a handful of passes settles
  // it (a dropped key can only make cross-key rules pass or name other keys).
  for (int pass = 0; pass < 8; ++pass) {
    EndpointConfig config;
    config.name = name;
    IniKeyLines lines;
    std::vector<IniError> errors = ApplyIni(doc, EndpointKeys(), &config, &lines);
    DeriveDefaults(lines, errors, &config);
    CheckCrossKeyRules(config, lines, &errors);
    if (errors.empty()) return config;
    size_t before = doc.entries.size();
    doc.entries.erase(std::remove_if(doc.entries.begin(), doc.entries.end(),
                                     [&](const IniEntry& e) {
                                       return std::any_of(errors.begin(), errors.end(), [&](const IniError& err) {
                                         return err.section == e.section && (err.key.empty() || err.key == e.key);
                                       });
                                     }),
                      doc.entries.end());
    if (doc.entries.size() == before) break;  // the rest is not any one key's fault
  }
  return Status::InvalidArgument("no usable configuration in the stored text of endpoint '" + name + "'");
}

Result<std::pair<EndpointConfig, std::string>> SetEndpointIniKey(const std::string& name, const std::string& ini,
                                                                 const std::string& section, const std::string& key,
                                                                 const std::string& value) {
  if (!IsSection(section)) {
    return Status::InvalidArgument("unknown section [" + section + "] (expected one of " + SectionList() + ")");
  }
  const auto& keys = EndpointKeys();
  if (std::none_of(keys.begin(), keys.end(), [&](const Key& k) { return k.section == section && k.key == key; })) {
    return Status::InvalidArgument("[" + section + "] " + key + ": unknown key");
  }
  IniDocument doc = ParseIniText(ini);
  const std::string canonical = CanonicalIniValue(value);
  bool replaced = false;
  for (auto& e : doc.entries) {
    if (e.section == section && e.key == key) {
      e.value = canonical;
      e.line = 0;
      replaced = true;
    }
  }
  if (!replaced) {
    auto last =
        std::find_if(doc.entries.rbegin(), doc.entries.rend(), [&](const IniEntry& e) { return e.section == section; });
    doc.entries.insert(last.base(), IniEntry{section, key, canonical, 0});
    if (std::none_of(doc.sections.begin(), doc.sections.end(),
                     [&](const IniSectionHeader& h) { return h.name == section; })) {
      doc.sections.push_back({section, 0});
    }
  }
  auto config = Validate(name, doc);
  if (!config.ok()) return config.status();
  // The text keeps the keys the user wrote, grouped by section in file order.
  std::string text;
  std::vector<std::string> done;
  for (const auto& h : doc.sections) {
    if (std::find(done.begin(), done.end(), h.name) != done.end()) continue;
    done.push_back(h.name);
    text += (text.empty() ? "[" : "\n[") + h.name + "]\n";
    for (const auto& e : doc.entries) {
      if (e.section == h.name) text += FormatIniEntry(e.key, e.value);
    }
  }
  return std::make_pair(std::move(*config), std::move(text));
}

}  // namespace reactor
