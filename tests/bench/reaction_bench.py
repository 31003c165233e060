#!/usr/bin/env python3
"""Reaction time (SPEC §11): from a load step that breaks a rule to a new,
healthy process instance in nginx's upstream, with the default endpoint
settings (window 5s, health interval 1s, rise 1) and interval = 1s.

Usage: python3 tests/bench/reaction_bench.py [BIN_DIR] [RUNS]
Prints each run and the median; exits 1 if the median is over 2 s.
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../integration"))
if len(sys.argv) > 1:
    os.environ["REACTOR_BIN_DIR"] = os.path.abspath(sys.argv[1])
from harness import Agent, free_port, http_get, start_wrk, wait_until, PYTHON  # noqa: E402

RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
GOAL_S = 2.0


def ini(port):
    # Defaults everywhere except the rule and the count bounds.
    return f"""[endpoint]
url = http://127.0.0.1:{port}/
cloud = process
[scaling]
min_instances = 1
max_instances = 2
rules = rate < 20
[cloud:process]
command = {PYTHON} -m http.server ${{PORT}} --bind 127.0.0.1
working_dir = /tmp
"""


def main():
    agent = Agent("reaction", extra_conf="").start()
    # The harness uses interval = 500ms for tests; the benchmark wants the default 1s.
    agent.stop()
    with open(agent.config) as f:
        conf = f.read().replace("interval = 500ms", "interval = 1s")
    with open(agent.config, "w") as f:
        f.write(conf)
    agent.start()
    times = []
    try:
        for run in range(RUNS):
            name = f"r{run}"
            port = free_port()
            url = f"http://127.0.0.1:{port}/"
            agent.manage(name, ini(port))
            agent.wait_healthy(name, 1, timeout=30)
            wait_until(lambda: http_get(url)[0] == 200, timeout=30, what="traffic")
            time.sleep(1.5)
            t0 = time.monotonic()
            load = start_wrk(url, duration_s=8, connections=4)
            wait_until(lambda: agent.status(name)["healthy"] == 2, timeout=20, interval=0.02,
                       what="a second healthy instance")
            dt = time.monotonic() - t0
            load.communicate(timeout=60)
            times.append(dt)
            print(f"run {run + 1}: load step → second instance in the upstream in {dt:.2f} s", flush=True)
            agent.cli("unmanage", name, check=0)
            wait_until(lambda: name not in agent.cli("list", check=0).stdout, timeout=30, what="unmanaged")
    finally:
        agent.cleanup()
    med = statistics.median(times)
    print(f"reaction time: median {med:.2f} s, max {max(times):.2f} s over {len(times)} runs (goal ≤ {GOAL_S} s)")
    return 0 if med <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
