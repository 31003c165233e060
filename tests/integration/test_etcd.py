"""The agent on a real 3-member etcd cluster (state = etcd://...), started on
loopback by tests/integration/etcd.py: records visible with etcdctl, a member
killed without the user noticing, kill -9 of the agent (nothing lost or
duplicated), every member away (serving goes on, status
says why, the agent catches up), state copied from SQLite to etcd and
adopted, a backup wiped and restored."""
import os
import re
import subprocess
import time
import unittest

import tempfile

from etcd import EtcdCluster, make_tls_files
from harness import BIN, Agent, free_port, http_get, process_endpoint_ini, wait_until


def agent_tool(*args, timeout=120):
    return subprocess.run([os.path.join(BIN, "reactor-agent"), *args], capture_output=True, text=True,
                          timeout=timeout)


def set_state(agent, url):
    """Points the (stopped) agent's config at another store."""
    with open(agent.config) as f:
        text = f.read()
    with open(agent.config, "w") as f:
        f.write(re.sub(r"^state = .*$", f"state = {url}", text, count=1, flags=re.M))


class EtcdTestCase(unittest.TestCase):
    def setUp(self):
        self.etcd = EtcdCluster(3).start()
        self.addCleanup(self.etcd.stop)

    def keys(self):
        r = self.etcd.etcdctl("get", "--prefix", "/reactor/", "--keys-only")
        self.assertEqual(r.returncode, 0, r.stderr)
        return [k for k in r.stdout.split("\n") if k]

    def serve(self, agent, name, port, instances=1):
        agent.manage(name, process_endpoint_ini(port, instances, instances))
        agent.wait_healthy(name, instances, timeout=30)
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/")[0] == 200, what="traffic through nginx")


class AgentOnEtcdTest(EtcdTestCase):
    def test_records_in_etcd_and_a_killed_member_goes_unnoticed(self):
        a = Agent("etcd_member_kill", state=self.etcd.url()).start()
        self.addCleanup(a.cleanup)
        port = free_port()
        self.serve(a, "web", port)
        keys = self.keys()
        self.assertIn("/reactor/endpoints/web", keys)
        self.assertTrue(any(k.startswith("/reactor/instances/web/") for k in keys), keys)
        self.assertTrue(any(k.startswith("/reactor/events/web/") for k in keys), keys)
        before = a.instances("web")

        self.etcd.kill(0)  # the member the agent talks to first
        # Reads, writes and traffic carry on through the other two.
        for _ in range(20):
            self.assertEqual(http_get(f"http://127.0.0.1:{port}/")[0], 200)
            self.assertEqual(a.status("web")["healthy"], 1)
            time.sleep(0.05)
        a.cli("set", "web", "scaling", "max_instances", "2", check=0)
        a.cli("set", "web", "scaling", "min_instances", "2", check=0)
        a.wait_healthy("web", 2, timeout=30)
        ids = [i["id"] for i in a.instances("web")]
        self.assertIn(before[0]["id"], ids, "the running instance was kept")
        wait_until(lambda: len([k for k in self.keys() if k.startswith("/reactor/instances/web/")]) == 2,
                   what="both instances recorded in etcd")

    def test_all_members_away_keeps_serving_says_why_and_catches_up(self):
        a = Agent("etcd_all_away", state=self.etcd.url()).start()
        self.addCleanup(a.cleanup)
        port = free_port()
        self.serve(a, "web", port)
        pids = a.instance_pids()
        self.assertEqual(len(pids), 1, pids)

        self.etcd.kill_all()
        # nginx and the instance keep serving while nothing can be recorded.
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            self.assertEqual(http_get(f"http://127.0.0.1:{port}/")[0], 200)
            time.sleep(0.2)
        self.assertEqual(a.instance_pids(), pids, "an instance was stopped while the store was away")
        # status and list say why (and answer: the API is not stuck on etcd).
        r = a.cli("status", "web")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("store unavailable", r.stdout + r.stderr)
        r = a.cli("list")
        self.assertIn("store unavailable", r.stdout + r.stderr)
        wait_until(lambda: "state store unavailable" in a.agent_log(), timeout=10,
                   what="the agent log to say the store is unavailable")

        for i in range(len(self.etcd.members)):
            self.etcd.restart(i, wait=False)
        self.etcd.wait_healthy()
        # Caught up: the same instance, and a change made now applies.
        wait_until(lambda: a.cli("status", "web").returncode == 0, timeout=30, what="status answers again")
        a.cli("set", "web", "scaling", "max_instances", "2", check=0)
        a.cli("set", "web", "scaling", "min_instances", "2", check=0)
        a.wait_healthy("web", 2, timeout=30)
        self.assertTrue(set(pids) <= set(a.instance_pids()), "the running instance was kept")
        self.assertEqual(http_get(f"http://127.0.0.1:{port}/")[0], 200)
        wait_until(lambda: "reachable again" in a.events("_agent"), timeout=15,
                   what="the agent log to say the store is back")

    def test_kill9_of_the_agent_loses_nothing_and_duplicates_nothing(self):
        a = Agent("etcd_kill9", state=self.etcd.url()).start()
        self.addCleanup(a.cleanup)
        port = free_port()
        self.serve(a, "web", port, 2)
        before = sorted(i["id"] for i in a.instances("web"))
        pids = sorted(a.instance_pids())
        nginx = a.nginx_pid()
        self.assertEqual(len(pids), 2)
        a.kill9()
        self.assertEqual(http_get(f"http://127.0.0.1:{port}/")[0], 200, "nginx serves with the agent gone")
        a.start()
        a.wait_healthy("web", 2, timeout=30)
        time.sleep(2)  # a few rounds: a duplicate would have been launched by now
        self.assertEqual(sorted(i["id"] for i in a.instances("web")), before)
        self.assertEqual(sorted(a.instance_pids()), pids, "same processes, no duplicates")
        self.assertEqual(a.nginx_pid(), nginx, "the running nginx is adopted")
        records = [k for k in self.keys() if k.startswith("/reactor/instances/web/")]
        self.assertEqual(len(records), 2, records)


