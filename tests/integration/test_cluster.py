"""The cluster (SPEC §13, issue 12) with hosts in network namespaces: three
hosts h1..h3, each its own namespace with its own reactor-agent, nginx and
process instances, on a bridge with no uplink (198.18.0.0/15 only), sharing a
3-member etcd cluster in namespaces of its own (tests/integration/
netns_cluster.py). Every test builds its own cluster and removes it.

Records are read from etcd (its JSON gateway, from the bridge namespace);
traffic comes from a client inside a host's namespace to that host's nginx.
"""
import os
import re
import sys
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import wait_until
from netns_cluster import Cluster, cluster_endpoint_ini, ip, ns_connect, ns_http, pids_in_ns

LEASE_TTL_S = 2.0
PORT = 8080  # every host's nginx, on its own loopback


class Sampler:
    """Reads the slot and instance records from etcd (one revision per
    sample) every 50 ms in a thread, from start to stop(). The tests judge
    the samples afterwards."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.samples = []  # (monotonic time, snapshot)
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.cluster.snapshot()))
            except Exception as e:  # an etcd hiccup: noted, the sampling goes on
                self.errors.append(str(e))
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
        return self.samples

    def slot_violations(self):
        """Every sample where a host's slot record, or the slots its instance
        records hold, exceed the host's slots."""
        capacity = {h.name: h.slots for h in self.cluster.hosts}
        out = []
        for _, snap in self.samples:
            held = {}
            for i in snap["instances"]:
                held[i["manager"]] = held.get(i["manager"], 0) + int(i["slots"] or 0)
            for host, cap in capacity.items():
                used = snap["slots"].get(host, 0)
                if not isinstance(used, int) or used > cap:
                    out.append(f"rev {snap['revision']}: /reactor/slots/{host} = {used!r}, {host} has {cap}")
                if held.get(host, 0) > cap:
                    out.append(f"rev {snap['revision']}: instance records on {host} hold {held[host]} slots > {cap}")
        return out

    def max_used(self):
        out = {h.name: 0 for h in self.cluster.hosts}
        for _, snap in self.samples:
            for host, used in snap["slots"].items():
                if isinstance(used, int) and host in out:
                    out[host] = max(out[host], used)
        return out

    def counts(self, endpoint, states=("starting", "active")):
        """[(time, number of the endpoint's records in `states`, all its records)]."""
        return [(t, len([i for i in snap["instances"] if i["endpoint"] == endpoint and i["state"] in states]),
                 len([i for i in snap["instances"] if i["endpoint"] == endpoint])) for t, snap in self.samples]


class ClusterTestCase(unittest.TestCase):
    def start_cluster(self, slots=4, lease_ttl_s=LEASE_TTL_S):
        c = Cluster(hosts=3, slots=slots, lease_ttl_s=lease_ttl_s)
        self.addCleanup(c.cleanup)  # also when start() fails half-way
        self.cluster = c
        return c.start()

    def wait(self, predicate, timeout, what):
        """wait_until, with every agent's log in the failure message."""
        try:
            return wait_until(predicate, timeout=timeout, interval=0.1, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.cluster.logs()}") from None

    def client(self, host, port=PORT):
        c = host.client(port)
        self.addCleanup(c.cleanup)
        c.wait_ok(20)
        return c

    def stop_client(self, client):
        """Stops a traffic client; says its counts (stderr) and returns them."""
        result = client.stop()
        print(f"\n  client through {client.host.name}'s nginx: {result['ok']} ok, {result['failed']} failed, "
              f"slowest {result['slowest']:.2f} s", file=sys.stderr, end=" ")
        return result

    def serve(self, name, instances, port=PORT, via=None, **kw):
        """Manages a process endpoint through `via` (default h1) and waits
        until `instances` of it are active and every host's nginx serves it."""
        c = self.cluster
        (via or c.hosts[0]).manage(name, cluster_endpoint_ini(port, instances, **kw))
        self.wait(lambda: sum(c.placement(name).values()) == instances or None, 40,
                  f"{instances} active instances of {name}")
        for h in c.hosts:
            self.wait(lambda h=h: len(h.members(name) or []) == instances, 20,
                      f"{h.name}'s nginx to hold the {instances} members of {name}")
            self.wait(lambda h=h: h.get(port)[0] == 200, 20, f"{h.name}'s nginx to serve {name}")

    def owner_host(self, name):
        owner, token = self.wait(lambda: self.cluster.owner(name)[0] and self.cluster.owner(name), 20,
                                 f"an owner of {name} in /reactor/owners/{name}")
        self.assertIn(owner, [h.name for h in self.cluster.hosts], f"/reactor/owners/{name} = {owner!r}")
        return self.cluster.host(owner), token

    def assert_one_process_per_record(self, names, timeout=20):
        """Waits until every instance record of `names` has exactly one
        process on its host and no process runs without a record."""
        last = []

        def clean():
            last[:] = self.cluster.running_vs_records(names)
            return not last
        try:
            wait_until(clean, timeout=timeout, interval=0.2, what=f"one instance process per record of {names}")
        except AssertionError as e:
            raise AssertionError(f"{e}; problems: {last}\n{self.cluster.logs()}") from None


