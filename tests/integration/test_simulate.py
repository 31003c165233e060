"""`reactor simulate` on an access log written by the agent's own nginx: a
real agent (with its nginx) serves a static endpoint, the test sends a known
number of requests in two bursts, and simulate reads the agent's access log
with the same parser the agent uses, buckets it per second and scales by the
rules on it."""
import concurrent.futures
import csv
import glob
import json
import os
import subprocess
import time
import unittest

from harness import BIN, Agent, Backend, free_port, http_get, wait_until


def reactor(*args):
    return subprocess.run([os.path.join(BIN, "reactor"), *args], capture_output=True, text=True, timeout=60)


class SimulateOnAgentLogTest(unittest.TestCase):
    def setUp(self):
        self.agent = Agent("simulate").start()
        self.addCleanup(self.agent.cleanup)
        self.backend = Backend()
        self.addCleanup(self.backend.stop)
        self.port = free_port()
        self.agent.manage("web", f"""[endpoint]
url = http://127.0.0.1:{self.port}/
cloud = static
static_instances = 127.0.0.1:{self.backend.port}

[health]
interval = 500ms
timeout = 400ms
""")
        self.agent.wait_healthy("web", 1)
        wait_until(lambda: http_get(f"http://127.0.0.1:{self.port}/")[0] == 200, what="traffic through nginx")

    def access_log(self):
        logs = [p for p in glob.glob(os.path.join(self.agent.prefix, "**", "*.log"), recursive=True)
                if "access" in os.path.basename(p)]
        self.assertEqual(len(logs), 1, f"one access log under the nginx prefix: {logs}")
        return logs[0]

    def web_lines(self, path):
        with open(path) as f:
            return sum(1 for line in f if "|reactor_web|" in line)

    def test_simulate_reads_the_agents_access_log(self):
        url = f"http://127.0.0.1:{self.port}/"
        log = self.access_log()
        before = self.web_lines(log)
        # A quiet start, then two bursts a few seconds apart: 60 requests, a
        # pause, 90 requests.
        for _ in range(3):
            self.assertEqual(http_get(url)[0], 200)
        time.sleep(2.5)
        for n in (60, 90):
            # Four clients at once, so that a burst lands in a second or two
            # even on a slow machine.
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                statuses = list(pool.map(lambda _: http_get(url)[0], range(n)))
            self.assertEqual(statuses, [200] * n)
            time.sleep(3)
        wait_until(lambda: self.web_lines(log) >= before + 153, timeout=10, what="153 lines in the access log")
        total = self.web_lines(log)

        out_dir = self.agent.dir
        csv_path = os.path.join(out_dir, "timeline.csv")
        svg_path = os.path.join(out_dir, "chart.svg")
        r = reactor("simulate", "--rules", "5 < rate < 20", "--trace", log, "--log-endpoint", "web",
                    "--capacity", "20", "--start-delay", "2s", "--max", "20", "--initial", "1", "--json",
                    "--csv", csv_path, "--svg", svg_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        summary = json.loads(r.stdout)
        self.assertEqual(list(summary), ["seconds", "overload_seconds", "instance_seconds",
                                         "oracle_instance_seconds", "cost_ratio", "scale_ups", "scale_downs",
                                         "max_instances"])
        # The first and last lines are more than 2.5 s + 3 s apart: at least 6 seconds.
        self.assertGreaterEqual(summary["seconds"], 6, "the trace spans the pauses of 2.5 s and 3 s")
        self.assertGreaterEqual(summary["max_instances"], 1)
        self.assertGreater(summary["oracle_instance_seconds"], 0)

        with open(csv_path) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), summary["seconds"])
        self.assertEqual(sum(float(row["load"]) for row in rows), total,
                         "every request of the endpoint in the log is counted once")
        # The response times nginx logged are in the trace: the model's base
        # is their mean, so served seconds have a response.
        self.assertTrue(any(row["response"] for row in rows if float(row["load"]) > 0))
        # A burst of 60 requests from four clients lands in a second or two,
        # which breaks `rate < 20` on one instance: the policy scales up.
        self.assertGreaterEqual(max(float(row["load"]) for row in rows), 20)
        self.assertGreaterEqual(summary["scale_ups"], 1)
        with open(svg_path) as f:
            self.assertTrue(f.read().startswith("<svg xmlns=\"http://www.w3.org/2000/svg\""))

        # The same log with a malformed line appended: exit 2 naming its line.
        broken = os.path.join(out_dir, "broken.log")
        with open(log) as src, open(broken, "w") as dst:
            lines = src.read()
            dst.write(lines + "this is not an access log line\n")
        r = reactor("simulate", "--rules", "5 < rate < 20", "--trace", broken)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"line {lines.count(chr(10)) + 1}:", r.stderr)

        # --compare runs a second rule set on the same log, side by side.
        r = reactor("simulate", "--rules", "5 < rate < 20", "--compare", "1 < rate < 10", "--trace", log,
                    "--log-endpoint", "web")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("5 < rate < 20", r.stdout)
        self.assertIn("1 < rate < 10", r.stdout)
        self.assertIn("cost_ratio", r.stdout)


if __name__ == "__main__":
    unittest.main()
