#!/usr/bin/env bash
# Installs everything reactor needs to build, test and run on Debian 12 (bookworm).
# Idempotent; needs root (or sudo). Usage: packaging/install-deps.sh [--runtime-only]
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang-14 libclang-rt-14-dev clang-format-14 clang-tidy-14
  libcurl4-openssl-dev nlohmann-json3-dev tao-pegtl-dev
  libboost-dev libboost-filesystem-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev libcli11-dev libinih-dev libmstch-dev
  libsqlite3-dev libsystemd-dev libhttp-parser-dev libssl-dev
)
runtime_pkgs=(
  nginx libnginx-mod-http-lua curl
  docker.io busybox-static etcd-server etcd-client wrk
  python3 procps iproute2 dpkg-dev file logrotate openssl
  shellcheck systemd
  libjs-chart.js prometheus chromium chromium-driver python3-selenium
)

pkgs=("${runtime_pkgs[@]}")
[[ ${1:-} == --runtime-only ]] || pkgs+=("${build_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

SUDO=
[[ $(id -u) -eq 0 ]] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# Do not let package scripts start services (nginx, docker, etcd) on install:
# reactor runs its own nginx, and the tests start dockerd and etcd themselves.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  created_policy=1
fi
cleanup() { ((created_policy)) && $SUDO rm -f "$policy"; true; }
trap cleanup EXIT

echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
