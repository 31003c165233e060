"""The API's live event stream (Server-Sent Events) against the real agent:
`reactor log NAME --follow` clients read it without starving the API, the
number of open streams is capped with a clear 503 beyond the cap, events
arrive as they are recorded, and the agent stops promptly with streams open.
"""
import json
import os
import socket
import subprocess
import time
import unittest

from harness import BIN, Agent, Backend, free_port, wait_until

STREAM_CAP = 64  # ApiContext::stream_cap


def static_ini(port, backend):
    return f"""[endpoint]
url = http://127.0.0.1:{port}/
cloud = static
static_instances = 127.0.0.1:{backend}

[health]
path = /
interval = 500ms
timeout = 500ms
"""


class RawStream:
    """One GET /v1/stream on a plain socket: the status line and headers are
    read at once; the body is left to arrive."""

    def __init__(self, agent, query, token=None):
        self.sock = socket.create_connection(("127.0.0.1", agent.api_port), timeout=5)
        tok = agent.token() if token is None else token
        self.sock.sendall(f"GET /v1/stream?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"Authorization: Bearer {tok}\r\nAccept: text/event-stream\r\n\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}

    def read_until(self, needle, timeout):
        deadline = time.monotonic() + timeout
        while needle not in self.buf and time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            self.buf += chunk
        return needle in self.buf

    def close(self):
        self.sock.close()


class EventStreamTest(unittest.TestCase):
    def setUp(self):
        self.backend = Backend()
        self.addCleanup(self.backend.stop)
        self.agent = Agent("event_stream").start()
        self.addCleanup(self.agent.cleanup)
        self.port = free_port()
        self.agent.manage("web", static_ini(self.port, self.backend.port))
        self.agent.wait_healthy("web", 1)
        self.followers = []
        self.addCleanup(self.stop_followers)

    def stop_followers(self):
        for p in self.followers:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
            p.stdout.close()
        self.followers = []

    def follower(self, name="web"):
        env = dict(os.environ, REACTOR_API=f"127.0.0.1:{self.agent.api_port}")
        env.pop("REACTOR_TOKEN", None)
        out = open(os.path.join(self.agent.dir, f"follower-{len(self.followers)}.out"), "w+")
        p = subprocess.Popen([os.path.join(BIN, "reactor"), "--token-file", self.agent.token_file,
                              "log", name, "--follow"], stdout=out, stderr=subprocess.STDOUT, env=env)
        p.stdout = out
        self.followers.append(p)
        return p

    @staticmethod
    def output(p):
        p.stdout.flush()
        with open(p.stdout.name) as f:
            return f.read()

    def timed_list(self):
        t0 = time.monotonic()
        r = self.agent.cli("list", check=0, timeout=10)
        elapsed = time.monotonic() - t0
        self.assertIn("web", r.stdout)
        return elapsed

    def test_fifty_followers_do_not_starve_the_api_and_beyond_the_cap_is_503(self):
        a = self.agent
        for _ in range(50):
            self.follower()
        # Every follower is on the stream once it prints an event recorded
        # after it started.
        a.cli("set", "web", "scaling", "scale_down_delay", "31s", check=0)
        wait_until(lambda: all("scale_down_delay = 31s" in self.output(p) for p in self.followers),
                   timeout=20, what="all 50 followers to print the new event")
        self.assertTrue(all(p.poll() is None for p in self.followers))

        times = [self.timed_list() for _ in range(5)]
        self.assertLess(max(times), 1.0, f"reactor list took {times} s with 50 followers")

        # Fill the cap with raw streams; the next stream and the next long
        # poll are refused at once with 503 and a reason.
        raws = []
        try:
            while len(raws) < STREAM_CAP - 50:
                s = RawStream(a, "log=web")
                raws.append(s)
                self.assertEqual(s.status, 200, s.buf)
                self.assertEqual(s.headers.get("content-type"), "text/event-stream")
            over = RawStream(a, "log=web")
            self.assertEqual(over.status, 503)
            self.assertTrue(over.read_until(b"}", 5))
            body = json.loads(over.buf.decode().strip().splitlines()[-1])
            self.assertIn("too many open event streams", body["error"])
            self.assertIn(str(STREAM_CAP), body["error"])
            self.assertEqual(over.headers.get("retry-after"), "5")
            over.close()

            t0 = time.monotonic()
            f = self.follower()
            rc = f.wait(timeout=10)
            self.assertLess(time.monotonic() - t0, 5)
            self.assertEqual(rc, 1)
            self.assertIn("too many open event streams", self.output(f))

            from harness import http_get
            status, body = http_get(f"http://127.0.0.1:{a.api_port}/v1/endpoints/web/log?after=0&wait=5000",
                                    headers={"Authorization": f"Bearer {a.token()}"})
            self.assertEqual(status, 503, body)

            times = [self.timed_list() for _ in range(5)]
            self.assertLess(max(times), 1.0, f"reactor list took {times} s with the stream cap reached")
        finally:
            for s in raws:
                s.close()

        # Closed streams give their slots back (noticed at the next heartbeat).
        def can_stream():
            s = RawStream(a, "log=web")
            s.close()
            return s.status == 200
        wait_until(can_stream, timeout=15, what="a stream slot after closing the raw streams")

        # The agent stops promptly with 50 streams open.
        t0 = time.monotonic()
        a.stop()
        self.assertLess(time.monotonic() - t0, 5, "agent stop with 50 open streams")

    def test_stream_sends_history_then_live_events_in_order(self):
        a = self.agent
        s = RawStream(a, "log=web&after=0")
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        self.assertTrue(s.read_until(b"endpoint created", 5), s.buf)
        t0 = time.monotonic()
        a.cli("set", "web", "scaling", "scale_down_delay", "33s", check=0)
        self.assertTrue(s.read_until(b"scale_down_delay = 33s", 5), s.buf)
        self.assertLess(time.monotonic() - t0, 2.0)
        seqs = [int(l.split(b":", 1)[1]) for l in s.buf.split(b"\n") if l.startswith(b"id:")]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(seqs), len(set(seqs)))

    def test_a_follower_survives_an_agent_restart_without_repeating_events(self):
        a = self.agent
        f = self.follower()
        a.cli("set", "web", "scaling", "scale_down_delay", "34s", check=0)
        wait_until(lambda: "scale_down_delay = 34s" in self.output(f), timeout=10, what="the follower streaming")
        a.stop()
        a.start()
        a.cli("set", "web", "scaling", "scale_down_delay", "35s", check=0)
        wait_until(lambda: "scale_down_delay = 35s" in self.output(f), timeout=40,
                   what="the follower to print an event recorded after the restart")
        self.assertIsNone(f.poll())
        self.assertEqual(self.output(f).count("scale_down_delay = 34s"), 1, self.output(f))

    def test_stream_refuses_bad_requests_and_wrong_token(self):
        a = self.agent

        def status(query, token=None):
            s = RawStream(a, query, token)
            s.close()
            return s.status
        self.assertEqual(status("log=nosuch"), 404)
        self.assertEqual(status("log=BAD!"), 400)
        self.assertEqual(status("after=1"), 400)
        self.assertEqual(status("log=web", token="wrong-token-wrong-token"), 401)
        # A follower of an unknown endpoint exits 2 with the reason.
        r = a.cli("log", "nosuch", "--follow", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)


if __name__ == "__main__":
    unittest.main()