class HarnessTest(ClusterTestCase):
    """The harness itself: the namespaces reach each other and nothing else,
    a host is killed and cut off as the other tests need, and teardown leaves
    nothing behind."""

    def test_isolated_network_partition_kill_and_a_clean_teardown(self):
        c = self.start_cluster()
        for ns in [c.bridge_ns, *(h.ns for h in c.hosts), *(m.ns for m in c.etcd)]:
            routes = ip("-n", ns, "-4", "route", "show").stdout
            self.assertNotIn("default", routes, f"{ns} has a way out: {routes}")
            for line in routes.splitlines():
                self.assertTrue(line.startswith("198.18.0.0/24 "), f"{ns}: route {line!r}")
        ports = ip("-n", c.bridge_ns, "-o", "link", "show", "master", "br0").stdout
        self.assertEqual(sorted(re.findall(r"^\d+: ([a-z0-9]+)@", ports, flags=re.M)),
                         ["e1", "e2", "e3", "h1", "h2", "h3"], "the bridge's only ports: the test's veths")
        h1, h2, h3 = c.hosts
        etcd = c.etcd[0]
        self.assertEqual(ns_http(h1.ns, "GET", etcd.address, 2379, "/health")[0], 200, "h1 reaches etcd")

        h1.partition()
        self.assertEqual(ns_http(h1.ns, "GET", etcd.address, 2379, "/health", timeout=1)[0], 0,
                         "a partitioned host reaches no etcd member")
        self.assertEqual(ns_http(h2.ns, "GET", etcd.address, 2379, "/health")[0], 200)
        self.assertTrue(h1.alive(), "a partition kills nothing")
        h1.heal()
        self.wait(lambda: ns_http(h1.ns, "GET", etcd.address, 2379, "/health", timeout=1)[0] == 200, 10,
                  "h1 reaching etcd again")

        h2.pause()
        self.assertEqual(h2.agent_state(), "T")
        h2.resume()
        self.assertNotEqual(h2.agent_state(), "T")
        h3.kill()
        self.assertEqual(pids_in_ns(h3.ns), [], "nothing left running in a killed host")
        self.assertTrue(h1.alive() and h2.alive())

        namespaces, base = list(c.namespaces), c.dir
        c.cleanup()
        listed = ip("netns", "list").stdout
        self.assertEqual([ns for ns in namespaces if ns in listed.split()], [])
        self.assertFalse(os.path.exists(base))


