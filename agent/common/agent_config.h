// The agent's own configuration, agent.conf (SPEC.md §3), and the INI reader
// that agent.conf and endpoint files (agent/endpoint/endpoint_parser.h) share.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/common/clock.h"
#include "agent/common/status.h"
#include "agent/common/units.h"
#include "agent/nginx/nginx_controller.h"

namespace reactor {

// ---------------------------------------------------------------------------
// INI text.
//
// The syntax is inih's (libinih, as Debian builds it): `[section]` headers;
// `key = value`; whole-line comments starting with ';' or '#'; inline
// comments starting with a ';' that follows whitespace (so
// `rules = 5 < rate < 20; response < 800ms` keeps its ';' while
// `url = http://:8080/   ; where nginx listens` loses the comment); an
// indented line after a key continues that key's value on a new line.
//
// Why not inih's own parser: Debian's libinih is compiled with a fixed
// 200-byte line buffer on the stack (INI_MAX_LINE=200, INI_USE_STACK=1) and
// silently truncates longer lines — a long `command` or `environment` would
// lose its tail without an error — and with INI_HANDLER_LINENO=0, so the
// handler gets no line numbers, which every message must carry (SPEC.md §3).
// The syntax is small enough that a reader with the same rules is shorter
// than the workarounds.

/// One `key = value`. Continuation lines are joined with '\n'; every line is
/// trimmed and empty lines are dropped, so the value is in canonical form.
struct IniEntry {
  std::string section;
  std::string key;
  std::string value;
  int line = 0;  // 1-based; 0 when the entry did not come from a text
};

/// A problem found in an INI text, located as precisely as known.
struct IniError {
  int line = 0;         // 0 = not tied to a line
  std::string section;  // "" = not tied to a section
  std::string key;      // "" = not tied to a key
  std::string why;
  /// "line 7: [scaling] max_instances: why", leaving out what is unknown.
  std::string Format() const;
};

struct IniSectionHeader {
  std::string name;
  int line = 0;
};

/// A parsed INI text, before any meaning is given to its keys.
struct IniDocument {
  std::vector<IniSectionHeader> sections;  // every header, in file order (repeats included)
  std::vector<IniEntry> entries;           // in file order (duplicates included)
  std::vector<IniError> errors;            // syntax errors
};

/// Splits `text` into sections and entries. Never fails: syntax errors are
/// collected in `errors`, and the rest of the text is still read.
IniDocument ParseIniText(std::string_view text);

/// Puts a value into canonical form: each line trimmed, empty lines dropped.
std::string CanonicalIniValue(std::string_view value);

/// Why `value` (canonical) cannot be written back as an INI value so that
/// ParseIniText reads the same text, or "" if it can: a ';' after
/// whitespace would start a comment, a continuation line starting with
/// ';' or '#' would be a comment, a NUL cannot be stored.
std::string IniValueProblem(std::string_view value);

/// Renders `key = value`, continuation lines indented by four spaces.
std::string FormatIniEntry(const std::string& key, const std::string& value);

/// One key of a config file: how to read its value into a Config and how
/// to write it back. `parse` returns "" or why the value is wrong.
template <typename Config>
struct IniKey {
  std::string section;
  std::string key;
  std::function<std::string(const std::string& value, Config* config)> parse;
  std::function<std::string(const Config& config)> format;
};

/// Where each key was set: "section" + '\n' + "key" → line (0 = not from text).
using IniKeyLines = std::map<std::string, int>;
inline std::string IniKeyId(const std::string& section, const std::string& key) { return section + "\n" + key; }

/// Applies `doc` to `config` through `keys`: every syntax error, unknown
/// section, unknown or duplicate key, unwritable value and bad value is
/// returned (all of them, in file order); keys not in `doc` keep their value.
template <typename Config>
std::vector<IniError> ApplyIni(const IniDocument& doc, const std::vector<IniKey<Config>>& keys, Config* config,
                               IniKeyLines* lines) {
  std::vector<IniError> errors = doc.errors;
  std::vector<std::string> known_sections;
  for (const auto& k : keys) {
    if (std::find(known_sections.begin(), known_sections.end(), k.section) == known_sections.end()) {
      known_sections.push_back(k.section);
    }
  }
  auto known_section = [&](const std::string& s) {
    return std::find(known_sections.begin(), known_sections.end(), s) != known_sections.end();
  };
  std::vector<std::string> reported;
  for (const auto& h : doc.sections) {
    if (known_section(h.name) || std::find(reported.begin(), reported.end(), h.name) != reported.end()) continue;
    reported.push_back(h.name);
    std::string list;
    for (const auto& s : known_sections) list += (list.empty() ? "[" : ", [") + s + "]";
    errors.push_back({h.line, h.name, "", "unknown section (expected one of " + list + ")"});
  }
  for (const auto& e : doc.entries) {
    if (!known_section(e.section)) continue;  // reported once, above
    auto def = std::find_if(keys.begin(), keys.end(),
                            [&](const IniKey<Config>& k) { return k.section == e.section && k.key == e.key; });
    if (def == keys.end()) {
      errors.push_back({e.line, e.section, e.key, "unknown key"});
      continue;
    }
    auto [it, inserted] = lines->emplace(IniKeyId(e.section, e.key), e.line);
    if (!inserted) {
      errors.push_back(
          {e.line, e.section, e.key,
           it->second > 0 ? "duplicate key (first set on line " + std::to_string(it->second) + ")" : "duplicate key"});
      continue;
    }
    std::string why = IniValueProblem(e.value);
    if (why.empty()) why = def->parse(e.value, config);
    if (!why.empty()) errors.push_back({e.line, e.section, e.key, why});
  }
  return errors;
}

/// The line where `section`/`key` was set, or 0.
inline int IniLine(const IniKeyLines& lines, const std::string& section, const std::string& key) {
  auto it = lines.find(IniKeyId(section, key));
  return it == lines.end() ? 0 : it->second;
}

// ---------------------------------------------------------------------------
// agent.conf.

/// Every key of agent.conf, with SPEC.md §3's defaults. The nested types
/// are named inside AgentConfig so they cannot clash with the drivers' own
/// settings structs (e.g. ProcessCloudSettings in agent/cloud/).
struct AgentConfig {
  /// `listen`: "host:port" (IPv4, hostname or [IPv6]) or "unix:/absolute/path".
  struct Listen {
    std::string unix_path;  // set iff a unix socket
    std::string host;       // e.g. "127.0.0.1", "[::1]"
    int port = 0;
    bool IsUnix() const { return !unix_path.empty(); }
    /// The form it was written in: "127.0.0.1:7070" or "unix:/run/reactor.sock".
    std::string ToString() const { return IsUnix() ? "unix:" + unix_path : host + ":" + std::to_string(port); }
    /// True iff only this host can connect: a unix socket, an address in
    /// 127.0.0.0/8, ::1 (also as ::ffff:127.x.x.x), or the name "localhost"
    /// (which resolvers keep on loopback, RFC 6761). Any other name counts
    /// as reachable from elsewhere.
    bool IsLoopback() const;
  };

