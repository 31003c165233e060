#!/usr/bin/env bash
# Builds reactor and runs a demo on the embedded defaults: SQLite store, an
# agent-managed nginx, and endpoints/process.conf (python3 http.server
# instances) served on http://127.0.0.1:8080/. Everything lives under
# $REACTOR_DEMO_DIR (default /tmp/reactor-demo); nothing is installed.
#
#   packaging/demo.sh          build, start the agent, manage the example endpoint
#   packaging/demo.sh stop     stop the agent, its nginx and its instances
#
# Cluster mode (root; iproute2 and etcd-server): three hosts h1..h3 in
# network namespaces on this machine, a 3-member etcd in namespaces of its
# own, all on a bridge with no uplink, addressed from 198.18.0.0/15 (no
# packet leaves the machine); one agent per host with its own nginx; the
# example endpoint managed across them. State under $REACTOR_DEMO_DIR-cluster.
#
#   packaging/demo.sh cluster              build, start the cluster, manage the endpoint
#   packaging/demo.sh cluster revive h1    start a killed host's agent again
#   packaging/demo.sh cluster stop         stop everything, remove the namespaces
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
DEMO=${REACTOR_DEMO_DIR:-/tmp/reactor-demo}
API=127.0.0.1:7070

stop_pid() {  # stop_pid PID SIGNAL: signals one recorded pid (and its group) and waits, bounded
  local pid=$1 sig=$2
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

if [[ ${1:-} == stop ]]; then
  [[ -f $DEMO/agent.pid ]] && stop_pid "$(cat "$DEMO/agent.pid")" TERM
  [[ -f $DEMO/nginx/logs/nginx.pid ]] && stop_pid "$(cat "$DEMO/nginx/logs/nginx.pid")" QUIT
  for rec in "$DEMO"/state/instances/*.json; do
    [[ -f $rec ]] || continue
    stop_pid "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$rec")" TERM
  done
  rm -f "$DEMO/agent.pid"
  echo "demo stopped (state kept in $DEMO)"
  exit 0
fi

# -- cluster mode -------------------------------------------------------------
CDEMO=${REACTOR_DEMO_DIR:-/tmp/reactor-demo}-cluster
NS=rdemo             # namespaces rdemo-br (the bridge), rdemo-h1..3, rdemo-e1..3
HOSTS=(h1 h2 h3)
ETCDS=(e1 e2 e3)
addr_of() { case $1 in h*) echo "198.18.0.1${1#h}" ;; e*) echo "198.18.0.2${1#e}" ;; esac; }
ETCD_URL="etcd://$(addr_of e1):2379,$(addr_of e2):2379,$(addr_of e3):2379"

cluster_cli() {  # cluster_cli HOST ARGS...: the reactor CLI inside HOST's namespace
  local h=$1; shift
  ip netns exec "$NS-$h" "$SRC/build/bin/reactor" --api 127.0.0.1:7070 --token-file "$CDEMO/$h/token" "$@"
}

ns_stop() {  # ns_stop NS: TERM, then KILL, every process in one namespace (by pid), then the namespace
  local ns=$1 pids
  ip netns list | grep -q "^$ns\b" || return 0
  pids=$(ip netns pids "$ns" | tr '\n' ' ')
  if [[ -n $pids ]]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 50); do [[ -z $(ip netns pids "$ns") ]] && break; sleep 0.1; done
    pids=$(ip netns pids "$ns" | tr '\n' ' ')
    if [[ -n $pids ]]; then
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
    fi
  fi
  ip netns delete "$ns"
}

cluster_stop() {
  for n in "${HOSTS[@]}" "${ETCDS[@]}" br; do ns_stop "$NS-$n"; done
  echo "cluster demo stopped, namespaces removed (logs kept in $CDEMO)"
}

start_agent() {  # start_agent HOST: its agent in its namespace, waits for its API
  local h=$1
  ip netns exec "$NS-$h" nohup "$SRC/build/bin/reactor-agent" --config "$CDEMO/$h/agent.conf" \
    >>"$CDEMO/$h/agent.log" 2>&1 &
  for _ in $(seq 1 100); do
    cluster_cli "$h" list >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "the agent of $h did not answer; its log:" >&2
  tail -n 30 "$CDEMO/$h/agent.log" >&2
  return 1
}

cluster_revive() {
  local h=$1
  [[ " ${HOSTS[*]} " == *" $h "* ]] || { echo "usage: $0 cluster revive h1|h2|h3" >&2; exit 2; }
  ip netns list | grep -q "^$NS-$h\b" || { echo "the cluster demo is not running" >&2; exit 1; }
  ip -n "$NS-br" link set "$h" up
  if [[ -n $(ip netns pids "$NS-$h") ]]; then
    echo "$h is running (pids: $(ip netns pids "$NS-$h" | tr '\n' ' '))"
    return 0
  fi
  start_agent "$h"
  echo "$h is back"
  cluster_cli "$h" managers
}

cluster_start() {
  [[ $(id -u) == 0 ]] || { echo "cluster mode makes network namespaces: run it as root" >&2; exit 1; }
  command -v ip >/dev/null || { echo "ip not found: install iproute2" >&2; exit 1; }
  [[ -x /usr/bin/etcd ]] || { echo "/usr/bin/etcd not found: install etcd-server" >&2; exit 1; }
  if ip netns list | grep -q "^$NS-br\b"; then
    echo "the cluster demo is already running; '$0 cluster stop' stops it"
    exit 0
  fi
  rm -rf "$CDEMO"
  mkdir -p "$CDEMO"
  chmod 755 "$CDEMO"  # nginx's workers (nobody) traverse the prefixes
  # The network: a bridge with no uplink; every host and etcd member on a veth.
  ip netns add "$NS-br"
  ip -n "$NS-br" link set lo up
  ip -n "$NS-br" link add br0 type bridge
  ip -n "$NS-br" link set br0 up
  for n in "${HOSTS[@]}" "${ETCDS[@]}"; do
    ip netns add "$NS-$n"
    ip -n "$NS-$n" link set lo up
    ip -n "$NS-br" link add "$n" type veth peer name eth0 netns "$NS-$n"
    ip -n "$NS-br" link set "$n" master br0 up
    ip -n "$NS-$n" addr add "$(addr_of "$n")/24" dev eth0
    ip -n "$NS-$n" link set eth0 up
  done
  local initial="" e h a
  for e in "${ETCDS[@]}"; do initial+="${initial:+,}$e=http://$(addr_of "$e"):2380"; done
  for e in "${ETCDS[@]}"; do
    a=$(addr_of "$e")
    ip netns exec "$NS-$e" nohup /usr/bin/etcd --name "$e" --data-dir "$CDEMO/$e" \
      --listen-client-urls "http://$a:2379" --advertise-client-urls "http://$a:2379" \
      --listen-peer-urls "http://$a:2380" --initial-advertise-peer-urls "http://$a:2380" \
      --initial-cluster "$initial" --initial-cluster-token rdemo --initial-cluster-state new \
      --logger zap --log-level warn >"$CDEMO/$e.log" 2>&1 &
  done
  for _ in $(seq 1 150); do
    ip netns exec "$NS-h1" curl -s --max-time 1 "http://$(addr_of e1):2379/health" | grep -q '"true"' && break
    sleep 0.2
  done
  for h in "${HOSTS[@]}"; do
    mkdir -p "$CDEMO/$h/endpoints.d"
    chmod 755 "$CDEMO/$h"
    cat > "$CDEMO/$h/agent.conf" <<CONF
[agent]
name = $h
listen = 127.0.0.1:7070
token_file = $CDEMO/$h/token
state = $ETCD_URL
state_dir = $CDEMO/$h/state
address = $(addr_of "$h")
slots = 4
lease_ttl = 5s
interval = 1s

[nginx]
mode = managed
prefix = $CDEMO/$h/nginx
template_dir = $SRC/templates

[cloud:process]
log_dir = $CDEMO/$h/logs
CONF
    start_agent "$h"
  done
  # The example endpoint, its instances bound on each host's address, one per host.
  # shellcheck disable=SC2016  # ${ADDRESS} is for the agent to expand
  sed -e 's/--bind 127.0.0.1/--bind ${ADDRESS}/' -e 's/^min_instances = .*/min_instances = 3/' \
    "$SRC/endpoints/process.conf" | cluster_cli h1 manage web -
  for _ in $(seq 1 150); do  # one healthy instance per host, and h2's nginx serving
    cluster_cli h1 status web --json 2>/dev/null | grep -q '"healthy":3,' &&
      [[ $(ip netns exec "$NS-h2" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/) == 200 ]] && break
    sleep 0.2
  done
  cluster_cli h1 managers
  echo
  cluster_cli h1 instances web
  local served
  served=$(ip netns exec "$NS-h2" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/ || true)
  [[ $served == 200 ]] || echo "warning: h2's nginx answers $served for web so far; see $CDEMO/h*/agent.log" >&2
  cat <<MSG

Three hosts run in network namespaces $NS-h1..3 (198.18.0.11-13), etcd in
$NS-e1..3 (198.18.0.21-23); every host's nginx serves web on its own
127.0.0.1:8080. The CLI of host H, and a request through h2's nginx:
  R() { h=\$1; shift; ip netns exec $NS-\$h $SRC/build/bin/reactor --api 127.0.0.1:7070 --token-file $CDEMO/\$h/token "\$@"; }
  ip netns exec $NS-h2 curl http://127.0.0.1:8080/
Hosts (slots, instances, endpoints owned) and which host runs which instance:
  R h2 managers; R h2 instances web
  watch -n 1 "\$(declare -f R); R h2 managers; R h2 instances web"
Fail a host and watch the failover (its instances come back on the others
within about lease_ttl + 3 s, and web's owner moves if it was that host):
  kill -9 \$(ip netns pids $NS-h1)      # kill h1: its agent, nginx and instances
  ip -n $NS-br link set h1 down         # or cut h1 off the network
  $0 cluster revive h1
Move a host's instances elsewhere, one at a time; then stop everything:
  R h2 managers drain h3
  $0 cluster stop
MSG
}

if [[ ${1:-} == cluster ]]; then
  case ${2:-} in
    stop) cluster_stop; exit 0 ;;
    revive) cluster_revive "${3:-}"; exit 0 ;;
    "") ;;
    *) echo "usage: $0 cluster [stop | revive HOST]" >&2; exit 2 ;;
  esac
