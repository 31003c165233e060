#include "agent/common/agent_config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace reactor {

// ---------------------------------------------------------------------------
// INI text.

std::string IniError::Format() const {
  std::string out;
  if (line > 0) out += "line " + std::to_string(line) + ": ";
  if (!section.empty()) {
    out += "[" + section + "]";
    if (!key.empty()) out += " " + key;
    out += ": ";
  } else if (!key.empty()) {
    out += key + ": ";
  }
  return out + why;
}

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

// A ';' at the start of a value or after whitespace starts a comment (inih's
// INI_ALLOW_INLINE_COMMENTS rule); any other ';' is part of the value.
std::string_view StripInlineComment(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ';' && (i == 0 || IsSpace(s[i - 1]))) return s.substr(0, i);
  }
  return s;
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      if (start < text.size()) lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

}  // namespace

IniDocument ParseIniText(std::string_view text) {
  IniDocument doc;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  std::string section;
  bool have_section = false;
  long last = -1;  // index of the entry a continuation line extends
  int line_no = 0;
  for (std::string_view line : SplitLines(text)) {
    ++line_no;
    if (line.find('\0') != std::string_view::npos) {
      doc.errors.push_back({line_no, "", "", "contains a NUL byte"});
      last = -1;
      continue;
    }
    std::string_view t = Trim(line);
    if (t.empty() || t[0] == ';' || t[0] == '#') continue;  // blank lines do not end a continuation
    if (IsSpace(line[0]) && last >= 0) {
      std::string_view v = Trim(StripInlineComment(t));
      if (!v.empty()) {
        std::string& value = doc.entries[last].value;
        value += (value.empty() ? "" : "\n") + std::string(v);
      }
      continue;
    }
    last = -1;
    if (t[0] == '[') {
      size_t close = t.find(']');
      if (close == std::string_view::npos) {
        doc.errors.push_back({line_no, "", "", "'[' without a closing ']'"});
        continue;
      }
      if (!Trim(StripInlineComment(Trim(t.substr(close + 1)))).empty()) {
        doc.errors.push_back({line_no, "", "", "unexpected text after the section header"});
        continue;
      }
      std::string name(Trim(t.substr(1, close - 1)));
      if (name.empty()) {
        doc.errors.push_back({line_no, "", "", "empty section name"});
        continue;
      }
      section = name;
      have_section = true;
      doc.sections.push_back({name, line_no});
      continue;
    }
    size_t eq = t.find('=');
    if (eq == std::string_view::npos) {
      doc.errors.push_back(
          {line_no, "", "",
           "expected 'key = value', '[section]' or a comment, got '" + std::string(t.substr(0, 40)) + "'"});
      continue;
    }
    std::string key(Trim(t.substr(0, eq)));
    if (key.empty()) {
      doc.errors.push_back({line_no, "", "", "a key is missing before '='"});
      continue;
    }
    if (!have_section) {
      doc.errors.push_back({line_no, "", key, "comes before any [section]"});
      continue;
    }
    doc.entries.push_back({section, key, std::string(Trim(StripInlineComment(t.substr(eq + 1)))), line_no});
    last = static_cast<long>(doc.entries.size()) - 1;
  }
  return doc;
}

std::string CanonicalIniValue(std::string_view value) {
  std::string out;
  for (std::string_view line : SplitLines(value)) {
    std::string_view t = Trim(line);
    if (t.empty()) continue;
    if (!out.empty()) out += '\n';
    out += t;
  }
  return out;
}

std::string IniValueProblem(std::string_view value) {
  if (value.find('\0') != std::string_view::npos) return "contains a NUL byte";
  auto lines = SplitLines(value);
  for (size_t n = 0; n < lines.size(); ++n) {
    std::string_view l = lines[n];
    for (size_t i = 0; i < l.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(l[i]);
      if ((c < 0x20 && c != '\t') || c == 0x7f) return "contains a control character";
      if (c == ';' && (i == 0 || IsSpace(l[i - 1]))) {
        return "a ';' at the start of a value or after a space begins an INI comment; remove the space "
               "before it";
      }
    }
    if (n > 0 && !l.empty() && l[0] == '#') return "a continuation line starting with '#' is an INI comment";
  }
  return "";
}