class MembershipTest(ClusterTestCase):
    def test_managers_lists_every_host_up_with_its_slots(self):
        c = self.start_cluster(slots=[3, 4, 5])
        for h in c.hosts:
            managers = {m["name"]: m for m in h.managers()}
            self.assertEqual(sorted(managers), ["h1", "h2", "h3"], f"as {h.name} sees them")
            for other in c.hosts:
                m = managers[other.name]
                self.assertEqual(m["state"], "up", m)
                self.assertEqual(m["slots"], other.slots, m)
                self.assertEqual(m["slots_used"], 0, m)
                self.assertEqual(m["address"], other.address, m)
                # From its last renewal (every third of the TTL), as its record says.
                self.assertGreater(m["lease_left_ms"], 0, m)
                self.assertLessEqual(m["lease_left_ms"], LEASE_TTL_S * 1000, m)
        # A cordon made through one host's API is seen from every host.
        c.hosts[0].cli("managers", "cordon", "h2", check=0)
        for h in c.hosts:
            self.wait(lambda h=h: {m["name"]: m["state"] for m in h.managers()}["h2"] == "cordoned", 10,
                      f"h2 cordoned as {h.name} sees it")
        c.hosts[2].cli("managers", "uncordon", "h2", check=0)
        self.wait(lambda: {m["name"]: m["state"] for m in c.hosts[0].managers()}["h2"] == "up", 10, "h2 up again")
        # A host whose agent is gone is no longer up (its lease expired).
        c.hosts[2].kill()
        self.wait(lambda: {m["name"]: m["state"] for m in c.hosts[0].managers()}.get("h3") in ("gone", None),
                  LEASE_TTL_S * 3 + 5, "h3 gone from `reactor managers` after its lease")


class PlacementTest(ClusterTestCase):
    def test_min_six_spreads_two_per_host_and_every_nginx_serves_it(self):
        c = self.start_cluster(slots=4)
        self.serve("web", 6)
        self.assertEqual(c.placement("web"), {"h1": 2, "h2": 2, "h3": 2})
        addresses = {h.address for h in c.hosts}
        for h in c.hosts:
            members = h.members("web")
            self.assertEqual({m.rsplit(":", 1)[0] for m in members}, addresses,
                             f"{h.name}'s nginx holds instances of every host: {members}")
            for _ in range(12):
                self.assertEqual(h.get(PORT)[0], 200, f"through {h.name}'s nginx")
        used = {m["name"]: m["slots_used"] for m in c.hosts[1].managers()}
        self.assertEqual(used, {"h1": 2, "h2": 2, "h3": 2})
        self.assertEqual(c.snapshot()["slots"], {"h1": 2, "h2": 2, "h3": 2})

    def test_pack_fills_one_host_before_the_next(self):
        c = self.start_cluster(slots=4)
        self.serve("web", 6, placement="pack")
        placed = c.placement("web")
        self.assertEqual(sorted(placed.values(), reverse=True), [4, 2, 0], placed)
        for h in c.hosts:
            self.assertEqual(h.get(PORT)[0], 200, f"{h.name}'s nginx serves web, with or without instances")


