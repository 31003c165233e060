#!/usr/bin/env python3
"""Cold start (SPEC §11 scale to zero): the first byte of a request that
arrives at an endpoint with zero instances, for a python http.server process
instance: nginx holds it, wakes the agent, the agent launches, the instance
passes its health check (default [health]: interval 1s, rise 1) and joins,
and the held request proceeds. The agent runs with the default interval 1s.

Each run waits for the endpoint to be at zero (idle_timeout 1s, its process
gone), then times one GET from connect to the first byte of the answer.

Usage: python3 tests/bench/cold_start_bench.py [BIN_DIR] [RUNS]
Prints each run and the median; exits 1 if the median is over 1 s or a
request did not get 200.
"""
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../integration"))
if len(sys.argv) > 1:
    os.environ["REACTOR_BIN_DIR"] = os.path.abspath(sys.argv[1])
from harness import PYTHON, Agent, free_port, wait_until  # noqa: E402

RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
GOAL_S = 1.0


def ini(port):
    # Defaults everywhere except what scale to zero needs and a short window
    # (so that each run reaches zero quickly).
    return f"""[endpoint]
url = http://127.0.0.1:{port}/
cloud = process
[scaling]
min_instances = 0
max_instances = 1
idle_timeout = 1s
window = 1s
[cloud:process]
command = {PYTHON} -m http.server ${{PORT}} --bind 127.0.0.1
working_dir = /tmp
"""


def first_byte(port, timeout=40.0):
    """(seconds from connect to the first byte of the answer, status line)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        first = s.recv(1)
        took = time.monotonic() - start
        rest = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    return took, (first + rest).split(b"\r\n", 1)[0].decode(errors="replace")


def main():
    agent = Agent("cold-start").start()
    # The harness uses interval = 500ms for tests; the benchmark wants the default 1s.
    agent.stop()
    with open(agent.config) as f:
        conf = f.read().replace("interval = 500ms", "interval = 1s")
    with open(agent.config, "w") as f:
        f.write(conf)
    agent.start()
    times = []
    bad = []
    try:
        port = free_port()
        agent.manage("cold", ini(port))
        for run in range(RUNS):
            wait_until(lambda: (lambda s: s["instances"] == 0 and s["draining"] == 0)(agent.status("cold"))
                       and not agent.instance_pids(), timeout=60, interval=0.1, what="the endpoint at zero")
            time.sleep(0.5)  # nothing in flight: a cold start from rest
            took, status = first_byte(port)
            times.append(took)
            if " 200 " not in status + " ":
                bad.append(status)
            print(f"run {run + 1}: first byte after {took * 1000:.0f} ms ({status})", flush=True)
    finally:
        agent.cleanup()
    med = statistics.median(times)
    print(f"cold start, {RUNS} runs: median {med * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms (goal <= {GOAL_S * 1000:.0f} ms)")
    if bad:
        print(f"not 200: {bad}")
    return 0 if med <= GOAL_S and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
