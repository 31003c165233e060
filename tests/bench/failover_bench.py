#!/usr/bin/env python3
"""Failover time in the cluster (SPEC §11, issue 12): three hosts in network
namespaces on one machine with a 3-member etcd (tests/integration/
netns_cluster.py), three endpoints of 2 process instances each. Each run
kills one host with kill -9 (agent, nginx, instances) and measures, from the
kill:
  - owner takeover: every endpoint the dead host owned has an owner on a
    surviving host (/reactor/owners/<ep>);
  - replacement: every endpoint has its 2 instances active on the
    survivors AND exactly those in a surviving host's nginx upstream (its
    control socket), none at the dead host.
Then the host comes back, the cluster settles, and the next run kills the
host that owns the most endpoints (and runs instances).

Usage (root; after building reactor-agent and reactor):
  python3 tests/bench/failover_bench.py [--bin build/bin] [--runs 5] [--lease-ttl 5] [--how kill|partition]
(--how partition: the host's veth goes down instead: it vanishes without a
reset, nginx's connect timeout covers the path; it is healed between runs.)
Prints every run, then median/min/max of both; exits 1 when the median
replacement time is over lease_ttl + 3 s (the SPEC's goal).
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../integration"))

ENDPOINTS = ["b1", "b2", "b3"]
PER_ENDPOINT = 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(HERE, "../../build/bin"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--lease-ttl", type=float, default=5.0, help="[agent] lease_ttl, seconds")
    ap.add_argument("--interval", default="1s", help="[agent] interval (default: the product's 1s)")
    ap.add_argument("--how", choices=["kill", "partition"], default="kill",
                    help="kill -9 of the host's processes, or its veth down")
    args = ap.parse_args()
    os.environ["REACTOR_BIN_DIR"] = os.path.abspath(args.bin)
    from harness import wait_until  # noqa: E402  (reads REACTOR_BIN_DIR at import)
    from netns_cluster import Cluster, cluster_endpoint_ini  # noqa: E402

    goal = args.lease_ttl + 3.0
    cluster = Cluster(hosts=3, slots=4, lease_ttl_s=args.lease_ttl, interval=args.interval)
    takeovers, replacements = [], []
    try:
        cluster.start()
        for k, name in enumerate(ENDPOINTS):
            cluster.hosts[k].manage(name, cluster_endpoint_ini(8080 + k, PER_ENDPOINT))

        def settled():
            snap = cluster.snapshot()
            up = {h.name for h in cluster.hosts}
            for name in ENDPOINTS:
                recs = cluster.instances(name, snap)
                if len(recs) != PER_ENDPOINT or any(r["state"] != "active" or r["manager"] not in up
                                                    for r in recs):
                    return False
                if cluster.owner(name)[0] not in up:
                    return False
                for h in cluster.hosts:
                    if len(h.members(name) or []) != PER_ENDPOINT:
                        return False
            return not cluster.running_vs_records(ENDPOINTS)

        for run in range(1, args.runs + 1):
            wait_until(settled, timeout=120, interval=0.2, what="the cluster settled before a run")
            snap = cluster.snapshot()
            owners = {name: cluster.owner(name)[0] for name in ENDPOINTS}

            def weight(h):
                return (sum(1 for o in owners.values() if o == h.name),
                        sum(1 for i in snap["instances"] if i["manager"] == h.name))
            victim = max((h for h in cluster.hosts if weight(h)[1] > 0), key=weight)
            survivors = [h for h in cluster.hosts if h is not victim]
            owned = [n for n, o in owners.items() if o == victim.name]
            lost = sum(1 for i in snap["instances"] if i["manager"] == victim.name)

            t0 = time.monotonic()
            if args.how == "kill":
                victim.kill()
            else:
                victim.partition()
            takeover = replaced = None
            deadline = t0 + 20 * args.lease_ttl + 60
            while time.monotonic() < deadline and (takeover is None or replaced is None):
                now = time.monotonic()
                if takeover is None and all(cluster.owner(n)[0] in [h.name for h in survivors] for n in owned):
                    takeover = now - t0
                if replaced is None:
                    snap = cluster.snapshot()
                    ok = True
                    for name in ENDPOINTS:
                        recs = [r for r in cluster.instances(name, snap)
                                if r["state"] == "active" and r["manager"] != victim.name]
                        members = survivors[0].members(name) or []
                        if (len(recs) != PER_ENDPOINT or sorted(r["address"] for r in recs) != members
                                or any(m.startswith(victim.address + ":") for m in members)):
                            ok = False
                            break
                    if ok:
                        replaced = now - t0
                time.sleep(0.05)
            if takeover is None or replaced is None:
                raise SystemExit(f"run {run}: no failover within {deadline - t0:.0f} s "
                                 f"(takeover {takeover}, replacement {replaced})\n{cluster.logs()}")
            if owned:
                takeovers.append(takeover)
            replacements.append(replaced)
            did = "killed" if args.how == "kill" else "cut off"
            print(f"run {run}: {did} {victim.name} (owned {owned or 'none'}, ran {lost} instance(s)): "
                  f"owner takeover {takeover:.2f} s, replacements healthy in nginx {replaced:.2f} s", flush=True)
            if args.how == "kill":
                victim.start()
            else:
                victim.heal()
            cluster.wait_members_up(timeout=30)
    finally:
        cluster.cleanup()

    def line(what, xs):
        if not xs:
            return f"{what}: no run measured it"
        return (f"{what}: median {statistics.median(xs):.2f} s, min {min(xs):.2f} s, max {max(xs):.2f} s "
                f"over {len(xs)} runs")
    print(f"{args.how}, lease_ttl {args.lease_ttl:g} s, interval {args.interval}; goal: median replacement <= {goal:g} s")
    print(line("owner takeover", takeovers))
    print(line("replacement healthy in the upstreams", replacements))
    return 0 if statistics.median(replacements) <= goal else 1


if __name__ == "__main__":
    sys.exit(main())
