"""Scale to zero end to end: a real agent, its nginx (lua router) and
process instances (python http.server) on loopback.

An idle endpoint with min_instances = 0 drains to zero with no error for a
client that stopped; 50 concurrent requests at zero are held in nginx, wake
the endpoint once and all get 200; an instance that never becomes healthy
gives 503 with Retry-After after hold_timeout while its launches back off;
a stopped endpoint, and a request beyond hold_max, get 503 at once (and
stopping an endpoint answers the requests it held)."""
import concurrent.futures
import re
import socket
import time
import unittest
import urllib.error
import urllib.request

from harness import PYTHON, Agent, control_get, free_port, http_get, process_app_command, wait_until

WOKEN = re.compile(r"woken by (\d+) held requests?")


def zero_ini(port, command=None, hold_timeout="30s", hold_max=1000, idle_timeout="3s", max_instances=1):
    return f"""[endpoint]
url = http://127.0.0.1:{port}/
cloud = process

[scaling]
min_instances = 0
max_instances = {max_instances}
idle_timeout = {idle_timeout}
window = 1s
scale_down_delay = 1s
drain_timeout = 10s

[health]
path = /
interval = 500ms
timeout = 500ms

[cloud:process]
command = {command or process_app_command()}
working_dir = /tmp

[loadbalancer:nginx]
hold_timeout = {hold_timeout}
hold_max = {hold_max}
"""