fi

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
cmake -S . -B build "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${JOBS:-2}" --target reactor-agent reactor

if [[ ${1:-} == cluster ]]; then
  cluster_start
  exit 0
fi

if [[ -f $DEMO/agent.pid ]] && kill -0 "$(cat "$DEMO/agent.pid")" 2>/dev/null; then
  echo "the demo agent is already running (pid $(cat "$DEMO/agent.pid")); '$0 stop' stops it"
  exit 0
fi
mkdir -p "$DEMO"
chmod 755 "$DEMO"  # nginx's workers (nobody) traverse the prefix
cat > "$DEMO/agent.conf" <<CONF
[agent]
name = demo
listen = $API
token_file = $DEMO/token
state = sqlite:$DEMO/state.db
state_dir = $DEMO/state
interval = 1s

[nginx]
mode = managed
prefix = $DEMO/nginx
template_dir = $SRC/templates

[cloud:process]
log_dir = $DEMO/logs
CONF
nohup "$SRC/build/bin/reactor-agent" --config "$DEMO/agent.conf" >"$DEMO/agent.log" 2>&1 &
echo $! > "$DEMO/agent.pid"

export REACTOR_API=$API
R=("$SRC/build/bin/reactor" --token-file "$DEMO/token")
for _ in $(seq 1 100); do
  "${R[@]}" list >/dev/null 2>&1 && break
  kill -0 "$(cat "$DEMO/agent.pid")" 2>/dev/null || { cat "$DEMO/agent.log"; exit 1; }
  sleep 0.2
done
"${R[@]}" manage web "$SRC/endpoints/process.conf"
for _ in $(seq 1 100); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/) == 200 ]] && break
  sleep 0.2
done
"${R[@]}" status web
cat <<MSG

reactor is running (agent pid $(cat "$DEMO/agent.pid"), logs in $DEMO/agent.log).
  curl http://127.0.0.1:8080/                       # through nginx to an instance
  export REACTOR_API=$API REACTOR_TOKEN=\$(cat $DEMO/token)
  $SRC/build/bin/reactor status web                 # state, instances, target
  $SRC/build/bin/reactor instances web
  $SRC/build/bin/reactor log web --follow           # every decision, with its reason
  $SRC/build/bin/reactor set web scaling min_instances 2
  $0 stop                                           # stop the agent, nginx and instances
MSG
