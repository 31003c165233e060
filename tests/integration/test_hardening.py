"""Faults injected into the real agent: one bad record, one racing client or
one ordinary setting must not take down what works (issue: hardening)."""
import concurrent.futures
import json
import os
import sqlite3
import stat
import subprocess
import unittest

from harness import BIN, Agent, free_port, http_get, process_endpoint_ini, wait_until


def static_ini(port, backend_port):
    return f"""[endpoint]
url = http://127.0.0.1:{port}/
cloud = static
static_instances = 127.0.0.1:{backend_port}
[health]
interval = 300ms
"""


class HardeningTest(unittest.TestCase):
    def setUp(self):
        self.agent = Agent(self.id().split(".")[-1]).start()
        self.addCleanup(self.agent.cleanup)

    def corrupt(self, name, value):
        """Writes `value` over the endpoint's record straight into the SQLite
        file, as a bad upgrade or a broken tool would."""
        db = sqlite3.connect(os.path.join(self.agent.dir, "state.db"), timeout=10)
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            cols = {t: [c[1] for c in db.execute(f"PRAGMA table_info({t})")] for t in tables}
            table = next(t for t in tables if "key" in cols[t] and "value" in cols[t])
            n = db.execute(f"UPDATE {table} SET value = ? WHERE key = ?",
                           (value.encode(), f"/reactor/endpoints/{name}".encode())).rowcount
            db.commit()
            self.assertEqual(n, 1, f"no row for endpoint {name} in {table}")
        finally:
            db.close()

    def test_corrupted_endpoint_record_keeps_its_site_serving(self):
        a = self.agent
        web_port, api_port = free_port(), free_port()
        a.manage("web", process_endpoint_ini(web_port))
        a.manage("api", process_endpoint_ini(api_port))
        a.wait_healthy("web", 1)
        a.wait_healthy("api", 1)
        wait_until(lambda: http_get(f"http://127.0.0.1:{web_port}/")[0] == 200, what="web through nginx")
        wait_until(lambda: http_get(f"http://127.0.0.1:{api_port}/")[0] == 200, what="api through nginx")
        pids_before = sorted(a.instance_pids())
        self.assertEqual(len(pids_before), 2)

        # An unknown key, as after an upgrade that no longer knows it.
        rec = {"name": "web", "ini": process_endpoint_ini(web_port) + "\n[scaling]\nshiny_new_key = 1\n",
               "state": "running", "source": "api"}
        self.corrupt("web", json.dumps(rec))
        st = wait_until(lambda: (lambda s: s if s["state"] == "invalid" else None)(a.status("web")),
                        what="web to show invalid")
        self.assertIn("shiny_new_key", st["problem"])
        listed = {e["name"]: e for e in a.cli_json("list")}
        self.assertEqual(listed["web"]["state"], "invalid", "an unreadable record left `reactor list`")
        # Several rounds later: same instances, both sites serving.
        for _ in range(10):
            self.assertEqual(http_get(f"http://127.0.0.1:{web_port}/")[0], 200)
            self.assertEqual(http_get(f"http://127.0.0.1:{api_port}/")[0], 200)
        wait_until(lambda: a.events("web").count("does not read") == 1, what="one event on web")
        self.assertEqual(sorted(a.instance_pids()), pids_before, "instances were stopped or replaced")

        # Broken beyond reading, too.
        self.corrupt("web", "{definitely not json")
        wait_until(lambda: "not an endpoint record" in a.status("web")["problem"], what="the new problem")
        for _ in range(10):
            self.assertEqual(http_get(f"http://127.0.0.1:{web_port}/")[0], 200)
        self.assertEqual(sorted(a.instance_pids()), pids_before)

        # A good manage repairs it.
        a.manage("web", process_endpoint_ini(web_port))
        wait_until(lambda: a.status("web")["state"] == "running", what="web repaired")
        self.assertEqual(http_get(f"http://127.0.0.1:{web_port}/")[0], 200)

    def test_concurrent_manage_of_one_url_has_exactly_one_winner(self):
        a = self.agent
        for trial in range(5):
            port = free_port()
            ini = process_endpoint_ini(port)
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                results = list(pool.map(lambda i: a.manage(f"race{trial}-{i}", ini, check=None), range(4)))
            codes = sorted(r.returncode for r in results)
            self.assertEqual(codes.count(0), 1, f"trial {trial}: {[(r.returncode, r.stderr) for r in results]}")
            for r in results:
                if r.returncode != 0:
                    self.assertRegex(r.stderr, r"already served by endpoint|changed concurrently")
            served = [e["name"] for e in a.cli_json("list") if e["name"].startswith(f"race{trial}-")]
            self.assertEqual(len(served), 1, served)

    def test_health_interval_alone_is_accepted_and_timeout_follows(self):
        a = self.agent
        port = free_port()
        ini = f"""[endpoint]
url = http://127.0.0.1:{port}/
cloud = process
[health]
interval = 300ms
[cloud:process]
command = /usr/bin/python3 -m http.server ${{PORT}} --bind 127.0.0.1
"""
        a.manage("web", ini)
        self.assertEqual(a.cli("get", "web", "health", "timeout", check=0).stdout.strip(), "300ms")
        # `set` of the interval alone moves the timeout with it.
        a.cli("set", "web", "health", "interval", "200ms", check=0)
        self.assertEqual(a.cli("get", "web", "health", "timeout", check=0).stdout.strip(), "200ms")
        a.wait_healthy("web", 1)


class StartupRefusalsTest(unittest.TestCase):
    def test_token_file_readable_by_others_is_refused(self):
        a = Agent("token_perms")
        self.addCleanup(a.cleanup)
        with open(a.token_file, "w") as f:
            f.write("0123456789abcdef0123456789abcdef\n")
        os.chmod(a.token_file, 0o644)
        r = subprocess.run([os.path.join(BIN, "reactor-agent"), "--config", a.config],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("chmod 600", r.stdout + r.stderr)

    def test_unix_listen_never_removes_a_regular_file(self):
        a = Agent("unix_listen")
        self.addCleanup(a.cleanup)
        victim = os.path.join(a.dir, "important.txt")
        with open(victim, "w") as f:
            f.write("keep me\n")
        with open(a.config) as f:
            conf = f.read()
        conf = conf.replace(f"listen = 127.0.0.1:{a.api_port}", f"listen = unix:{victim}")
        with open(a.config, "w") as f:
            f.write(conf)
        r = subprocess.run([os.path.join(BIN, "reactor-agent"), "--config", a.config],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not a socket", r.stdout + r.stderr)
        with open(victim) as f:
            self.assertEqual(f.read(), "keep me\n")
        self.assertTrue(stat.S_ISREG(os.stat(victim).st_mode))


if __name__ == "__main__":
    unittest.main()
