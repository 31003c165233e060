#!/bin/bash
# Scaling quality (SPEC §11): the default (lean) and the reactor policy on the
# three example traces, `5 < rate < 20`, capacity 20, start delay 2 s, max 20.
# Exits 1 when the default policy misses the goal on the bursty trace
# (≤ 1 % overload seconds at ≤ 1.4× the oracle's instance-seconds).
#
# Usage: tests/bench/simulate_bench.sh [BIN_DIR] [TRACE_DIR]
set -euo pipefail
bin=${1:-build/bin}
traces=${2:-$(mktemp -d)}
here=$(cd "$(dirname "$0")" && pwd)
python3 "$here/simulate_traces.py" "$traces" >/dev/null
printf '| trace | policy | overload seconds | instance-seconds / oracle | scale-ups | scale-downs |\n'
printf '| --- | --- | --- | --- | --- | --- |\n'
goal=1
for trace in steady wave bursts; do
  for policy in lean reactor; do
    json=$("$bin/reactor" simulate --rules '5 < rate < 20' --trace "$traces/$trace.csv" --capacity 20 \
      --start-delay 2s --max 20 --policy "$policy" --json)
    line=$(python3 - "$json" "$trace" "$policy" <<'PY'
import json, sys
j, trace, policy = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
pct = 100.0 * j["overload_seconds"] / j["seconds"]
print(f"| {trace} | {policy} | {j['overload_seconds']} of {j['seconds']} ({pct:.2f} %) | {j['cost_ratio']:.2f}× | "
      f"{j['scale_ups']} | {j['scale_downs']} |")
if trace == "bursts" and policy == "lean" and not (pct <= 1.0 and j["cost_ratio"] <= 1.4):
    sys.exit(3)
PY
) && rc=0 || rc=$?
    echo "$line"
    if [ $rc -eq 3 ]; then goal=0; elif [ $rc -ne 0 ]; then exit $rc; fi
  done
done
if [ $goal -eq 0 ]; then
  echo "goal missed: lean on bursts must be <= 1 % overload at <= 1.4x the oracle" >&2
  exit 1
fi