class SlotsTest(ClusterTestCase):
    def test_twenty_concurrent_scale_ups_never_put_a_host_over_its_slots(self):
        c = self.start_cluster(slots=4)  # 12 slots in all
        names = [f"e{i:02d}" for i in range(20)]
        for i, name in enumerate(names):
            c.hosts[i % 3].manage(name, cluster_endpoint_ini(9000 + i, 0, 3))
        sampler = Sampler(c)
        self.addCleanup(sampler.stop)

        def scale_up(i):  # 60 instances wanted, each through another host's API
            h = c.hosts[i % 3]
            h.cli("set", names[i], "scaling", "min_instances", "3", check=0)
        with ThreadPoolExecutor(max_workers=20) as pool:
            list(pool.map(scale_up, range(20)))

        def full():
            snap = c.snapshot()
            active = [i for i in snap["instances"] if i["state"] == "active"]
            return len(active) == 12 and snap["slots"] == {"h1": 4, "h2": 4, "h3": 4} or None
        self.wait(full, 60, "every slot of the cluster used by an active instance")
        time.sleep(LEASE_TTL_S * 2)  # the waiting endpoints keep trying: still nothing over
        sampler.stop()
        snap = c.snapshot()
        self.assertEqual(len(snap["instances"]), 12, "no instance record beyond the 12 slots")
        self.assertGreater(len(sampler.samples), 40, f"sampled throughout (errors: {sampler.errors[:3]})")
        self.assertEqual(sampler.slot_violations(), [], f"over {len(sampler.samples)} samples")
        self.assertEqual(sampler.max_used(), {"h1": 4, "h2": 4, "h3": 4})
        # An endpoint left short says why: every host is full.
        short = [n for n in names if len(c.instances(n, snap)) < 3]
        self.assertTrue(short)
        why = c.hosts[0].status(short[0])["problem"] + c.hosts[0].cli("log", short[0]).stdout
        self.assertRegex(why, r"(?i)slot|full", f"{short[0]}'s status and log say the hosts are full")
        self.assert_one_process_per_record(names)


