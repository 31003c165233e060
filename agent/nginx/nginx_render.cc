#include "agent/nginx/nginx_render.h"

#include <arpa/inet.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <mstch/mstch.hpp>

#include "agent/metrics/log_format.h"
#include "agent/nginx/nginx_routes.h"

namespace reactor {
namespace {

bool AllOf(const std::string& s, const char* extra) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && std::string(extra).find(c) != std::string::npos);
    if (!ok) return false;
  }
  return true;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool IsHostName(const std::string& host) {
  if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') return false;
  return AllOf(host, ".-");
}

std::string BalanceKey(Balance b) {
  switch (b) {
    case Balance::kLeastConn: return "least_conn";
    case Balance::kIpHash: return "ip_hash";
    case Balance::kRoundRobin: break;
  }
  return "round_robin";
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path, "cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IOError(path, "read failed");
  return ss.str();
}

Status CheckInput(const NginxRenderInput& in) {
  REACTOR_RETURN_IF_ERROR(CheckFilePath("prefix", in.prefix));
  REACTOR_RETURN_IF_ERROR(CheckFilePath("access log", in.access_log));
  if (in.upstreams == NginxSettings::Upstreams::kDynamic) {
    REACTOR_RETURN_IF_ERROR(CheckFilePath("control socket", in.control_socket));
    if (in.control_socket.size() >= 100) {
      return Status::InvalidArgument("control socket path too long for a unix socket: " + in.control_socket);
    }
    REACTOR_RETURN_IF_ERROR(CheckFilePath("members file", in.members_file));
    REACTOR_RETURN_IF_ERROR(CheckFilePath("routes file", in.routes_file));
    if (in.mode == NginxSettings::Mode::kManaged) {
      REACTOR_RETURN_IF_ERROR(CheckFilePath("ndk module", in.ndk_module));
      REACTOR_RETURN_IF_ERROR(CheckFilePath("lua module", in.lua_module));
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckNginxEndpoint(const EndpointConfig& e) {
  REACTOR_RETURN_IF_ERROR(CheckEndpointName(e.name));
  auto ctx = [&](const Status& s) { return s.WithContext("endpoint " + e.name); };
  if (e.url.scheme != "http" && e.url.scheme != "https") {
    return ctx(Status::InvalidArgument("url scheme must be http or https, not '" + e.url.scheme + "'"));
  }
  if (e.url.port < 1 || e.url.port > 65535) {
    return ctx(Status::InvalidArgument("url port out of range: " + std::to_string(e.url.port)));
  }
  REACTOR_RETURN_IF_ERROR(ctx(CheckListenHost(e.url.host)));
  REACTOR_RETURN_IF_ERROR(ctx(CheckLocationPath(e.url.path)));
  if (e.lb.ssl_certificate.empty() != e.lb.ssl_key.empty()) {
    return ctx(Status::InvalidArgument("ssl_certificate and ssl_key must be set together"));
  }
  if (!e.lb.ssl_certificate.empty()) {
    REACTOR_RETURN_IF_ERROR(ctx(CheckFilePath("ssl_certificate", e.lb.ssl_certificate)));
    REACTOR_RETURN_IF_ERROR(ctx(CheckFilePath("ssl_key", e.lb.ssl_key)));
  }
  if (!e.lb.redirect.empty()) REACTOR_RETURN_IF_ERROR(ctx(CheckRedirectUrl(e.lb.redirect)));
  if (e.lb.keepalive < 0 || e.lb.keepalive > 100000) {
    return ctx(Status::InvalidArgument("keepalive out of range: " + std::to_string(e.lb.keepalive)));
  }
  // The lua router refuses a route outside these (reactor_balancer.lua's MAX_HOLD_MS, MAX_HELD).
  if (e.lb.hold_timeout < Duration(0) || e.lb.hold_timeout > Duration(600000)) {
    return ctx(
        Status::InvalidArgument("hold_timeout out of range: " + std::to_string(e.lb.hold_timeout.count()) + " ms"));
  }
  if (e.lb.hold_max < 0 || e.lb.hold_max > 100000) {
    return ctx(Status::InvalidArgument("hold_max out of range: " + std::to_string(e.lb.hold_max)));
  }
  switch (e.lb.balance) {
    case Balance::kRoundRobin:
    case Balance::kLeastConn:
    case Balance::kIpHash: break;
    default: return ctx(Status::InvalidArgument("unknown balance mode"));
  }
  return Status::Ok();
}

namespace {

std::string Unavailable(const EndpointConfig& e) {
  return e.lb.redirect.empty() ? "return 503;" : "return 301 " + e.lb.redirect + ";";
}

// Routed requests all go through the upstream "reactor_route", so
// $proxy_host no longer names the endpoint: route() sets
// $reactor_proxy_host to "reactor_<endpoint>" in its place (the metrics
// parser reads the same field).
std::string DynamicLogFormat() {
  std::string f = kLogFormat;
  const std::string var = "$proxy_host";
  size_t pos = f.find(var);
  if (pos != std::string::npos) f.replace(pos, var.size(), "$reactor_proxy_host");
  return f;
}

}  // namespace

std::string DefaultTemplateDir() {
  // An installed agent (the reactor package) uses its packaged templates.
  static const char* const kInstalled = "/usr/share/reactor/templates";
  std::error_code ec;
  if (std::filesystem::is_directory(kInstalled, ec)) return kInstalled;
#ifdef REACTOR_SOURCE_DIR
  return std::string(REACTOR_SOURCE_DIR) + "/templates";
#else
  return "/usr/share/reactor/templates";
#endif
}

Result<NginxTemplates> LoadNginxTemplates(const std::string& dir) {
  auto load = [&](const char* name, std::string* out) -> Status {
    if (!dir.empty()) {
      Result<std::string> r = ReadFile(dir + "/" + name);
      if (r.ok()) {
        *out = std::move(r).value();
        return Status::Ok();
      }
    }
    Result<std::string> r = ReadFile(DefaultTemplateDir() + "/" + name);
    if (!r.ok()) return r.status();
    *out = std::move(r).value();
    return Status::Ok();
  };
  NginxTemplates t;
  REACTOR_RETURN_IF_ERROR(load("nginx.conf.mustache", &t.main_conf));
  REACTOR_RETURN_IF_ERROR(load("sites.conf.mustache", &t.sites_conf));
  REACTOR_RETURN_IF_ERROR(load("reactor_balancer.lua", &t.balancer_lua));
  return t;
}

Status CheckEndpointName(const std::string& name) {
  if (name.empty() || name.size() > 63 || !AllOf(name.substr(0, 1), "") || !AllOf(name, "_-")) {
    return Status::InvalidArgument("endpoint name must match [a-z0-9][a-z0-9_-]{0,62}: '" + name + "'");
  }
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') {
      return Status::InvalidArgument("endpoint name must match [a-z0-9][a-z0-9_-]{0,62}: '" + name + "'");
    }
  }
  return Status::Ok();
}

Status CheckListenHost(const std::string& host) {
  if (host.empty()) return Status::Ok();
  std::string bare = host;
  if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
  if (IsIpLiteral(bare) || IsHostName(bare)) return Status::Ok();
  return Status::InvalidArgument("url host is not an address or host name: '" + host + "'");
}

Status CheckLocationPath(const std::string& path) {
  if (path.empty() || path.front() != '/' || path.size() > 1024 || !AllOf(path, "/._~%+:@!,=-")) {
    return Status::InvalidArgument("url path has characters nginx would interpret: '" + path + "'");
  }
  return Status::Ok();
}

Status CheckFilePath(const std::string& what, const std::string& path) {
  if (path.empty() || path.front() != '/' || path.size() > 4096 || !AllOf(path, "/._+-") ||
      path.find("/../") != std::string::npos) {
    return Status::InvalidArgument(what + " must be an absolute path of [A-Za-z0-9/._+-]: '" + path + "'");
  }
  return Status::Ok();
}

Status CheckRedirectUrl(const std::string& url) {
  bool scheme = url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
  if (!scheme || url.size() > 2048 || url.size() <= 8 || !AllOf(url, "._~:/?[]@!&*+,=%-")) {
    return Status::InvalidArgument(
        "redirect must be an http(s) URL without quotes, spaces, ';', '$', '#' or braces: '" + url + "'");
  }
  return Status::Ok();
}

Status CheckMember(const Member& m, bool allow_names) {
  auto bad = [&](const std::string& why) { return Status::InvalidArgument("member '" + m.address + "': " + why); };
  size_t colon = m.address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == m.address.size()) return bad("expected host:port");
  std::string host = m.address.substr(0, colon);
  std::string port = m.address.substr(colon + 1);
  if (port.size() > 5 || !AllOf(port, "") || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return bad("port must be 1..65535");
  }
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) return bad("malformed [IPv6] address");
    unsigned char buf[16];
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) != 1) return bad("not an IPv6 address");
  } else if (!IsIpLiteral(host) || host.find(':') != std::string::npos) {
    if (!allow_names || !IsHostName(host)) {
      return bad(allow_names ? "not an address or host name"
                             : "must be an IP literal (the lua balancer cannot resolve names)");
    }
  }
  if (m.weight < 1 || m.weight > 1000) return bad("weight must be 1..1000");
  return Status::Ok();
}