std::string FormatIniEntry(const std::string& key, const std::string& value) {
  if (value.empty()) return key + " =\n";
  std::string out = key + " = ";
  bool first = true;
  for (std::string_view line : SplitLines(value)) {
    if (!first) out += "    ";
    out += std::string(line) + "\n";
    first = false;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Shared validators.

std::string CheckAbsolutePath(std::string_view s) {
  if (s.empty() || s[0] != '/') return "'" + std::string(s) + "' is not an absolute path";
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '/' || c == '-';
    if (!ok) return "'" + std::string(s) + "' may contain only letters, digits and . _ / -";
  }
  if (s.find("..") != std::string_view::npos) return "'" + std::string(s) + "' must not contain '..'";
  return "";
}

std::string CheckIpAddress(std::string_view s) {
  std::string str(s);
  unsigned char buf[16];
  if (inet_pton(AF_INET, str.c_str(), buf) == 1 || inet_pton(AF_INET6, str.c_str(), buf) == 1) return "";
  return "'" + str + "' is not an IP address";
}

std::string CheckHostName(std::string_view s) {
  std::string str(s);
  if (s.empty()) return "the host is empty";
  if (s.find_first_not_of("0123456789.") == std::string_view::npos) {
    unsigned char buf[4];
    if (inet_pton(AF_INET, str.c_str(), buf) == 1) return "";
    return "'" + str + "' is not a valid IPv4 address";
  }
  if (s.size() > 253) return "host name '" + str.substr(0, 40) + "...' is longer than 253 characters";
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        label.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
            std::string_view::npos) {
      return "'" + str + "' is not a valid host name (letters, digits, '-' and '.'; labels of 1-63 characters)";
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return "";
}

std::string ParseHostPortText(std::string_view s, std::string* host, int* port) {
  std::string str(s);
  std::string_view h, p;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return "'" + str + "' is not host:port ([IPv6]:port for IPv6)";
    }
    std::string inner(s.substr(1, close - 1));
    unsigned char buf[16];
    if (inet_pton(AF_INET6, inner.c_str(), buf) != 1) return "'" + inner + "' is not an IPv6 address";
    h = s.substr(0, close + 1);
    p = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return "'" + str + "' is not host:port";
    h = s.substr(0, colon);
    p = s.substr(colon + 1);
    if (h.find(':') != std::string_view::npos) return "'" + str + "': write IPv6 addresses as [address]:port";
    std::string why = CheckHostName(h);
    if (!why.empty()) return why;
  }
  auto n = ParseInt(p, 1, 65535);
  if (!n.ok() || p != Trim(p)) return "'" + str + "': the port must be 1-65535";
  *host = std::string(h);
  *port = static_cast<int>(*n);
  return "";
}

// ---------------------------------------------------------------------------
// agent.conf.

std::string AgentConfig::State::ToString() const {
  if (kind == Kind::kSqlite) return "sqlite:" + sqlite_path;
  std::string out = "etcd://";
  for (size_t i = 0; i < etcd_endpoints.size(); ++i) out += (i ? "," : "") + etcd_endpoints[i];
  return out;
}

namespace {

using Key = IniKey<AgentConfig>;

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

std::string CheckManagerName(std::string_view s) {
  if (s.empty() || s.size() > 253) return "must be 1-253 characters";
  if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0' && s[0] <= '9'))) {
    return "'" + std::string(s) + "' must start with a letter or digit";
  }
  if (s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
      std::string_view::npos) {
    return "'" + std::string(s) + "' may contain only letters, digits and . _ -";
  }
  return "";
}

std::string ParseListen(const std::string& v, AgentConfig::Listen* out) {
  if (v.rfind("unix:", 0) == 0) {
    std::string path = v.substr(5);
    std::string why = CheckAbsolutePath(path);
    if (!why.empty()) return "unix socket: " + why;
    if (path.size() > 107) return "unix socket path is longer than 107 characters";
    *out = AgentConfig::Listen{path, "", 0};
    return "";
  }
  AgentConfig::Listen a;
  std::string why = ParseHostPortText(v, &a.host, &a.port);
  if (!why.empty()) return why + " (expected host:port or unix:/path)";
  *out = a;
  return "";
}