def timed_get(url, timeout=40.0):
    """(status, seconds taken, headers) of one GET; status 0 on a failed connection."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    start = time.monotonic()
    try:
        with opener.open(url, timeout=timeout) as r:
            r.read()
            return r.status, time.monotonic() - start, dict(r.headers)
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, time.monotonic() - start, dict(e.headers)
    except OSError:
        return 0, time.monotonic() - start, {}


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def hold_stats(agent, endpoint):
    """nginx's hold statistics of one endpoint (GET /holds on the control
    socket): {"held", "wakes", "served", "timeout", "rejected"}."""
    body = control_get(agent.prefix, "/holds") or ""
    for line in body.splitlines()[1:]:
        f = line.split()
        if f and f[0] == endpoint:
            return dict(zip(["held", "wakes", "served", "timeout", "rejected"], map(int, f[1:6])))
    return {"held": 0, "wakes": 0, "served": 0, "timeout": 0, "rejected": 0}


class ScaleToZeroTest(unittest.TestCase):
    def setUp(self):
        self.agent = Agent("scale-to-zero").start()
        self.addCleanup(self.agent.cleanup)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"

    def route(self):
        return control_get(self.agent.prefix, f"/routes?listen=127.0.0.1:{self.port}") or ""

    def wait_route(self, pattern, what):
        wait_until(lambda: re.search(pattern, self.route(), re.M), timeout=15, what=what)
        # A new port is a reload after the route push: wait until nginx listens.
        wait_until(lambda: listening(self.port), timeout=15, what="nginx listening on the port")

    def woken_events(self):
        return [int(n) for n in WOKEN.findall(self.agent.events("web"))]

    def test_idle_endpoint_scales_to_zero_and_fifty_held_requests_wake_it_once(self):
        a = self.agent
        a.manage("web", zero_ini(self.port))
        # A new endpoint with min_instances = 0 starts at zero, holding.
        self.wait_route(r"^web / round_robin 0 - 30000 1000$", "the route with its hold")
        st = a.status("web")
        self.assertEqual((st["instances"], st["phase"]), (0, "scaled to zero"), st)
        self.assertIn("state:      running (scaled to zero)", a.cli("status", "web", check=0).stdout)

        # The first request wakes it.
        status, took, _ = timed_get(self.url)
        self.assertEqual(status, 200)
        self.assertEqual(self.woken_events(), [1])
        # A client that keeps asking, then stops: every answer 200.
        answers = [timed_get(self.url, timeout=10)[0] for _ in range(20)]
        self.assertEqual(answers, [200] * 20)
        wait_until(lambda: a.status("web")["instances"] == 0 and a.status("web")["draining"] == 0,
                   timeout=20, what="idle_timeout to drain the endpoint to zero")
        self.assertIn("no request for idle_timeout 3s: scaling to zero", a.events("web"))
        self.assertEqual(a.instance_pids(), [], "the instance's process is gone")
        self.assertEqual(a.status("web")["phase"], "scaled to zero")

        # 50 concurrent requests at zero: all held, one wake, all 200.
        before = hold_stats(a, "web")
        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(lambda _: timed_get(self.url), range(50)))
        self.assertEqual([r[0] for r in results], [200] * 50, results)
        after = hold_stats(a, "web")
        self.assertEqual(after["wakes"] - before["wakes"], 1, "nginx woke the agent once, not per request")
        self.assertGreaterEqual(after["served"] - before["served"], 45, "the requests were held, then served")
        woken = self.woken_events()
        self.assertEqual(len(woken), 2, f"exactly one wake-up event for the 50: {woken}")
        self.assertGreaterEqual(woken[-1], 1)
        self.assertEqual(after["held"], 0)
        self.assertLess(max(r[1] for r in results), 15, "held only while the instance started")

        # Visible in /metrics: held requests and their wait.
        status, body = http_get(f"http://127.0.0.1:{a.api_port}/metrics",
                                headers={"Authorization": f"Bearer {a.token()}"})
        self.assertEqual(status, 200)
        served = re.search(r'^reactor_endpoint_held_requests_total\{endpoint="web",result="served"\} (\d+)$',
                           body, re.M)
        self.assertTrue(served, body[-3000:])
        self.assertGreaterEqual(int(served.group(1)), 46)
        self.assertRegex(body, r'(?m)^reactor_endpoint_wakeups_total\{endpoint="web"\} 2$')
        self.assertRegex(body, r'(?m)^reactor_endpoint_hold_wait_seconds_bucket\{endpoint="web",le="\+Inf"\} \d+$')
        self.assertRegex(body, r'(?m)^reactor_endpoint_hold_wait_seconds_count\{endpoint="web"\} \d+$')

    def test_a_burst_of_held_requests_starts_more_than_one_instance(self):
        a = self.agent
        ini = zero_ini(self.port, max_instances=3).replace("idle_timeout = 3s", "idle_timeout = 3s\nrules = active < 10")
        a.manage("web", ini)
        self.wait_route(r"^web / round_robin 0 - 30000 1000$", "the route with its hold")
        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(lambda _: timed_get(self.url), range(50)))
        self.assertEqual([r[0] for r in results], [200] * 50, results)
        # 50 held connections with `active < 10` call for 6: max_instances 3.
        launched = sum(int(n) for n in re.findall(r"held requests?(?: waiting)? → target \d+ \(min 0, max 3\): launching (\d+)",
                                                  a.events("web")))
        self.assertGreaterEqual(launched, 2, a.events("web"))
        self.assertEqual(len(self.woken_events()), 1, a.events("web"))

    def launch_times(self):
        """Seconds (of the day) of each instance launch in the endpoint's log."""
        out = []
        for m in re.finditer(r"(?m)^\S+ (\d+):(\d+):([\d.]+)\s+launch\s+started instance", self.agent.events("web")):
            out.append(int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)))
        return out

    def test_instance_that_never_becomes_healthy_gets_503_after_hold_timeout_and_backs_off(self):
        a = self.agent
        a.manage("web", zero_ini(self.port, command=f"{PYTHON} -c 'import sys; sys.exit(3)'", hold_timeout="4s"))
        self.wait_route(r"^web / round_robin 0 - 4000 1000$", "the route with a 4 s hold")
        status, took, headers = timed_get(self.url)
        self.assertEqual(status, 503)
        self.assertGreaterEqual(took, 3.9, "held for hold_timeout")
        self.assertLess(took, 8)
        self.assertEqual(headers.get("Retry-After"), "4")
        self.assertEqual(hold_stats(a, "web")["timeout"], 1)
        self.assertIn("exited with code 3", a.events("web"))
        # While the request waited, each launch failed and the next waited
        # longer (1 s, then 2 s): a handful of launches, not one a round.
        times = self.launch_times()
        self.assertGreaterEqual(len(times), 2, a.events("web"))
        self.assertLessEqual(len(times), 4, a.events("web"))
        gaps = [b - a_ for a_, b in zip(times, times[1:])]
        self.assertGreaterEqual(gaps[0], 0.9, f"backoff after the first failure: {gaps}")
        if len(gaps) > 1:
            self.assertGreaterEqual(gaps[1], 1.9, f"a longer backoff after the second: {gaps}")
        # Once nobody waits, nothing is launched any more.
        time.sleep(4)
        self.assertLessEqual(len(self.launch_times()), len(times) + 1, a.events("web"))
        self.assertEqual(a.status("web")["instances"], 0)

    def test_stopped_endpoint_answers_503_at_once_and_releases_what_it_held(self):
        a = self.agent
        a.manage("web", zero_ini(self.port, command=f"{PYTHON} -c 'import sys; sys.exit(3)'"))
        self.wait_route(r"^web / round_robin 0 - 30000 1000$", "the route with its hold")
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            held = pool.submit(timed_get, self.url)
            wait_until(lambda: hold_stats(a, "web")["held"] == 1, timeout=5, what="a request held")
            a.cli("stop", "web", check=0)
            self.wait_route(r"^web / round_robin 0 -$", "the route without a hold once stopped")
            status, took, _ = held.result(timeout=20)
        self.assertEqual(status, 503)
        self.assertLess(took, 10, "the held request is answered once the endpoint stops, not after 30 s")
        wakes = hold_stats(a, "web")["wakes"]
        status, took, _ = timed_get(self.url)
        self.assertEqual(status, 503)
        self.assertLess(took, 1.0, "no hold for a stopped endpoint")
        self.assertEqual(hold_stats(a, "web")["wakes"], wakes, "and no wake")
        a.cli("start", "web", check=0)
        self.wait_route(r"^web / round_robin 0 - 30000 1000$", "the hold back once started")

    def test_requests_beyond_hold_max_get_503_at_once(self):
        a = self.agent
        a.manage("web", zero_ini(self.port, command=f"{PYTHON} -c 'import sys; sys.exit(3)'",
                                 hold_timeout="4s", hold_max=2))
        self.wait_route(r"^web / round_robin 0 - 4000 2$", "the route holding at most 2")
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            held = [pool.submit(timed_get, self.url) for _ in range(2)]
            wait_until(lambda: hold_stats(a, "web")["held"] == 2, timeout=5, what="two requests held")
            status, took, headers = timed_get(self.url)
            self.assertEqual(status, 503)
            self.assertLess(took, 1.0, "beyond hold_max: at once")
            self.assertEqual(headers.get("Retry-After"), "1")
            self.assertEqual([f.result(timeout=30)[0] for f in held], [503, 503])
        stats = hold_stats(a, "web")
        self.assertEqual((stats["rejected"], stats["timeout"], stats["held"]), (1, 2, 0), stats)


if __name__ == "__main__":
    unittest.main()
