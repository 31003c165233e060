"""Routes without reloads (issue 14): endpoints added, changed and removed on
a port nginx already listens on are pushed to nginx's lua router, not
reloaded, and a wrk keep-alive client sees no error through 100 of them.
Real reactor-agent, real nginx, real wrk, loopback only."""
import json
import re
import time
import unittest
import urllib.request

from harness import Agent, Backend, control_get, free_port, http_get, start_wrk, wait_until


def static_ini(port, path, backends, balance="round_robin", keepalive=0):
    return f"""[endpoint]
url = http://127.0.0.1:{port}{path}
cloud = static
static_instances = {", ".join(f"127.0.0.1:{b.port}" for b in backends)}

[health]
path = /
interval = 500ms
timeout = 500ms

[loadbalancer:nginx]
balance = {balance}
keepalive = {keepalive}
"""


class RoutingTest(unittest.TestCase):
    def setUp(self):
        self.agent = Agent(self.id().split(".")[-1]).start()
        self.addCleanup(self.agent.cleanup)
        self.backends = [Backend(), Backend()]
        for b in self.backends:
            self.addCleanup(b.stop)

    def reloads(self):
        """Reload events in the agent's log so far."""
        token = self.agent.token()
        req = urllib.request.Request(f"http://127.0.0.1:{self.agent.api_port}/v1/endpoints/_agent/log?after=0",
                                     headers={"Authorization": f"Bearer {token}"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as r:
            events = json.loads(r.read())["events"]
        return sum(1 for e in events if e["kind"] == "reload")

    def test_route_changes_on_a_listened_port_reload_nothing_and_lose_no_request(self):
        a = self.agent
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        a.manage("web", static_ini(port, "/", self.backends))
        a.wait_healthy("web", 2)
        wait_until(lambda: http_get(url)[0] == 200, what="traffic through nginx")
        # The first endpoint on the port was a reload (a new server); wait
        # for it to be counted before taking the baseline.
        time.sleep(0.5)
        baseline = self.reloads()
        nginx_pid = a.nginx_pid()

        wrk = start_wrk(url, duration_s=25, connections=8)
        changes = 0
        balances = ["least_conn", "ip_hash", "round_robin"]
        try:
            time.sleep(0.5)
            i = 0
            while changes < 100:
                step = i % 4
                if step == 0:
                    a.manage(f"x{i}", static_ini(port, f"/x{i}/", self.backends))
                elif step == 1:
                    a.cli("set", "web", "loadbalancer:nginx", "balance", balances[(i // 4) % 3], check=0)
                elif step == 2:
                    a.cli("unmanage", f"x{i - 2}", check=0)
                else:
                    a.cli("set", "web", "loadbalancer:nginx", "keepalive", str(4 * ((i // 4) % 2)), check=0)
                changes += 1
                i += 1
                time.sleep(0.05)
        finally:
            out, _ = wrk.communicate(timeout=90)
        self.assertEqual(changes, 100)
        self.assertRegex(out, r"Requests/sec")
        self.assertNotIn("Socket errors", out, out)
        self.assertNotIn("Non-2xx", out, out)
        m = re.search(r"(\d+) requests in", out)
        self.assertIsNotNone(m, out)
        self.assertGreater(int(m.group(1)), 500, out)

        # The changes took effect, without a reload: nginx's route table for
        # the port (read from its control socket) is the final state.
        a.manage("last", static_ini(port, "/last/", self.backends[:1]))
        routes = lambda: control_get(a.prefix, f"/routes?listen=127.0.0.1:{port}") or ""
        wait_until(lambda: "last /last/ round_robin 0 -" in routes(), timeout=15, what="the last route in nginx")
        wait_until(lambda: "x96" not in routes(), timeout=20, what="x96's route removed")
        self.assertIn("web / least_conn 0 -", routes())
        self.assertNotIn("x0 ", routes())
        # And requests follow it: /last/ reaches a backend (its 404 page,
        # not nginx's), an unknown port path too (via web at "/").
        # (Its route is in nginx at once; its static instance joins once its
        # first health check passes.)
        wait_until(lambda: "File not found" in http_get(f"http://127.0.0.1:{port}/last/")[1], timeout=10,
                   what="/last/ served by its backend")
        self.assertEqual(self.reloads(), baseline, "route changes on a listened port must not reload nginx")
        self.assertEqual(a.nginx_pid(), nginx_pid)

        # A new port is a reload, and served.
        other = free_port()
        a.manage("other", static_ini(other, "/", self.backends))
        wait_until(lambda: http_get(f"http://127.0.0.1:{other}/")[0] == 200, timeout=15, what="the new port served")
        wait_until(lambda: self.reloads() == baseline + 1, timeout=5, what="one reload for the new port")


if __name__ == "__main__":
    unittest.main()