class CopyStateTest(EtcdTestCase):
    def test_sqlite_to_etcd_then_the_agent_on_etcd_adopts_the_instances(self):
        a = Agent("copy_state_sqlite_etcd").start()
        self.addCleanup(a.cleanup)
        port = free_port()
        self.serve(a, "web", port, 2)
        ids = sorted(i["id"] for i in a.instances("web"))
        pids = sorted(a.instance_pids())
        self.assertEqual(len(pids), 2)
        a.kill9()
        sqlite_url = f"sqlite:{a.dir}/state.db"

        r = agent_tool("--copy-state", sqlite_url, self.etcd.url())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"copied \d+ keys")
        self.assertIn("/reactor/endpoints/web", self.keys())
        # A second copy meets a non-empty target.
        again = agent_tool("--copy-state", sqlite_url, self.etcd.url())
        self.assertEqual(again.returncode, 2)
        self.assertIn("--force", again.stderr)
        forced = agent_tool("--copy-state", sqlite_url, self.etcd.url(), "--force")
        self.assertEqual(forced.returncode, 0, forced.stderr)

        set_state(a, self.etcd.url())
        a.start()
        time.sleep(2)
        self.assertEqual(sorted(i["id"] for i in a.instances("web")), ids)
        self.assertEqual(sorted(a.instance_pids()), pids, "the same processes, adopted, no duplicates")
        self.assertEqual(a.status("web")["healthy"], 2)
        self.assertEqual(http_get(f"http://127.0.0.1:{port}/")[0], 200)