Result<std::map<std::string, std::string>> RenderNginxConfig(const NginxTemplates& templates,
                                                             const NginxRenderInput& in) {
  REACTOR_RETURN_IF_ERROR(CheckInput(in));
  const bool dynamic = in.upstreams == NginxSettings::Upstreams::kDynamic;

  std::vector<const EndpointConfig*> endpoints;
  std::set<std::string> names;
  for (const EndpointConfig& e : in.endpoints) {
    REACTOR_RETURN_IF_ERROR(CheckNginxEndpoint(e));
    if (!names.insert(e.name).second) return Status::InvalidArgument("duplicate endpoint name: " + e.name);
    endpoints.push_back(&e);
  }
  std::sort(endpoints.begin(), endpoints.end(),
            [](const EndpointConfig* a, const EndpointConfig* b) { return a->name < b->name; });

  // Upstreams, one per endpoint that has somewhere to send traffic.
  std::set<std::string> serving;
  mstch::array upstreams;
  // Dynamic upstreams: nothing per endpoint (routes and members are pushed).
  for (const EndpointConfig* e : dynamic ? std::vector<const EndpointConfig*>{} : endpoints) {
    const std::string upstream = kUpstreamPrefix + e->name;
    mstch::array members;
    if (!dynamic) {
      auto it = in.members.find(e->name);
      if (it != in.members.end()) {
        std::vector<Member> sorted = it->second;
        std::sort(sorted.begin(), sorted.end(), [](const Member& a, const Member& b) {
          return a.address != b.address ? a.address < b.address : a.weight < b.weight;
        });
        for (const Member& m : sorted) {
          REACTOR_RETURN_IF_ERROR(CheckMember(m, true).WithContext("endpoint " + e->name));
          members.push_back(mstch::map{{"address", m.address}, {"weight", std::to_string(m.weight)}});
        }
      }
      if (members.empty()) continue;  // never an empty upstream: the location answers 503/redirect
    }
    serving.insert(e->name);
    upstreams.push_back(mstch::map{
        {"upstream", upstream},
        {"endpoint", e->name},
        {"balance", BalanceKey(e->lb.balance)},
        {"least_conn", e->lb.balance == Balance::kLeastConn},
        {"ip_hash", e->lb.balance == Balance::kIpHash},
        {"members", members},
        {"has_keepalive", e->lb.keepalive > 0},
        {"keepalive", std::to_string(e->lb.keepalive)},
    });
  }

  // Servers: endpoints sharing host:port share one server, one location per path.
  std::map<std::string, std::vector<const EndpointConfig*>> by_listen;
  for (const EndpointConfig* e : endpoints) by_listen[NginxListen(e->url)].push_back(e);
  mstch::array servers;
  for (auto& [listen, group] : by_listen) {
    std::sort(group.begin(), group.end(), [](const EndpointConfig* a, const EndpointConfig* b) {
      return a->url.path != b->url.path ? a->url.path < b->url.path : a->name < b->name;
    });
    const EndpointConfig* first = group.front();
    bool ssl = !first->lb.ssl_certificate.empty();
    bool has_root = false;
    mstch::array locations;
    for (size_t i = 0; i < group.size(); ++i) {
      const EndpointConfig* e = group[i];
      if (i > 0 && e->url.path == group[i - 1]->url.path) {
        return Status::InvalidArgument("endpoints " + group[i - 1]->name + " and " + e->name + " both serve " + listen +
                                       e->url.path);
      }
      if (e->lb.ssl_certificate != first->lb.ssl_certificate || e->lb.ssl_key != first->lb.ssl_key) {
        return Status::InvalidArgument("endpoints " + first->name + " and " + e->name + " share " + listen +
                                       " but not its TLS certificate and key");
      }
      if (e->url.path == "/") has_root = true;
      if (dynamic) continue;
      locations.push_back(mstch::map{
          {"endpoint", e->name},
          {"upstream", std::string(kUpstreamPrefix) + e->name},
          {"path", e->url.path},
          {"access_log", in.access_log},
          {"serving", serving.count(e->name) > 0},
          {"unavailable", Unavailable(*e)},
          {"has_keepalive", e->lb.keepalive > 0},
      });
    }
    // A server on one address also routes what the port's any-address
    // routes serve ("exact host match first").
    mstch::map server{
        {"listen", listen},
        {"ssl", ssl},
        {"ssl_certificate", first->lb.ssl_certificate},
        {"ssl_key", first->lb.ssl_key},
        {"locations", locations},
        {"has_root", has_root},
        {"access_log", in.access_log},
    };
    if (!first->url.host.empty()) server["any"] = std::to_string(first->url.port);
    servers.push_back(std::move(server));
  }

  mstch::map context{
      {"dynamic", dynamic},
      {"prefix", in.prefix},
      {"log_format", dynamic ? DynamicLogFormat() : std::string(kLogFormat)},
      {"balancer_lua", templates.balancer_lua},
      {"members_file", in.members_file},
      {"routes_file", in.routes_file},
      {"control_socket", in.control_socket},
      {"ndk_module", in.ndk_module},
      {"lua_module", in.lua_module},
      {"upstreams", upstreams},
      {"servers", servers},
  };
  std::map<std::string, std::string> files;
  try {
    std::string sites = mstch::render(templates.sites_conf, context);
    if (in.mode == NginxSettings::Mode::kManaged) {
      files[kMainConfFile] = mstch::render(templates.main_conf, context);
      files[kSitesConfFile] = std::move(sites);
    } else {
      files[kSystemConfFile] = std::move(sites);
    }
  } catch (const std::exception& ex) {
    return Status::InvalidArgument(std::string("template: ") + ex.what());
  }
  return files;
}

}  // namespace reactor
