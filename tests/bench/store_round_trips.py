#!/usr/bin/env python3
"""Store round trips per round (issue 11): one agent on a real 3-member etcd
(loopback, started here), N static endpoints with a rule (default 100, distinct paths
on one nginx port, two shared loopback backends), interval 1 s. Once every
endpoint is healthy and steady, counts the gRPC requests the etcd members
started (grpc_server_started_total from each member's /metrics: every call of
the agent's JSON-gateway client is one) over a measured span, and prints them
per round, by method.

Usage: python3 tests/bench/store_round_trips.py [BIN_DIR] [--endpoints N] [--seconds S]
"""
import argparse
import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../integration"))


def member_counts(cluster):
    """{method: requests started} summed over the live members."""
    out = {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    pattern = re.compile(r'^grpc_server_started_total\{([^}]*)\} ([0-9.e+]+)$')
    for m in cluster.members:
        with opener.open(f"http://127.0.0.1:{m['client']}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                match = pattern.match(line)
                if not match:
                    continue
                labels = dict(kv.split("=", 1) for kv in match.group(1).split(","))
                method = labels.get("grpc_method", "?").strip('"')
                out[method] = out.get(method, 0) + float(match.group(2))
    return out


def agent_rounds(agent):
    from harness import http_get  # noqa: E402
    code, body = http_get(f"http://127.0.0.1:{agent.api_port}/metrics",
                          headers={"Authorization": f"Bearer {agent.token()}"})
    if code != 200:
        return None
    for line in body.splitlines():
        if line.startswith("reactor_rounds_total"):
            return float(line.split()[-1])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir", nargs="?", default="build/bin")
    ap.add_argument("--endpoints", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=20)
    args = ap.parse_args()
    os.environ["REACTOR_BIN_DIR"] = os.path.abspath(args.bin_dir)
    from etcd import EtcdCluster  # noqa: E402
    from harness import Agent, Backend, free_port, wait_until  # noqa: E402

    cluster = EtcdCluster(3).start()
    backends = [Backend(), Backend()]
    agent = Agent("store_round_trips", state=cluster.url()).start()
    try:
        # The harness runs tests at interval = 500ms; a round here is the default 1 s.
        agent.stop()
        with open(agent.config) as f:
            conf = f.read().replace("interval = 500ms", "interval = 1s")
        with open(agent.config, "w") as f:
            f.write(conf)
        agent.start()
        port = free_port()
        servers = ", ".join(f"127.0.0.1:{b.port}" for b in backends)
        for i in range(args.endpoints):
            agent.manage(f"e{i}", f"""[endpoint]
url = http://127.0.0.1:{port}/e{i}/
cloud = static
static_instances = {servers}
[scaling]
rules = rate < 1000
""")

        def all_healthy():
            rows = agent.cli_json("list")
            return len(rows) == args.endpoints and all(r.get("healthy") == 2 for r in rows)
        wait_until(all_healthy, timeout=180, interval=1, what="every endpoint healthy")
        time.sleep(5)  # past the placements and the first rounds' writes
        before, rounds0 = member_counts(cluster), agent_rounds(agent)
        t0 = time.monotonic()
        time.sleep(args.seconds)
        after, rounds1 = member_counts(cluster), agent_rounds(agent)
        # Rounds as the agent counted them (reactor_rounds_total); an agent
        # without that counter: one per second.
        rounds = rounds1 - rounds0 if rounds0 is not None else time.monotonic() - t0
        diff = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        total = sum(diff.values())
        print(f"store round trips: {args.endpoints} endpoints, 3-member etcd, interval 1 s, "
              f"{args.seconds} s measured, {rounds:.0f} rounds"
              + ("" if rounds0 is not None else " (no round counter: one per second)"))
        for method, n in sorted(diff.items(), key=lambda kv: -kv[1]):
            if n:
                print(f"  {method:<16} {n / rounds:8.1f} per round")
        print(f"  {'total':<16} {total / rounds:8.1f} per round")
    finally:
        agent.stop()
        agent.cleanup()
        for b in backends:
            b.stop()
        cluster.stop()


if __name__ == "__main__":
    main()