  /// `state`: "sqlite:/absolute/path.db" or "etcd://h1:2379,h2:2379".
  struct State {
    enum class Kind { kSqlite, kEtcd };
    Kind kind = Kind::kSqlite;
    std::string sqlite_path;                  // kSqlite
    std::vector<std::string> etcd_endpoints;  // kEtcd: "host:port" each
    std::string ToString() const;
  };

  /// [cloud:docker]
  struct DockerCloud {
    enum class Network { kBridge, kHost };
    std::string socket = "/var/run/docker.sock";
    Network network = Network::kBridge;
    std::string host_ip = "127.0.0.1";
    PortRange port_range{20000, 29999};
  };

  /// [cloud:process]
  struct ProcessCloud {
    PortRange port_range{30000, 39999};
    std::string log_dir = "/var/log/reactor/instances";
  };

  // [agent]
  std::string name;  // default: this host's name (gethostname)
  Listen listen{"", "127.0.0.1", 7070};
  std::string token_file = "/etc/reactor/token";
  State state{State::Kind::kSqlite, "/var/lib/reactor/state.db", {}};
  /// Local files the agent owns besides the store; the process cloud keeps
  /// its instance records under <state_dir>/instances.
  std::string state_dir = "/var/lib/reactor";
  std::string endpoints_dir;  // empty = no declarative endpoints
  Duration interval{1000};
  int slots = 1000;
  /// Where other hosts reach this host's nginx and instances; empty = the
  /// loopback address (a cluster of one on SQLite).
  std::string address;
  /// This host's lease in the store: it is gone once the lease expires.
  Duration lease_ttl{5000};
  bool metrics_without_token = false;  // GET /metrics needs no token
  /// The API over TLS: a PEM certificate (chain, leaf first) and its PEM
  /// private key, both or neither; TCP listen addresses only. Without them a
  /// `listen` that is not loopback is refused unless insecure_listen.
  std::string tls_cert_file;
  std::string tls_key_file;
  bool insecure_listen = false;  // plain HTTP beyond loopback, by choice
  std::string ui_dir;            // the dashboard's files; empty = /usr/share/reactor/ui
  /// TLS to etcd (all three, or none) and etcd auth (user and password file
  /// together). Empty = off.
  std::string etcd_ca_file;
  std::string etcd_cert_file;
  std::string etcd_key_file;
  std::string etcd_user;
  std::string etcd_password_file;
  /// History the agents keep in etcd; older revisions are compacted
  /// (`etcd_compaction = 5m`; 0 or off: none, e.g. when etcd runs with its
  /// own --auto-compaction-retention).
  Duration etcd_compaction{5 * 60 * 1000};
  /// Rotating state backups (agent/backup/); empty backup_dir = off.
  std::string backup_dir;
  int backup_hours_to_keep = 24;
  int backup_days_to_keep = 14;
  int backup_weeks_to_keep = 4;
  int backup_months_to_keep = 3;
  // [nginx]
  NginxSettings nginx;
  // [cloud:docker], [cloud:process]
  DockerCloud docker;
  ProcessCloud process;
};

/// The defaults, with `name` set to this host's name.
AgentConfig DefaultAgentConfig();

/// Parses agent.conf text; keys not given keep their defaults. Unknown
/// sections or keys, duplicate keys, bad values and out-of-range numbers give
/// InvalidArgument listing every problem, one a line, each as
/// "FILE: line N: [section] key: why" (FILE = `path_for_messages`).
Result<AgentConfig> ParseAgentConfig(const std::string& path_for_messages, const std::string& text);

/// Reads and parses `path`. A file that cannot be read → IOError naming it.
Result<AgentConfig> LoadAgentConfig(const std::string& path);

/// Canonical agent.conf text with every key (round-trips through ParseAgentConfig).
std::string SerializeAgentConfig(const AgentConfig& config);

// Validators shared with the endpoint parser. Each returns "" when `s` is
// acceptable, else why not (without the key's name).
std::string CheckAbsolutePath(std::string_view s);  // starts with '/', [A-Za-z0-9._/-] only, no ".."
std::string CheckHostName(std::string_view s);      // RFC 1123 name, or IPv4 dotted quad
std::string CheckIpAddress(std::string_view s);     // IPv4 or IPv6 literal (no brackets)
/// "host:port", host = IPv4, hostname or [IPv6]; port 1-65535.
std::string ParseHostPortText(std::string_view s, std::string* host, int* port);

}  // namespace reactor