std::string ParseState(const std::string& v, AgentConfig::State* out) {
  if (v.rfind("sqlite:", 0) == 0) {
    std::string why = CheckAbsolutePath(v.substr(7));
    if (!why.empty()) return "sqlite: " + why;
    *out = AgentConfig::State{AgentConfig::State::Kind::kSqlite, v.substr(7), {}};
    return "";
  }
  if (v.rfind("etcd://", 0) == 0) {
    AgentConfig::State s{AgentConfig::State::Kind::kEtcd, "", {}};
    std::string list = v.substr(7);
    size_t start = 0;
    while (true) {
      size_t comma = list.find(',', start);
      std::string item(
          Trim(std::string_view(list).substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
      std::string host;
      int port = 0;
      std::string why = ParseHostPortText(item, &host, &port);
      if (!why.empty()) return "etcd endpoint " + why;
      s.etcd_endpoints.push_back(host + ":" + std::to_string(port));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    *out = s;
    return "";
  }
  return "'" + v + "' is neither sqlite:/path nor etcd://host:port,...";
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

std::string ParseIntIn(const std::string& v, int lo, int hi, int* out) {
  auto n = ParseInt(v, lo, hi);
  if (!n.ok()) return n.status().message();
  *out = static_cast<int>(*n);
  return "";
}

// An absolute path (strict charset), or "" when `allow_empty`.
std::string ParsePathKey(const std::string& v, bool allow_empty, std::string* out) {
  if (v.empty() && allow_empty) {
    out->clear();
    return "";
  }
  std::string why = CheckAbsolutePath(v);
  if (!why.empty()) return why;
  *out = v;
  return "";
}

std::string ParsePortRangeKey(const std::string& v, PortRange* out) {
  auto r = ParsePortRange(v);
  if (!r.ok()) return r.status().message();
  *out = *r;
  return "";
}

std::string FormatPortRange(const PortRange& r) { return std::to_string(r.lo) + "-" + std::to_string(r.hi); }

const std::vector<Key>& AgentKeys() {
  static const std::vector<Key> keys = {
      {"agent", "name",
       [](const std::string& v, AgentConfig* c) {
         std::string why = CheckManagerName(v);
         if (why.empty()) c->name = v;
         return why;
       },
       [](const AgentConfig& c) { return c.name; }},
      {"agent", "listen", [](const std::string& v, AgentConfig* c) { return ParseListen(v, &c->listen); },
       [](const AgentConfig& c) { return c.listen.ToString(); }},
      {"agent", "token_file",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, false, &c->token_file); },
       [](const AgentConfig& c) { return c.token_file; }},
      {"agent", "state", [](const std::string& v, AgentConfig* c) { return ParseState(v, &c->state); },
       [](const AgentConfig& c) { return c.state.ToString(); }},
      {"agent", "state_dir", [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, false, &c->state_dir); },
       [](const AgentConfig& c) { return c.state_dir; }},
      {"agent", "endpoints_dir",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, true, &c->endpoints_dir); },
       [](const AgentConfig& c) { return c.endpoints_dir; }},
      {"agent", "interval",
       [](const std::string& v, AgentConfig* c) {
         return ParseDurationIn(v, Duration(100), Duration(60000), &c->interval);
       },
       [](const AgentConfig& c) { return FormatDuration(c.interval); }},
      {"agent", "slots", [](const std::string& v, AgentConfig* c) { return ParseIntIn(v, 0, 1000000, &c->slots); },
       [](const AgentConfig& c) { return std::to_string(c.slots); }},
      {"agent", "address",
       [](const std::string& v, AgentConfig* c) -> std::string {
         if (!v.empty()) {
           std::string why = CheckHostName(v);
           if (!why.empty() && !CheckIpAddress(v).empty()) return why;
         }
         c->address = v;
         return "";
       },
       [](const AgentConfig& c) { return c.address; }},
      {"agent", "lease_ttl",
       [](const std::string& v, AgentConfig* c) {
         return ParseDurationIn(v, Duration(1000), Duration(600000), &c->lease_ttl);
       },
       [](const AgentConfig& c) { return FormatDuration(c.lease_ttl); }},
      {"agent", "metrics_without_token",
       [](const std::string& v, AgentConfig* c) -> std::string {
         if (v == "true")
           c->metrics_without_token = true;
         else if (v == "false")
           c->metrics_without_token = false;
         else
           return "'" + v + "' is not true or false";
         return "";
       },
       [](const AgentConfig& c) -> std::string { return c.metrics_without_token ? "true" : "false"; }},
      {"agent", "tls_cert_file",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, true, &c->tls_cert_file); },
       [](const AgentConfig& c) { return c.tls_cert_file; }},
      {"agent", "tls_key_file",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, true, &c->tls_key_file); },
       [](const AgentConfig& c) { return c.tls_key_file; }},
      {"agent", "insecure_listen",
       [](const std::string& v, AgentConfig* c) -> std::string {
         if (v == "true")
           c->insecure_listen = true;
         else if (v == "false")
           c->insecure_listen = false;
         else
           return "'" + v + "' is not true or false";
         return "";
       },
       [](const AgentConfig& c) -> std::string { return c.insecure_listen ? "true" : "false"; }},
      {"agent", "ui_dir", [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, true, &c->ui_dir); },
       [](const AgentConfig& c) { return c.ui_dir; }},
      {"agent", "etcd_ca_file",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, true, &c->etcd_ca_file); },
       [](const AgentConfig& c) { return c.etcd_ca_file; }},
      {"agent", "etcd_cert_file",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, true, &c->etcd_cert_file); },
       [](const AgentConfig& c) { return c.etcd_cert_file; }},
      {"agent", "etcd_key_file",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, true, &c->etcd_key_file); },
       [](const AgentConfig& c) { return c.etcd_key_file; }},
      {"agent", "etcd_password_file",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, true, &c->etcd_password_file); },
       [](const AgentConfig& c) { return c.etcd_password_file; }},
      {"agent", "etcd_compaction",
       [](const std::string& v, AgentConfig* c) -> std::string {
         if (v == "off" || v == "0") {
           c->etcd_compaction = Duration(0);
           return "";
         }
         // Below a second, watches that fall a moment behind would re-read
         // their prefixes over and over.
         std::string why = ParseDurationIn(v, Duration(1000), Duration(7 * 24 * 3600 * 1000), &c->etcd_compaction);
         return why.empty() ? why : why + " (or 0/off: no compaction by the agent)";
       },
       [](const AgentConfig& c) -> std::string {
         return c.etcd_compaction.count() == 0 ? "off" : FormatDuration(c.etcd_compaction);
       }},
      {"agent", "backup_dir",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, true, &c->backup_dir); },
       [](const AgentConfig& c) { return c.backup_dir; }},
      {"agent", "etcd_user",
       [](const std::string& v, AgentConfig* c) -> std::string {
         // etcd user names are free text; keep them to what an INI line and a
         // JSON string carry without surprises.
         for (char ch : v) {
           if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-' && ch != '.' && ch != '@') {
             return "'" + v + "' may contain only letters, digits and _ - . @";
           }
         }
         if (v.size() > 128) return "longer than 128 characters";
         c->etcd_user = v;
         return "";
       },
       [](const AgentConfig& c) { return c.etcd_user; }},
      {"agent", "backup_hours_to_keep",
       [](const std::string& v, AgentConfig* c) { return ParseIntIn(v, 0, 8784, &c->backup_hours_to_keep); },
       [](const AgentConfig& c) { return std::to_string(c.backup_hours_to_keep); }},
      {"agent", "backup_days_to_keep",
       [](const std::string& v, AgentConfig* c) { return ParseIntIn(v, 0, 3660, &c->backup_days_to_keep); },
       [](const AgentConfig& c) { return std::to_string(c.backup_days_to_keep); }},
      {"agent", "backup_weeks_to_keep",
       [](const std::string& v, AgentConfig* c) { return ParseIntIn(v, 0, 520, &c->backup_weeks_to_keep); },
       [](const AgentConfig& c) { return std::to_string(c.backup_weeks_to_keep); }},
      {"agent", "backup_months_to_keep",
       [](const std::string& v, AgentConfig* c) { return ParseIntIn(v, 0, 1200, &c->backup_months_to_keep); },
       [](const AgentConfig& c) { return std::to_string(c.backup_months_to_keep); }},

      {"nginx", "mode",
       [](const std::string& v, AgentConfig* c) -> std::string {
         if (v == "managed")
           c->nginx.mode = NginxSettings::Mode::kManaged;
         else if (v == "system")
           c->nginx.mode = NginxSettings::Mode::kSystem;
         else
           return "'" + v + "' is not managed or system";
         return "";
       },
       [](const AgentConfig& c) -> std::string {
         return c.nginx.mode == NginxSettings::Mode::kManaged ? "managed" : "system";
       }},
      {"nginx", "prefix", [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, false, &c->nginx.prefix); },
       [](const AgentConfig& c) { return c.nginx.prefix; }},
      {"nginx", "binary",
       [](const std::string& v, AgentConfig* c) -> std::string {
         // An absolute path, or a bare name looked up in PATH now: the
         // agent runs it with execv, which does not search PATH.
         if (!v.empty() && v[0] != '/' && v.find('/') == std::string::npos) {
           std::string why = CheckAbsolutePath("/" + v);
           if (!why.empty()) return "'" + v + "' may contain only letters, digits and . _ -";
           const char* env = getenv("PATH");
           std::string path =
               env != nullptr && *env != '\0' ? env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
           size_t start = 0;
           while (start <= path.size()) {
             size_t end = path.find(':', start);
             if (end == std::string::npos) end = path.size();
             std::string dir = path.substr(start, end - start);
             start = end + 1;
             if (dir.empty() || dir[0] != '/') continue;  // only absolute PATH entries
             std::string full = dir + "/" + v;
             if (access(full.c_str(), X_OK) == 0 && CheckAbsolutePath(full).empty()) {
               c->nginx.binary = full;
               return "";
             }
           }
           return "'" + v + "' is not an executable in PATH (" + path + "); give an absolute path";
         }
         return ParsePathKey(v, false, &c->nginx.binary);
       },
       [](const AgentConfig& c) { return c.nginx.binary; }},
      {"nginx", "conf_dir",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, false, &c->nginx.conf_dir); },
       [](const AgentConfig& c) { return c.nginx.conf_dir; }},
      {"nginx", "template_dir",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, true, &c->nginx.template_dir); },
       [](const AgentConfig& c) { return c.nginx.template_dir; }},
      {"nginx", "reload_delay",
       [](const std::string& v, AgentConfig* c) {
         return ParseDurationIn(v, Duration(0), Duration(10000), &c->nginx.reload_delay);
       },
       [](const AgentConfig& c) { return FormatDuration(c.nginx.reload_delay); }},
      {"nginx", "upstreams",
       [](const std::string& v, AgentConfig* c) -> std::string {
         if (v == "dynamic")
           c->nginx.upstreams = NginxSettings::Upstreams::kDynamic;
         else if (v == "reload")
           c->nginx.upstreams = NginxSettings::Upstreams::kReload;
         else
           return "'" + v + "' is not dynamic or reload";
         return "";
       },
       [](const AgentConfig& c) -> std::string {
         return c.nginx.upstreams == NginxSettings::Upstreams::kDynamic ? "dynamic" : "reload";
       }},

      {"cloud:docker", "socket",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, false, &c->docker.socket); },
       [](const AgentConfig& c) { return c.docker.socket; }},
      {"cloud:docker", "network",
       [](const std::string& v, AgentConfig* c) -> std::string {
         if (v == "bridge")
           c->docker.network = AgentConfig::DockerCloud::Network::kBridge;
         else if (v == "host")
           c->docker.network = AgentConfig::DockerCloud::Network::kHost;
         else
           return "'" + v + "' is not bridge or host";
         return "";
       },
       [](const AgentConfig& c) -> std::string {
         return c.docker.network == AgentConfig::DockerCloud::Network::kBridge ? "bridge" : "host";
       }},
      {"cloud:docker", "host_ip",
       [](const std::string& v, AgentConfig* c) {
         std::string why = CheckIpAddress(v);
         if (why.empty()) c->docker.host_ip = v;
         return why;
       },
       [](const AgentConfig& c) { return c.docker.host_ip; }},
      {"cloud:docker", "port_range",
       [](const std::string& v, AgentConfig* c) { return ParsePortRangeKey(v, &c->docker.port_range); },
       [](const AgentConfig& c) { return FormatPortRange(c.docker.port_range); }},

      {"cloud:process", "port_range",
       [](const std::string& v, AgentConfig* c) { return ParsePortRangeKey(v, &c->process.port_range); },
       [](const AgentConfig& c) { return FormatPortRange(c.process.port_range); }},
      {"cloud:process", "log_dir",
       [](const std::string& v, AgentConfig* c) { return ParsePathKey(v, false, &c->process.log_dir); },
       [](const AgentConfig& c) { return c.process.log_dir; }},
  };
  return keys;
}

}  // namespace