class FailureTest(ClusterTestCase):
    def test_killed_host_is_replaced_with_no_failed_request_and_returns_without_duplicates(self):
        c = self.start_cluster(slots=4)
        self.serve("web", 3)
        self.assertEqual(c.placement("web"), {"h1": 1, "h2": 1, "h3": 1})
        victim, _ = self.owner_host("web")
        survivors = [h for h in c.hosts if h is not victim]
        client = self.client(survivors[0])

        victim.kill()  # kill -9: agent, nginx master and workers, instances
        self.assertEqual(victim.instance_processes(), {})
        self.wait(lambda: c.owner("web")[0] in [h.name for h in survivors], LEASE_TTL_S * 3 + 5,
                  "the owner of web to move to a surviving host")
        self.wait(lambda: (lambda p: p[victim.name] == 0 and sum(p.values()) == 3)(c.placement("web")),
                  LEASE_TTL_S * 3 + 15, "web's instance on the dead host replaced on the others")
        for h in survivors:
            self.wait(lambda h=h: len(h.members("web") or []) == 3 and
                      not any(m.startswith(victim.address + ":") for m in h.members("web")), 15,
                      f"{h.name}'s nginx without the dead host's instance")
        self.wait(lambda: survivors[1].status("web")["healthy"] == 3, 15, "3 healthy instances")
        client.wait_ok(20)
        result = self.stop_client(client)
        self.assertEqual(result["failed"], 0, f"failed requests through {survivors[0].name}: {result}")

        sampler = Sampler(c)
        self.addCleanup(sampler.stop)
        victim.start()  # the host returns: nothing runs twice
        c.wait_members_up()
        time.sleep(LEASE_TTL_S * 3)  # long enough for owners to move back to it
        self.assert_one_process_per_record(["web"])
        sampler.stop()
        self.assertEqual(sum(c.placement("web").values()), 3, c.instances("web"))
        self.assertEqual(len(c.instances("web")), 3, c.instances("web"))
        self.assertEqual(max(n for _, _, n in sampler.counts("web")), 3,
                         "never more than 3 instance records of web while the host returned")
        self.wait(lambda: victim.get(PORT)[0] == 200, 20, "the returned host's nginx serving web again")

    def test_partitioned_agent_stops_deciding_others_take_over_and_heal_to_one_instance_each(self):
        c = self.start_cluster(slots=4)
        self.serve("web", 3)
        victim, token = self.owner_host("web")
        survivors = [h for h in c.hosts if h is not victim]
        client = self.client(survivors[0])
        before = victim.instance_processes()
        self.assertEqual(len(before), 1, before)

        victim.partition()  # its veth down: it reaches neither etcd nor the other hosts
        self.wait(lambda: c.owner("web")[0] in [h.name for h in survivors], LEASE_TTL_S * 3 + 5,
                  "the owner of web to move to a host that still reaches etcd")
        self.assertNotEqual(c.owner("web")[1], token, "a new fencing token")
        self.wait(lambda: (lambda p: p[survivors[0].name] + p[survivors[1].name] == 3)(c.placement("web")),
                  LEASE_TTL_S * 3 + 15, "web's instances all on the connected hosts")
        # Cut off, the agent made no change: its instance still runs, its nginx still serves.
        time.sleep(LEASE_TTL_S)
        self.assertEqual(victim.instance_processes(), before, "the cut-off agent stopped or started nothing")
        self.assertTrue(victim.alive())
        self.wait(lambda: victim.get(PORT)[0] == 200, 20, "the cut-off host's nginx still serving")
        # A change asked of the cut-off agent is refused, not half-made.
        refused = victim.cli("set", "web", "scaling", "max_instances", "9")
        self.assertNotEqual(refused.returncode, 0, f"a write through the cut-off agent: {refused.stdout}")

        victim.heal()
        c.wait_members_up(timeout=LEASE_TTL_S * 3 + 10)
        self.assert_one_process_per_record(["web"], timeout=LEASE_TTL_S * 3 + 15)
        self.wait(lambda: sum(c.placement("web").values()) == 3 and len(c.instances("web")) == 3, 20,
                  "3 instance records of web, one per assignment")
        self.assertNotIn("max_instances = 9", survivors[0].cli("show", "web", check=0).stdout)
        client.wait_ok(20)
        result = self.stop_client(client)
        # New requests meet the cut-off instance at connect (2 s timeout, retried
        # elsewhere); only a request already sent to it when the link went down
        # waits with no answer (nginx sets no proxy_read_timeout: 60 s), until the
        # client's 15 s timeout or the healing. At most one per client thread.
        self.assertLessEqual(result["failed"], 4, f"failed requests through {survivors[0].name}: {result}")

    def test_paused_owner_does_not_act_on_stale_ownership(self):
        c = self.start_cluster(slots=4)
        self.serve("web", 3)
        victim, token = self.owner_host("web")
        other = next(h for h in c.hosts if h is not victim)

        victim.pause()  # SIGSTOP: its lease runs out while it holds its decisions in memory
        paused_at = time.monotonic()
        other.cli("set", "web", "scaling", "max_instances", "4", check=0)
        other.cli("set", "web", "scaling", "min_instances", "4", check=0)
        self.wait(lambda: c.owner("web")[1] not in (0, token), LEASE_TTL_S * 3 + 5,
                  "another owner of web (a new fencing token) while the owner is stopped")
        time.sleep(max(0.0, 2 * LEASE_TTL_S - (time.monotonic() - paused_at)))
        sampler = Sampler(c)
        self.addCleanup(sampler.stop)
        victim.resume()  # SIGCONT: it must find its ownership gone before it acts
        self.wait(lambda: sum(c.placement("web").values()) == 4, LEASE_TTL_S * 3 + 15, "4 active instances of web")
        self.assert_one_process_per_record(["web"], timeout=LEASE_TTL_S * 3 + 15)
        time.sleep(LEASE_TTL_S * 3)  # the resumed host may get web back, with a new token
        sampler.stop()

        self.assertTrue(victim.alive(), "the resumed agent runs on")
        # After the target of 4 was first reached, the count never fell: a stale
        # owner (which still believes in 3) never drained or stopped one.
        counts = sampler.counts("web")
        reached = next((k for k, (_, n, _) in enumerate(counts) if n >= 4), None)
        self.assertIsNotNone(reached, f"4 instances never seen in {len(counts)} samples")
        low = [(round(t - counts[reached][0], 2), n) for t, n, _ in counts[reached:] if n < 4]
        self.assertEqual(low, [], "web's instance count fell below the new owner's target after SIGCONT")
        tokens = [snap["owners"].get("web", (None, 0))[1] for _, snap in sampler.samples]
        self.assertNotIn(token, tokens, "the stale owner's claim (its old fencing token) never came back")
        self.assertEqual(len(c.instances("web")), 4, c.instances("web"))
        self.assertEqual(other.status("web")["healthy"], 4)


