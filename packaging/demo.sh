#!/usr/bin/env bash
# Builds reactor and runs a demo on the embedded defaults: SQLite store, an
# agent-managed nginx, and endpoints/process.conf (python3 http.server
# instances) served on http://127.0.0.1:8080/. Everything lives under
# $REACTOR_DEMO_DIR (default /tmp/reactor-demo); nothing is installed.
#
#   packaging/demo.sh          build, start the agent, manage the example endpoint
#   packaging/demo.sh stop     stop the agent, its nginx and its instances
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

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
cmake -S . -B build "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${JOBS:-2}" --target reactor-agent reactor

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