bool AgentConfig::Listen::IsLoopback() const {
  if (IsUnix()) return true;
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  std::string lower;
  for (char ch : h) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return lower == "localhost";
}

AgentConfig DefaultAgentConfig() {
  AgentConfig c;
  c.name = HostName();
  if (!CheckManagerName(c.name).empty()) c.name = "localhost";
  return c;
}

Result<AgentConfig> ParseAgentConfig(const std::string& path_for_messages, const std::string& text) {
  AgentConfig config = DefaultAgentConfig();
  IniKeyLines lines;
  std::vector<IniError> errors = ApplyIni(ParseIniText(text), AgentKeys(), &config, &lines);

  // Both clouds hand out host ports on the same host: their ranges must not meet.
  const PortRange& d = config.docker.port_range;
  const PortRange& p = config.process.port_range;
  if (d.lo <= p.hi && p.lo <= d.hi) {
    bool process_set = IniLine(lines, "cloud:process", "port_range") > 0;
    errors.push_back(
        {process_set ? IniLine(lines, "cloud:process", "port_range") : IniLine(lines, "cloud:docker", "port_range"),
         process_set ? "cloud:process" : "cloud:docker", "port_range",
         FormatPortRange(process_set ? p : d) + " overlaps the port_range of " +
             (process_set ? "[cloud:docker] (" + FormatPortRange(d) + ")"
                          : "[cloud:process] (" + FormatPortRange(p) + ")")});
  }

  // TLS to etcd: all three files, or none; auth: user and password together.
  {
    const int tls_set = !config.etcd_ca_file.empty() + !config.etcd_cert_file.empty() + !config.etcd_key_file.empty();
    if (tls_set != 0 && tls_set != 3) {
      const char* missing = config.etcd_ca_file.empty()     ? "etcd_ca_file"
                            : config.etcd_cert_file.empty() ? "etcd_cert_file"
                                                            : "etcd_key_file";
      errors.push_back({0, "agent", missing,
                        "etcd_ca_file, etcd_cert_file and etcd_key_file are set together (all three, or none)"});
    }
    if (config.etcd_user.empty() != config.etcd_password_file.empty()) {
      const char* missing = config.etcd_user.empty() ? "etcd_user" : "etcd_password_file";
      errors.push_back({0, "agent", missing, "etcd_user and etcd_password_file are set together"});
    }
  }

  // The API beyond loopback: TLS, or plain HTTP only when asked for by name.
  {
    const bool cert = !config.tls_cert_file.empty(), key = !config.tls_key_file.empty();
    if (cert != key) {
      const char* missing = cert ? "tls_key_file" : "tls_cert_file";
      errors.push_back({0, "agent", missing, "tls_cert_file and tls_key_file are set together (both, or neither)"});
    } else if (cert && config.listen.IsUnix()) {
      errors.push_back({IniLine(lines, "agent", "tls_cert_file"), "agent", "tls_cert_file",
                        "TLS is for a host:port listen address; listen = " + config.listen.ToString() +
                            " is a unix socket, which its file mode (0600) already guards"});
    } else if (!cert && !config.insecure_listen && !config.listen.IsLoopback()) {
      errors.push_back({IniLine(lines, "agent", "listen"), "agent", "listen",
                        config.listen.ToString() +
                            " is not a loopback address: an API reachable from other hosts needs TLS "
                            "(set tls_cert_file and tls_key_file), or insecure_listen = true to serve "
                            "plain HTTP on a network you trust"});
    }
  }

  if (errors.empty()) return config;
  std::string msg;
  for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + path_for_messages + ": " + e.Format();
  return Status::InvalidArgument(msg);
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path, std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IOError(path, "read failed");
  return ParseAgentConfig(path, text.str());
}

std::string SerializeAgentConfig(const AgentConfig& config) {
  std::string out;
  std::string section;
  for (const auto& k : AgentKeys()) {
    if (k.section != section) {
      out += (section.empty() ? "[" : "\n[") + k.section + "]\n";
      section = k.section;
    }
    out += FormatIniEntry(k.key, k.format(config));
  }
  return out;
}

}  // namespace reactor