class OperationsTest(ClusterTestCase):
    def test_cordon_and_drain_under_load_fail_no_request(self):
        c = self.start_cluster(slots=4)
        self.serve("web", 3)
        h1, h2, _ = c.hosts
        client = self.client(h2)

        h2.cli("managers", "cordon", "h1", check=0)
        self.wait(lambda: {m["name"]: m["state"] for m in h2.managers()}["h1"] == "cordoned", 10,
                  "h1 cordoned in `reactor managers`")
        h2.cli("set", "web", "scaling", "max_instances", "5", check=0)
        h2.cli("set", "web", "scaling", "min_instances", "5", check=0)
        self.wait(lambda: sum(c.placement("web").values()) == 5, 30, "5 active instances of web")
        self.assertEqual(c.placement("web")["h1"], 1, "no new instance on the cordoned host")

        h2.cli("managers", "drain", "h1", check=0)
        self.wait(lambda: (lambda p: p["h1"] == 0 and sum(p.values()) == 5)(c.placement("web")), 60,
                  "h1 drained: web's 5 instances on h2 and h3")
        self.wait(lambda: not any(i["manager"] == "h1" for i in c.instances("web")), 30,
                  "no instance record left on h1")
        self.wait(lambda: h2.status("web")["healthy"] == 5, 15, "5 healthy instances")
        self.assertEqual(h1.instance_processes(), {}, "the drained host runs no instance")
        client.wait_ok(20)
        result = self.stop_client(client)
        self.assertEqual(result["failed"], 0, f"failed requests through h2 during cordon and drain: {result}")

        h2.cli("managers", "uncordon", "h1", check=0)
        self.wait(lambda: {m["name"]: m["state"] for m in h2.managers()}["h1"] == "up", 10, "h1 up again")
        self.assert_one_process_per_record(["web"])


class ScaleToZeroAcrossHostsTest(ClusterTestCase):
    def test_a_request_through_a_host_that_does_not_own_the_endpoint_wakes_it(self):
        """Issue 16 in a cluster: any host's nginx holds the request and wakes
        the endpoint (a wake key in etcd); its owner, on another host,
        launches wherever slots are free; the held request is answered."""
        c = self.start_cluster(slots=4)
        ini = cluster_endpoint_ini(PORT, 0, 1, extra_scaling="idle_timeout = 2s\nwindow = 1s\nscale_down_delay = 1s\n")
        c.hosts[0].manage("zero", ini + "\n[loadbalancer:nginx]\nhold_timeout = 20s\n")
        owner, _ = self.owner_host("zero")
        other = next(h for h in c.hosts if h.name != owner.name)
        live = ("starting", "active", "draining")
        self.wait(lambda: sum(c.placement("zero", states=live).values()) == 0 or None, 30, "zero at zero instances")
        def listening(h):  # a bare TCP connect: no request, so nothing is held
            try:
                ns_connect(h.ns, "127.0.0.1", PORT, 1.0).close()
                return True
            except OSError:
                return None
        for h in c.hosts:
            self.wait(lambda h=h: listening(h), 20, f"{h.name}'s nginx to listen on {PORT}")
        t0 = time.monotonic()
        status, _ = other.get(PORT, timeout=25)
        waited = time.monotonic() - t0
        self.assertEqual(status, 200, f"a request held in {other.name}'s nginx (owner {owner.name}) after {waited:.1f}s")
        self.assertEqual(sum(c.placement("zero").values()), 1, c.placement("zero"))
        log = owner.cli("log", "zero", check=0).stdout
        self.assertIn("woken by", log, log[-2000:])


if __name__ == "__main__":
    unittest.main()
