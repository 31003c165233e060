#include "agent/nginx/nginx_routes.h"

#include <algorithm>

#include "agent/nginx/nginx_render.h"

namespace reactor {

std::string NginxListen(const EndpointUrl& url) {
  std::string port = std::to_string(url.port);
  if (url.host.empty()) return port;
  if (url.host.find(':') != std::string::npos && url.host.front() != '[') return "[" + url.host + "]:" + port;
  return url.host + ":" + port;
}

std::string ServerKey(const EndpointConfig& e) {
  return NginxListen(e.url) + " " + e.lb.ssl_certificate + " " + e.lb.ssl_key;
}

RouteTables BuildRouteTables(const std::vector<EndpointConfig>& endpoints) {
  RouteTables tables;
  for (const EndpointConfig& e : endpoints) {
    Route r{e.name, e.url.path, e.lb.balance, e.lb.keepalive, e.lb.redirect};
    // Only an endpoint that can launch an instance holds requests (SPEC §7);
    // the caller turns the hold off for one that may not scale now (stopped,
    // paused: ServedConfig).
    if (e.cloud != CloudKind::kStatic && e.scaling.max_instances >= 1 && e.lb.hold_max >= 1) {
      r.hold_ms = e.lb.hold_timeout.count();
      r.hold_max = e.lb.hold_max;
    }
    tables[NginxListen(e.url)].push_back(std::move(r));
  }
  for (auto& [listen, routes] : tables) {
    std::sort(routes.begin(), routes.end(), [](const Route& a, const Route& b) {
      return a.path != b.path ? a.path < b.path : a.endpoint < b.endpoint;
    });
  }
  return tables;
}

namespace {

void AppendRoutes(const std::vector<Route>& routes, std::string* out) {
  for (const Route& r : routes) {
    *out += r.endpoint;
    *out += ' ';
    *out += r.path;
    *out += ' ';
    *out += BalanceName(r.balance);
    *out += ' ';
    *out += std::to_string(r.keepalive);
    *out += ' ';
    *out += r.redirect.empty() ? "-" : r.redirect;
    if (r.hold_ms > 0) {
      *out += ' ';
      *out += std::to_string(r.hold_ms);
      *out += ' ';
      *out += std::to_string(r.hold_max);
    }
    *out += '\n';
  }
}

}  // namespace

std::string EncodeRouteTable(const std::string& listen, const std::vector<Route>& routes) {
  std::string out = listen + "\n";
  AppendRoutes(routes, &out);
  return out;
}

std::string EncodeRoutesFile(const RouteTables& tables) {
  std::string out;
  for (const auto& [listen, routes] : tables) {
    out += "server " + listen + "\n";
    AppendRoutes(routes, &out);
  }
  return out;
}

Admission AdmitEndpoints(const std::vector<EndpointConfig>& wanted,
                         const std::map<std::string, EndpointConfig>& current,
                         const std::map<std::string, RefusedEndpoint>& refused) {
  // Endpoints nginx serves now go first (by name), newcomers after (by name).
  std::vector<const EndpointConfig*> order;
  for (const EndpointConfig& e : wanted) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [&](const EndpointConfig* a, const EndpointConfig* b) {
    const bool ca = current.count(a->name) > 0, cb = current.count(b->name) > 0;
    if (ca != cb) return ca;
    return a->name < b->name;
  });

  Admission out;
  std::set<std::string> names;
  std::map<std::string, std::string> path_owner;     // listen + path -> endpoint
  std::map<std::string, const EndpointConfig*> tls;  // listen -> first endpoint there
  auto why_not = [&](const EndpointConfig& e) -> std::string {
    // What nginx serves now passed these checks (at 1,000 endpoints they
    // were most of an admission): only a changed config is checked again.
    auto served = current.find(e.name);
    if (served == current.end() || served->second != e) {
      Status s = CheckNginxEndpoint(e);
      if (!s.ok()) return s.message();
    }
    auto r = refused.find(e.name);
    if (r != refused.end() && r->second.config == e) return r->second.why;
    const std::string listen = NginxListen(e.url);
    auto owner = path_owner.find(listen + e.url.path);
    if (owner != path_owner.end()) {
      return "endpoint " + owner->second + " already serves " + listen + e.url.path;
    }
    auto first = tls.find(listen);
    if (first != tls.end() &&
        (first->second->lb.ssl_certificate != e.lb.ssl_certificate || first->second->lb.ssl_key != e.lb.ssl_key)) {
      return "endpoint " + first->second->name + " shares " + listen + " with other TLS certificate and key files";
    }
    return "";
  };
  // Admitted configs are referred to by pointer until the end: reserve.
  out.admitted.reserve(wanted.size());
  for (const EndpointConfig* e : order) {
    if (!names.insert(e->name).second) {
      out.held_back[e->name] = "a second endpoint named " + e->name;
      continue;
    }
    const EndpointConfig* take = e;
    std::string why = why_not(*e);
    if (!why.empty()) {
      auto cur = current.find(e->name);
      if (cur != current.end() && cur->second != *e && why_not(cur->second).empty()) {
        take = &cur->second;
        out.held_back[e->name] = why + " (its previous configuration keeps serving)";
      } else {
        out.held_back[e->name] = why;
        continue;
      }
    }
    out.admitted.push_back(*take);
    const EndpointConfig& a = out.admitted.back();
    const std::string listen = NginxListen(a.url);
    path_owner[listen + a.url.path] = a.name;
    tls.emplace(listen, &a);
  }
  return out;
}

}  // namespace reactor
