"""GET /metrics against the real agent: Prometheus text that `promtool check
metrics` accepts, the token rule (and [agent] metrics_without_token), counters
that follow real traffic through nginx, and a real Prometheus server on
loopback that scrapes the agent with authorization.credentials_file and
answers a PromQL query for reactor_endpoint_instances with the right value.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from harness import SRC, Agent, free_port, http_get, kill_group_and_wait, process_endpoint_ini, wait_until

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def parse_samples(text):
    """{(name, frozenset(labels.items())): value} of a text exposition."""
    out = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        if not m:
            raise AssertionError(f"not an exposition line: {line!r}")
        labels = frozenset(label_re.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


class MetricsEndpointTest(unittest.TestCase):
    def setUp(self):
        self.agent = Agent("prometheus").start()
        self.addCleanup(self.agent.cleanup)
        self.port = free_port()
        self.agent.manage("web", process_endpoint_ini(self.port, min_instances=2, max_instances=2))
        self.agent.wait_healthy("web", 2, timeout=30)
        # Healthy is not yet served: a new port waits out reload_delay and a reload.
        wait_until(lambda: http_get(f"http://127.0.0.1:{self.port}/")[0] == 200, what="traffic through nginx")

    def metrics(self, token=True):
        headers = {"Authorization": f"Bearer {self.agent.token()}"} if token else {}
        return http_get(f"http://127.0.0.1:{self.agent.api_port}/metrics", headers=headers)

    def test_metrics_pass_promtool_and_follow_traffic(self):
        if not PROMTOOL:
            self.fail("promtool is not installed (Debian package prometheus; run packaging/install-deps.sh)")
        for _ in range(20):
            self.assertEqual(http_get(f"http://127.0.0.1:{self.port}/")[0], 200)

        def counted():
            status, body = self.metrics()
            self.assertEqual(status, 200, body)
            s = parse_samples(body)
            return s if (sample(s, "reactor_endpoint_requests_total", endpoint="web", code="2xx") or 0) >= 20 else None
        s = wait_until(counted, timeout=10, what="20 requests counted in reactor_endpoint_requests_total")

        status, body = self.metrics()
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertEqual((check.stdout + check.stderr).strip(), "", "promtool lint findings")

        self.assertEqual(sample(s, "reactor_endpoint_instances", endpoint="web", state="active"), 2)
        self.assertEqual(sample(s, "reactor_endpoint_instances", endpoint="web", state="draining"), 0)
        self.assertEqual(sample(s, "reactor_endpoint_desired_instances", endpoint="web"), 2)
        self.assertEqual(sample(s, "reactor_endpoint_min_instances", endpoint="web"), 2)
        self.assertEqual(sample(s, "reactor_endpoint_max_instances", endpoint="web"), 2)
        self.assertEqual(sample(s, "reactor_endpoint_requests_total", endpoint="web", code="5xx"), 0)
        count = sample(s, "reactor_endpoint_request_duration_seconds_count", endpoint="web")
        self.assertGreaterEqual(count, 20)
        self.assertEqual(sample(s, "reactor_endpoint_request_duration_seconds_bucket", endpoint="web", le="+Inf"), count)
        self.assertGreater(sample(s, "reactor_endpoint_response_bytes_total", endpoint="web"), 0)
        self.assertIsNotNone(sample(s, "reactor_endpoint_rule_metric", endpoint="web", metric="rate"))
        self.assertEqual(sample(s, "reactor_endpoint_state", endpoint="web", state="running"), 1)
        self.assertGreaterEqual(sample(s, "reactor_health_checks_total", endpoint="web", result="success"), 2)
        self.assertGreaterEqual(sample(s, "reactor_endpoint_scale_events_total", endpoint="web", direction="up"), 2)
        self.assertGreaterEqual(sample(s, "reactor_nginx_reloads_total", result="ok"), 1)
        self.assertEqual(sample(s, "reactor_store_errors_total"), 0)
        mgr = f"it-prometheus"
        self.assertEqual(sample(s, "reactor_manager_slots", manager=mgr, kind="total"), 1000)
        self.assertEqual(sample(s, "reactor_manager_slots", manager=mgr, kind="used"), 2)
        self.assertEqual(sample(s, "reactor_build_info", version=json.loads(
            http_get(f"http://127.0.0.1:{self.agent.api_port}/v1/health",
                     headers={"Authorization": f"Bearer {self.agent.token()}"})[1])["version"]), 1)
        ups = {k: v for k, v in s.items() if k[0] == "reactor_instance_up"}
        self.assertEqual(len(ups), 2)
        self.assertTrue(all(v == 1 for v in ups.values()))
        self.assertTrue(all(dict(k[1])["manager"] == mgr for k in ups))

    def test_metrics_need_the_token(self):
        status, body = self.metrics(token=False)
        self.assertEqual(status, 401, body)
        self.assertIn("token", json.loads(body)["error"])

    def test_real_prometheus_scrapes_with_the_token_file(self):
        if not PROMETHEUS:
            self.fail("prometheus is not installed (Debian package prometheus; run packaging/install-deps.sh)")
        d = tempfile.mkdtemp(prefix="reactor-prom-")
        self.addCleanup(shutil.rmtree, d, True)
        web_port = free_port()
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: reactor
    static_configs:
      - targets: ['127.0.0.1:{self.agent.api_port}']
    authorization:
      type: Bearer
      credentials_file: {self.agent.token_file}
""")
        log = open(os.path.join(d, "prometheus.log"), "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([PROMETHEUS, f"--config.file={d}/prometheus.yml", f"--storage.tsdb.path={d}/data",
                                 f"--web.listen-address=127.0.0.1:{web_port}", "--log.level=warn"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.addCleanup(proc.wait, 10)
        self.addCleanup(kill_group_and_wait, proc.pid, signal.SIGKILL)
        base = f"http://127.0.0.1:{web_port}"
        wait_until(lambda: proc.poll() is not None or http_get(base + "/-/ready")[0] == 200, timeout=30,
                   what="prometheus ready")
        self.assertIsNone(proc.poll(), "prometheus exited")

        def query(q):
            status, body = http_get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
            if status != 200:
                return None
            r = json.loads(body)["data"]["result"]
            return r
        q = 'reactor_endpoint_instances{job="reactor",endpoint="web",state="active"}'
        result = wait_until(lambda: query(q) or None, timeout=30, what="prometheus to scrape the agent")
        self.assertEqual(len(result), 1, result)
        self.assertEqual(result[0]["value"][1], "2")
        up = query('up{job="reactor"}')
        self.assertEqual(up[0]["value"][1], "1")

        # Every query of the packaged Grafana dashboard is valid PromQL that
        # this Prometheus evaluates, and the instance panel shows the endpoint.
        with open(os.path.join(SRC, "packaging", "grafana-dashboard.json")) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        self.assertGreaterEqual(len(exprs), 10)
        for e in exprs:
            e = e.replace("$__rate_interval", "1m").replace("$endpoint", ".*")
            status, body = http_get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": e}))
            self.assertEqual(status, 200, f"{e}: {body}")
            self.assertEqual(json.loads(body)["status"], "success", e)
        healthy = [t["expr"] for p in dash["panels"] for t in p["targets"] if "healthy" in t["legendFormat"]][0]
        r = query(healthy.replace("$endpoint", "web"))
        self.assertEqual(r[0]["value"][1], "2")

        # The answer follows a change: scale to 3.
        self.agent.cli("set", "web", "scaling", "max_instances", "3", check=0)
        self.agent.cli("set", "web", "scaling", "min_instances", "3", check=0)
        self.agent.wait_healthy("web", 3, timeout=30)
        wait_until(lambda: (lambda r: r and r[0]["value"][1] == "3")(query(q)), timeout=20,
                   what="prometheus to see 3 active instances")


class MetricsWithoutTokenTest(unittest.TestCase):
    def test_metrics_without_token_opens_only_metrics(self):
        agent = Agent("prometheus_open", extra_conf="metrics_without_token = true").start()
        self.addCleanup(agent.cleanup)
        status, body = http_get(f"http://127.0.0.1:{agent.api_port}/metrics")
        self.assertEqual(status, 200, body)
        self.assertIn("# TYPE reactor_build_info gauge", body)
        self.assertEqual(http_get(f"http://127.0.0.1:{agent.api_port}/v1/endpoints")[0], 401)


if __name__ == "__main__":
    unittest.main()
