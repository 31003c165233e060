// Renders the nginx configuration reactor owns from mustache templates
// (templates/ or [nginx] template_dir). Pure: templates and inputs in, file
// contents out; loading templates from disk is the only side effect here and
// it is a separate call.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "agent/common/status.h"
#include "agent/endpoint/endpoint_config.h"
#include "agent/nginx/nginx_controller.h"

namespace reactor {

/// The template texts a rendering needs.
struct NginxTemplates {
  std::string main_conf;     // nginx.conf.mustache (managed mode only)
  std::string sites_conf;    // sites.conf.mustache (the http-level part)
  std::string balancer_lua;  // reactor_balancer.lua (dynamic upstreams)
  bool operator==(const NginxTemplates& o) const {
    return main_conf == o.main_conf && sites_conf == o.sites_conf && balancer_lua == o.balancer_lua;
  }
};

/// The built-in template directory: /usr/share/reactor/templates when the
/// package installed it, else the source tree's templates/.
std::string DefaultTemplateDir();

/// Reads nginx.conf.mustache, sites.conf.mustache and reactor_balancer.lua
/// from `dir`; a file missing there is taken from DefaultTemplateDir().
Result<NginxTemplates> LoadNginxTemplates(const std::string& dir);

/// Everything a rendering depends on besides the templates.
struct NginxRenderInput {
  NginxSettings::Mode mode = NginxSettings::Mode::kManaged;
  NginxSettings::Upstreams upstreams = NginxSettings::Upstreams::kDynamic;
  std::string prefix;          // absolute; pid, logs and temp paths live under it
  std::string access_log;      // absolute path of the access log
  std::string control_socket;  // absolute path of the control unix socket
  std::string members_file;    // absolute path of the persisted member lists
  std::string routes_file;     // absolute path of the persisted route tables
  std::string ndk_module = "/usr/lib/nginx/modules/ndk_http_module.so";
  std::string lua_module = "/usr/lib/nginx/modules/ngx_http_lua_module.so";
  std::vector<EndpointConfig> endpoints;
  /// Members per endpoint; rendered as server lines in reload mode only.
  std::map<std::string, std::vector<Member>> members;
};

/// File names in a rendering.
inline constexpr const char* kMainConfFile = "nginx.conf";
inline constexpr const char* kSitesConfFile = "sites.conf";
inline constexpr const char* kSystemConfFile = "reactor.conf";

/// Renders the files of one configuration tree. Dynamic upstreams: one
/// server per listen key and TLS files, routed in lua (nginx_routes.h), so
/// only the set of listen keys and certificates shapes the output; reload
/// mode: a location and an upstream per endpoint.: managed mode gives
/// {nginx.conf, sites.conf} (nginx.conf includes sites.conf by a relative
/// path, so a tree can be tested where it is written); system mode gives
/// {reactor.conf}, the http-level part for conf_dir. Deterministic: equal
/// inputs give byte-identical output. InvalidArgument when any value that
/// would reach the config fails its whitelist (nothing is rendered then), or
/// endpoints conflict (same name, same host:port and path, TLS disagreeing on
/// a shared host:port).
Result<std::map<std::string, std::string>> RenderNginxConfig(const NginxTemplates& templates,
                                                             const NginxRenderInput& input);

/// Whitelist checks for values that reach an nginx config. Each returns
/// InvalidArgument naming `what` when the value is unsafe.
Status CheckEndpointName(const std::string& name);
/// Every value of `e` that reaches nginx (config or lua routes).
Status CheckNginxEndpoint(const EndpointConfig& e);
Status CheckListenHost(const std::string& host);
Status CheckLocationPath(const std::string& path);
Status CheckFilePath(const std::string& what, const std::string& path);
Status CheckRedirectUrl(const std::string& url);
/// A member address: IPv4 or [IPv6] literal (or a host name when
/// `allow_names`) with a port, and a weight in 1..1000.
Status CheckMember(const Member& member, bool allow_names);

}  // namespace reactor
