# Installation layout and the Debian package (CPack).
#
#   cmake --build build && cpack -G DEB --config build/CPackConfig.cmake -B OUT
#   (or `cpack -G DEB` in the build directory)
#
# Package `reactor`:
#   /usr/bin/reactor, /usr/sbin/reactor-agent
#   /etc/reactor/agent.conf             conffile, every key commented with its default
#   /etc/reactor/endpoints/             empty; for `endpoints_dir` (off by default)
#   /usr/share/reactor/templates/       nginx templates (the agent's default template_dir)
#   /usr/share/reactor/ui/              the dashboard's files (the agent's default ui_dir)
#   /usr/share/doc/reactor/grafana-dashboard.json   a Grafana dashboard of /metrics
#   /usr/share/doc/reactor/examples/endpoints/*.conf   example endpoint files
#   /lib/systemd/system/reactor-agent.service, /etc/init.d/reactor-agent (conffile)
#   /etc/logrotate.d/reactor            conffile
# The maintainer scripts (packaging/debian/) create /var/lib/reactor,
# /var/log/reactor and the API token, and enable and start the service.
#
# Installing does not build: build the binaries first (so cpack packages
# exactly the binaries that were built and tested, and never runs a build of
# its own in a tree that tests are using).

set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(REACTOR_PKG_DIR ${CMAKE_SOURCE_DIR}/packaging)

install(TARGETS reactor RUNTIME DESTINATION bin)
install(TARGETS reactor-agent RUNTIME DESTINATION sbin)
install(FILES ${REACTOR_PKG_DIR}/agent.conf DESTINATION /etc/reactor)
install(DIRECTORY DESTINATION /etc/reactor/endpoints)
install(FILES
  ${CMAKE_SOURCE_DIR}/templates/nginx.conf.mustache
  ${CMAKE_SOURCE_DIR}/templates/sites.conf.mustache
  ${CMAKE_SOURCE_DIR}/templates/reactor_balancer.lua
  DESTINATION share/reactor/templates)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/ui/ DESTINATION share/reactor/ui)
install(FILES ${REACTOR_PKG_DIR}/grafana-dashboard.json DESTINATION share/doc/reactor)
install(FILES
  ${CMAKE_SOURCE_DIR}/endpoints/process.conf
  ${CMAKE_SOURCE_DIR}/endpoints/docker.conf
  ${CMAKE_SOURCE_DIR}/endpoints/static.conf
  DESTINATION share/doc/reactor/examples/endpoints)
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION share/doc/reactor)
install(FILES ${REACTOR_PKG_DIR}/reactor-agent.service DESTINATION /lib/systemd/system)
install(PROGRAMS ${REACTOR_PKG_DIR}/reactor-agent.init DESTINATION /etc/init.d RENAME reactor-agent)
install(FILES ${REACTOR_PKG_DIR}/reactor.logrotate DESTINATION /etc/logrotate.d RENAME reactor)

set(CPACK_PACKAGE_NAME reactor)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "reactor maintainers <maintainers@reactor.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "autoscaling agent: nginx in front of an application, instances scaled by rules")
# The synopsis line is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the rest.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "reactor-agent puts nginx in front of an application, runs its instances\n\
(local processes, Docker containers or fixed addresses), health-checks them\n\
and scales them by rules such as `0.25 < rate < 20`. The reactor command\n\
manages endpoints through the agent's REST API.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The shared libraries come from dpkg-shlibdeps (dpkg-dev); the rest is what
# the agent runs: nginx, and the lua module for dynamic upstreams.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libjs-chart.js: the dashboard's charts, served from /usr/share/javascript.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "nginx, libnginx-mod-http-lua, libjs-chart.js")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "docker.io, etcd-server")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${REACTOR_PKG_DIR}/debian/conffiles
  ${REACTOR_PKG_DIR}/debian/postinst
  ${REACTOR_PKG_DIR}/debian/prerm
  ${REACTOR_PKG_DIR}/debian/postrm)
# 0755 scripts and 0644 conffiles, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)

include(CPack)
