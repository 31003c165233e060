"""A wedged nginx never stalls the agent (issue 10): with the agent's nginx
stopped by SIGSTOP for 10 s while traffic runs and every endpoint's members
change, the API answers within 1 s throughout, the loop keeps petting the
systemd watchdog (a notify socket stands in for systemd), and serving
resumes with the new members after SIGCONT. Real agent, nginx, wrk."""
import os
import signal
import socket
import threading
import time
import unittest

from harness import Agent, Backend, control_get, free_port, http_get, start_wrk, wait_until

ENDPOINTS = 12  # × the old 3 s control timeout each = a stall past WatchdogSec=30s


def static_ini(port, path, backends):
    return f"""[endpoint]
url = http://127.0.0.1:{port}{path}
cloud = static
static_instances = {", ".join(f"127.0.0.1:{b.port}" for b in backends)}

[health]
path = /
interval = 500ms
timeout = 500ms
fall = 1
"""


class NotifySocket:
    """Receives sd_notify datagrams like systemd would; records when each
    WATCHDOG=1 arrived."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.pings = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if b"WATCHDOG=1" in data:
                self.pings.append(time.monotonic())

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()

    def max_gap(self, since, until):
        times = [since] + [t for t in self.pings if since <= t <= until] + [until]
        return max(b - a for a, b in zip(times, times[1:]))


class NginxFaultTest(unittest.TestCase):
    def test_stopped_nginx_for_10s_stalls_neither_api_nor_loop_and_serving_resumes(self):
        agent = Agent(self.id().split(".")[-1])
        self.addCleanup(agent.cleanup)
        notify = NotifySocket(os.path.join(agent.dir, "notify.sock"))
        self.addCleanup(notify.close)
        os.environ["NOTIFY_SOCKET"] = notify.path
        try:
            agent.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        keep, lose = Backend(), Backend()
        self.addCleanup(keep.stop)
        self.addCleanup(lose.stop)
        port = free_port()
        for i in range(ENDPOINTS):
            agent.manage(f"e{i}", static_ini(port, "/" if i == 0 else f"/e{i}/", [keep, lose]))
        for i in range(ENDPOINTS):
            agent.wait_healthy(f"e{i}", 2, timeout=30)
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: http_get(url)[0] == 200, what="traffic through nginx")
        nginx = agent.nginx_pid()
        self.assertGreater(nginx, 0)

        wrk = start_wrk(url, duration_s=16, connections=4)
        self.addCleanup(lambda: wrk.poll() is None and wrk.kill())
        time.sleep(1)
        os.killpg(nginx, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            # Every endpoint's members change while nginx cannot answer.
            lose.stop()
            slowest = 0.0
            answers = 0
            token = agent.token()
            while time.monotonic() - stopped_at < 10:
                t = time.monotonic()
                status, _ = http_get(f"http://127.0.0.1:{agent.api_port}/v1/endpoints", timeout=5,
                                     headers={"Authorization": f"Bearer {token}"})
                took = time.monotonic() - t
                self.assertEqual(status, 200)
                slowest = max(slowest, took)
                answers += 1
                time.sleep(0.1)
            # The loop ran its rounds: the health checker's verdict reached status.
            statuses = [agent.status(f"e{i}") for i in range(ENDPOINTS)]
        finally:
            os.killpg(nginx, signal.SIGCONT)
        resumed_at = time.monotonic()
        self.assertLess(slowest, 1.0, f"the API took {slowest:.2f} s to answer with nginx stopped")
        self.assertGreater(answers, 50)
        self.assertTrue(all(s["healthy"] == 1 for s in statuses), statuses)
        gap = notify.max_gap(stopped_at, resumed_at)
        self.assertLess(gap, 5.0, f"the loop did not pet the watchdog for {gap:.1f} s")
        self.assertTrue(agent.proc.poll() is None, "the agent is still running")

        # Serving resumes, with the new members (only `keep`) pushed to nginx.
        expected = f"127.0.0.1:{keep.port}=1"
        wait_until(lambda: all(control_get(agent.prefix, f"/members/e{i}") == expected for i in range(ENDPOINTS)),
                   timeout=10, what="the new member lists in nginx after SIGCONT")
        wait_until(lambda: http_get(url)[1].strip() == f"backend {keep.port}", timeout=10,
                   what="serving after SIGCONT")
        out, _ = wrk.communicate(timeout=60)
        self.assertRegex(out, r"Requests/sec")
        self.assertEqual(agent.nginx_pid(), nginx, "the stopped nginx was resumed, not replaced")


if __name__ == "__main__":
    unittest.main()
