"""Metrics from nginx end to end: traffic through the agent's nginx shows up
in `reactor get-metrics` (per-instance averages and per-backend counters),
custom metrics pushed with `reactor set-metrics` appear and are validated,
and `reactor metrics parse` reads the agent's own access log."""
import glob
import json
import os
import unittest

from harness import Agent, Backend, free_port, http_get, wait_until


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.agent = Agent(self.id().split(".")[-1]).start()
        self.addCleanup(self.agent.cleanup)
        self.backends = [Backend(), Backend()]
        for b in self.backends:
            self.addCleanup(b.stop)
        self.port = free_port()
        addrs = ", ".join(f"127.0.0.1:{b.port}" for b in self.backends)
        self.agent.manage("web", f"""[endpoint]
url = http://127.0.0.1:{self.port}/
cloud = static
static_instances = {addrs}

[scaling]
min_instances = 2
max_instances = 2
window = 5s

[health]
interval = 500ms
timeout = 400ms
""")
        self.agent.wait_healthy("web", 2)
        wait_until(lambda: http_get(f"http://127.0.0.1:{self.port}/")[0] == 200, what="traffic through nginx")

    def get_metrics(self, *flags):
        r = self.agent.cli("get-metrics", "web", "--json", *flags, check=0)
        return json.loads(r.stdout)

    def test_traffic_shows_in_get_metrics(self):
        for _ in range(40):
            http_get(f"http://127.0.0.1:{self.port}/")

        def counted():
            m = self.get_metrics("--instances")
            hits = sum(b["hits"] for b in m["backends"].values())
            return m if hits >= 40 else None

        m = wait_until(counted, timeout=10, what="requests counted")
        self.assertEqual(m["endpoint"], "web")
        self.assertEqual(m["instances"], 2)
        self.assertEqual(m["window_s"], 5)
        self.assertEqual(m["log"], "")
        self.assertGreater(m["metrics"]["rate"], 0)
        self.assertGreater(m["metrics"]["bytes"], 0)
        self.assertEqual(m["metrics"]["errors"], 0)
        for k in ("response", "active", "response.p50", "response.p95", "response.p99"):
            self.assertIn(k, m["metrics"])
        for b in self.backends:
            self.assertTrue(m["backends"][f"127.0.0.1:{b.port}"]["in_service"])

    def test_custom_metrics_round_trip_and_validation(self):
        self.agent.cli("set-metrics", "web", "queue_depth=42", "lag=800ms", "--ttl", "30s", check=0)
        m = self.get_metrics()
        self.assertEqual(m["metrics"]["queue_depth"], 42)
        self.assertAlmostEqual(m["metrics"]["lag"], 0.8)
        self.assertEqual(self.agent.cli("set-metrics", "web", "rate=1").returncode, 2)
        self.assertEqual(self.agent.cli("set-metrics", "web", "x=-1").returncode, 2)
        self.assertEqual(self.agent.cli("set-metrics", "nope", "x=1").returncode, 2)
        self.assertEqual(self.agent.cli("get-metrics", "nope").returncode, 2)

    def test_metrics_parse_reads_the_agents_log(self):
        for _ in range(10):
            http_get(f"http://127.0.0.1:{self.port}/")
        logs = [p for p in glob.glob(os.path.join(self.agent.prefix, "**", "*.log"), recursive=True)
                if "access" in os.path.basename(p)]
        self.assertTrue(logs, "no access log under the nginx prefix")

        def parsed():
            r = self.agent.cli("metrics", "parse", *logs, check=0)
            out = json.loads(r.stdout)
            hits = sum(b["hits"] for b in out.get("web", {}).values())
            return out if hits >= 10 else None

        out = wait_until(parsed, timeout=10, what="lines in the access log")
        for totals in out["web"].values():
            self.assertEqual(set(totals), {"hits", "bytes", "errors", "response_sum"})
        fmt = self.agent.cli("metrics", "log-format", check=0).stdout.strip()
        self.assertTrue(fmt.startswith("$msec|$proxy_host|"))


if __name__ == "__main__":
    unittest.main()