class BackupRestoreTest(EtcdTestCase):
    def test_backup_wipe_restore_gives_the_same_endpoints(self):
        a = Agent("etcd_backup_restore", state=self.etcd.url()).start()
        self.addCleanup(a.cleanup)
        port = free_port()
        self.serve(a, "web", port)
        a.manage("api", process_endpoint_ini(free_port(), 0, 0))
        listed = a.cli("list", check=0).stdout
        a.kill9()

        backup = os.path.join(a.dir, "state.snapshot")
        r = agent_tool("--backup", backup, "--config", a.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(os.path.getsize(backup), 4096)
        self.assertEqual(self.etcd.etcdctl("del", "--prefix", "/reactor/").returncode, 0)
        self.assertEqual(self.keys(), [])

        r = agent_tool("--restore", backup, "--config", a.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Into a store that is no longer empty: refused.
        again = agent_tool("--restore", backup, "--config", a.config)
        self.assertEqual(again.returncode, 2, again.stderr)

        a.start()
        a.wait_healthy("web", 1, timeout=30)
        self.assertEqual(http_get(f"http://127.0.0.1:{port}/")[0], 200)
        names = lambda text: sorted(re.findall(r"^(web|api)\b", text, flags=re.M))
        self.assertEqual(names(a.cli("list", check=0).stdout), names(listed))
        self.assertEqual(names(listed), ["api", "web"])


if __name__ == "__main__":
    unittest.main()


class TlsAndAuthTest(unittest.TestCase):
    """etcd with client certificates and auth on (etcd's own flags), and the
    agent's [agent] etcd_ca_file / etcd_cert_file / etcd_key_file /
    etcd_user / etcd_password_file."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rit-etcd-tls-")
        self.tls = make_tls_files(self.dir)
        self.etcd = EtcdCluster(1, tls=self.tls).start()
        self.addCleanup(self.etcd.stop)
        self.password = "s3cret-pass"
        for args in (["user", "add", "root", f"--new-user-password={self.password}"],
                     ["user", "grant-role", "root", "root"], ["auth", "enable"]):
            r = self.etcd.etcdctl(*args)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def conf(self, password_file):
        return (f"etcd_ca_file = {self.tls['ca']}\n"
                f"etcd_cert_file = {self.tls['client_cert']}\n"
                f"etcd_key_file = {self.tls['client_key']}\n"
                f"etcd_user = root\n"
                f"etcd_password_file = {password_file}\n")

    def password_file(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text + "\n")
        os.chmod(path, 0o600)
        return path

    def test_agent_over_tls_with_auth_serves_and_authenticates_again_when_its_token_is_refused(self):
        good = self.password_file("password", self.password)
        a = Agent("etcd_tls_auth", state=self.etcd.url(), extra_conf=self.conf(good)).start()
        self.addCleanup(a.cleanup)
        port = free_port()
        a.manage("web", process_endpoint_ini(port, 1, 1))
        a.wait_healthy("web", 1, timeout=30)
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/")[0] == 200, what="traffic through nginx")
        r = self.etcd.etcdctl("get", "--prefix", "/reactor/endpoints/", "--keys-only",
                              user=f"root:{self.password}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("/reactor/endpoints/web", r.stdout)
        # Without the password etcd refuses: auth is really on.
        r = self.etcd.etcdctl("get", "/reactor/endpoints/web")
        self.assertNotEqual(r.returncode, 0)
        # etcd keeps its (simple) tokens in memory: after a restart the
        # agent's token is refused and it must authenticate again.
        self.etcd.kill(0)
        self.etcd.restart(0)
        last = {}

        def answers():
            r = self.etcd.etcdctl("get", "/reactor/endpoints/web", "--keys-only", user=f"root:{self.password}")
            last["error"] = r.stderr[-500:]
            return r.returncode == 0
        try:
            wait_until(answers, timeout=30, what="etcd answering authenticated requests again")
        except AssertionError as e:
            raise AssertionError(f"{e}: etcdctl said {last.get('error')}") from None
        a.cli("set", "web", "scaling", "max_instances", "2", check=0)
        a.cli("set", "web", "scaling", "min_instances", "2", check=0)
        a.wait_healthy("web", 2, timeout=30)

    def test_wrong_password_is_refused_with_a_message_that_says_so(self):
        bad = self.password_file("wrong", "not-the-password")
        conf = os.path.join(self.dir, "agent.conf")
        with open(conf, "w") as f:
            f.write(f"[agent]\nstate = {self.etcd.url()}\n" + self.conf(bad))
        r = agent_tool("--backup", os.path.join(self.dir, "backup.snapshot"), "--config", conf)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr + r.stdout, r"(?i)authentication failed|invalid user ID or password")
