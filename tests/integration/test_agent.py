"""The single-host agent end to end: real reactor-agent, real nginx, process
and static instances, driven through the reactor CLI, traffic through nginx
on loopback."""
import concurrent.futures
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

from harness import (Agent, Backend, SRC, free_port, http_get, kill_group_and_wait, pid_alive,
                     process_endpoint_ini, run_wrk, start_wrk, wait_until)


class AgentTestCase(unittest.TestCase):
    agent_kwargs = {}

    def setUp(self):
        self.agent = Agent(self.id().split(".")[-1], **self.agent_kwargs).start()
        self.addCleanup(self.agent.cleanup)

    def url(self, port, path="/"):
        return f"http://127.0.0.1:{port}{path}"


class LifecycleTest(AgentTestCase):
    def test_manage_start_stop_unmanage(self):
        a = self.agent
        port = free_port()
        r = a.manage("web", process_endpoint_ini(port))
        self.assertIn("created web", r.stdout)
        a.wait_healthy("web", 1)
        wait_until(lambda: http_get(self.url(port))[0] == 200, what="traffic through nginx")
        inst = a.instances("web")
        self.assertEqual(len(inst), 1)
        self.assertEqual(inst[0]["state"], "active")
        self.assertEqual(inst[0]["manager"], "it-test-manage-start-stop-unmanage")
        self.assertRegex(inst[0]["address"], r"^127\.0\.0\.1:\d+$")
        st = a.status("web")
        self.assertEqual(st["state"], "running")
        self.assertEqual(st["target"], 1)
        self.assertEqual(st["range"], [1, 1])

        a.cli("stop", "web", check=0)
        wait_until(lambda: a.status("web")["instances"] == 0 and not a.instance_pids(), what="instances stopped")
        wait_until(lambda: http_get(self.url(port))[0] == 503, what="503 when stopped")

        a.cli("start", "web", check=0)
        a.wait_healthy("web", 1)
        wait_until(lambda: http_get(self.url(port))[0] == 200, what="traffic after start")

        a.cli("unmanage", "web", check=0)
        wait_until(lambda: "web" not in a.cli("list", check=0).stdout, what="endpoint gone")
        wait_until(lambda: not a.instance_pids(), what="no instance processes left")
        self.assertEqual(a.cli("status", "web").returncode, 2)

    def test_set_get_show_and_scale_by_min_instances(self):
        a = self.agent
        port = free_port()
        a.manage("web", process_endpoint_ini(port, 1, 3))
        a.wait_healthy("web", 1)
        a.cli("set", "web", "scaling", "min_instances", "3", check=0)
        self.assertEqual(a.cli("get", "web", "scaling", "min_instances", check=0).stdout.strip(), "3")
        a.wait_healthy("web", 3)
        self.assertEqual(len({i["address"] for i in a.instances("web")}), 3)
        self.assertIn("min_instances = 3", a.cli("show", "web", check=0).stdout)
        # Without rules the count stays where it is inside [min, max]; lowering
        # max below it scales down, draining first.
        a.cli("set", "web", "scaling", "min_instances", "1", check=0)
        a.cli("set", "web", "scaling", "max_instances", "1", check=0)
        a.wait_healthy("web", 1)
        a.cli("set", "web", "scaling", "max_instances", "3", check=0)
        log = a.events("web")
        self.assertIn("draining", log)
        self.assertIn("drained", log)
        # Bad values through set are refused and change nothing.
        r = a.cli("set", "web", "scaling", "max_instances", "0")
        self.assertEqual(r.returncode, 2)
        self.assertIn("[scaling] max_instances", r.stderr)
        self.assertEqual(a.cli("get", "web", "scaling", "max_instances", check=0).stdout.strip(), "3")

    def test_pause_keeps_instances(self):
        a = self.agent
        port = free_port()
        a.manage("web", process_endpoint_ini(port, 1, 2))
        a.wait_healthy("web", 1)
        a.cli("pause", "web", check=0)
        self.assertEqual(a.status("web")["state"], "paused")
        time.sleep(1.5)
        self.assertEqual(a.status("web")["healthy"], 1)
        self.assertEqual(http_get(self.url(port))[0], 200)


class RefusedInputTest(AgentTestCase):
    def stored(self):
        names = sorted(e["name"] for e in self.agent.cli_json("list"))
        return names, [self.agent.cli("show", n, check=0).stdout for n in names]

    def assert_refused(self, name, ini, *needles):
        before = self.stored()
        r = self.agent.manage(name, ini, check=2)
        for n in needles:
            self.assertIn(n, r.stderr)
        self.assertEqual(self.stored(), before, "nothing may be stored")

    def test_every_refused_input_stores_nothing(self):
        a = self.agent
        port = free_port()
        good = process_endpoint_ini(port)
        a.manage("web", good)
        other = free_port()
        self.assert_refused("Bad_Name", process_endpoint_ini(other), "must match")
        self.assert_refused("x", good.replace("[scaling]", "[scalling]"), "[scalling]")
        self.assert_refused("x", process_endpoint_ini(other) + "bogus = 1\n", "bogus")
        self.assert_refused("x", process_endpoint_ini(other, 3, 2), "[scaling] max_instances")
        self.assert_refused("x", process_endpoint_ini(other).replace("drain_timeout = 10s", "rules = 1 < rate <"),
                            "[scaling] rules", "^")
        self.assert_refused("x", good, "already served by endpoint 'web'")
        self.assert_refused("x", process_endpoint_ini(other).replace(f":{other}/", f":{other}/a;b/"),
                            "[endpoint] url")
        self.assert_refused("x", process_endpoint_ini(other).replace("path = /", "path = /x;return 200"),
                            "[health] path")
        self.assert_refused("x", process_endpoint_ini(other) +
                            "[loadbalancer:nginx]\nredirect = http://x/;}return\n", "[loadbalancer:nginx] redirect")
        self.assert_refused("x", process_endpoint_ini(other).replace("interval = 500ms", "interval = soon"),
                            "[health] interval")
        # A port held by another program on this host.
        holder = Backend()
        try:
            self.assert_refused("x", process_endpoint_ini(holder.port), "already in use")
        finally:
            holder.stop()
        # Nothing half-applied to the existing endpoint either.
        self.assertEqual(a.cli("get", "web", "endpoint", "url", check=0).stdout.strip(),
                         f"http://127.0.0.1:{port}/")

    def test_token_is_enforced(self):
        a = self.agent
        url = f"http://127.0.0.1:{a.api_port}/v1/endpoints"
        self.assertEqual(http_get(url)[0], 401)
        self.assertEqual(http_get(url, headers={"Authorization": "Bearer wrong"})[0], 401)
        self.assertEqual(http_get(url, headers={"Authorization": f"Bearer {a.token()}"})[0], 200)
        self.assertEqual(os.stat(a.token_file).st_mode & 0o777, 0o600)
        env = dict(os.environ, REACTOR_API=f"127.0.0.1:{a.api_port}", REACTOR_TOKEN="wrong")
        r = subprocess.run([os.path.join(os.environ.get("REACTOR_BIN_DIR", "../../build/bin"), "reactor"), "list"],
                           capture_output=True, text=True, env=env, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("token", r.stderr)


class RestartTest(AgentTestCase):
    def test_kill9_then_restart_adopts_instances(self):
        a = self.agent
        port = free_port()
        a.manage("web", process_endpoint_ini(port, 2, 2))
        a.wait_healthy("web", 2)
        wait_until(lambda: http_get(self.url(port))[0] == 200, what="traffic through nginx")
        before = sorted(i["id"] for i in a.instances("web"))
        pids = sorted(a.instance_pids())
        nginx = a.nginx_pid()
        self.assertEqual(len(pids), 2)
        a.kill9()
        # nginx keeps serving with the agent gone.
        self.assertEqual(http_get(self.url(port))[0], 200)
        a.start()
        time.sleep(2)
        self.assertEqual(sorted(i["id"] for i in a.instances("web")), before)
        self.assertEqual(sorted(a.instance_pids()), pids, "same processes, no duplicates")
        self.assertEqual(a.nginx_pid(), nginx, "the running nginx is adopted, not a second one started")
        self.assertEqual(a.status("web")["healthy"], 2)

    def test_instance_that_dies_while_agent_is_away_is_replaced(self):
        a = self.agent
        port = free_port()
        a.manage("web", process_endpoint_ini(port))
        a.wait_healthy("web", 1)
        old = a.instances("web")[0]["id"]
        a.kill9()
        for p in a.instance_pids():
            kill_group_and_wait(p)
        a.start()
        wait_until(lambda: [i for i in a.instances("web") if i["state"] == "active" and i["id"] != old],
                   what="a replacement")
        wait_until(lambda: http_get(self.url(port))[0] == 200, what="traffic to the replacement")

    def test_killed_instance_is_replaced(self):
        a = self.agent
        port = free_port()
        a.manage("web", process_endpoint_ini(port))
        a.wait_healthy("web", 1)
        old = a.instances("web")[0]["id"]
        for p in a.instance_pids():
            kill_group_and_wait(p)
        wait_until(lambda: [i for i in a.instances("web") if i["state"] == "active" and i["id"] != old],
                   what="a replacement")
        self.assertIn("exited", a.events("web"))

    def test_nginx_restarted_while_agent_down_serves_last_members(self):
        a = self.agent
        port = free_port()
        a.manage("web", process_endpoint_ini(port))
        a.wait_healthy("web", 1)
        wait_until(lambda: http_get(self.url(port))[0] == 200, what="traffic")
        a.kill9()
        old = a.nginx_pid()
        kill_group_and_wait(old, signal.SIGQUIT)
        self.assertEqual(http_get(self.url(port))[0], 0, "nginx is down")
        # Start nginx by hand, as an operator or init system would.
        conf = os.path.join(a.prefix, "conf/nginx.conf")
        subprocess.run(["/usr/sbin/nginx", "-p", a.prefix, "-c", conf], check=True, timeout=20)
        wait_until(lambda: a.nginx_pid() and a.nginx_pid() != old, what="new nginx")
        a.all_nginx_pids.add(a.nginx_pid())
        wait_until(lambda: http_get(self.url(port))[0] == 200, what="persisted members served")


class NginxTest(AgentTestCase):
    # A long reload_delay, so that the coalescing of a burst of changes shows.
    agent_kwargs = {"nginx_extra": "reload_delay = 1500ms"}

    def test_static_endpoint_and_health(self):
        a = self.agent
        b1, b2 = Backend(), Backend()
        self.addCleanup(b2.stop)
        port = free_port()
        a.manage("st", f"""[endpoint]
url = http://127.0.0.1:{port}/
cloud = static
static_instances = 127.0.0.1:{b1.port}, 127.0.0.1:{b2.port}
[health]
interval = 300ms
timeout = 300ms
fall = 1
""")
        a.wait_healthy("st", 2)
        wait_until(lambda: http_get(self.url(port))[0] == 200, what="site live after the coalesced reload")
        seen = {http_get(self.url(port))[1].strip() for _ in range(8)}
        self.assertEqual(seen, {f"backend {b1.port}", f"backend {b2.port}"})
        b1.stop()
        wait_until(lambda: a.status("st")["healthy"] == 1, what="failed static backend out of the upstream")
        for _ in range(6):
            self.assertEqual(http_get(self.url(port))[1].strip(), f"backend {b2.port}")
        # A static backend is never replaced: when it answers again it rejoins.
        b1 = Backend(b1.port)
        self.addCleanup(b1.stop)
        a.wait_healthy("st", 2)
        wait_until(lambda: f"backend {b1.port}" in {http_get(self.url(port))[1].strip() for _ in range(6)},
                   what="the recovered static backend back in the upstream")
        self.assertEqual(sorted(i["address"] for i in a.instances("st")),
                         sorted(f"127.0.0.1:{p}" for p in (b1.port, b2.port)), "the same two addresses")

    def test_reload_coalescing(self):
        a = self.agent
        # A reload_delay the twelve calls below surely fit in, however
        # loaded the machine: the bound is about coalescing, not speed.
        a.stop()
        with open(a.config) as f:
            conf = f.read()
        with open(a.config, "w") as f:
            f.write(conf.replace("reload_delay = 200ms", "reload_delay = 2s"))
        a.start()
        def reloads():
            return len(re.findall(r"reload", a.cli("log", "_agent", check=0).stdout))
        wait_until(lambda: a.nginx_pid(), what="nginx")
        start = reloads()
        ports = [free_port() for _ in range(12)]
        # Backends that refuse connections: ports held bound, never listening,
        # so nothing else on the machine can answer on them (every site 503s).
        dead = [socket.socket() for _ in ports]
        for s in dead:
            self.addCleanup(s.close)
            s.bind(("127.0.0.1", 0))
        # Twelve changes at once (as a script or endpoints_dir would make them).
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            futures = [pool.submit(a.manage, f"s{i}",
                                   f"[endpoint]\nurl = http://127.0.0.1:{p}/\ncloud = static\n"
                                   f"static_instances = 127.0.0.1:{d.getsockname()[1]}\n")
                       for i, (p, d) in enumerate(zip(ports, dead))]
            for f in futures:
                f.result()
        wait_until(lambda: all(http_get(self.url(p))[0] == 503 for p in ports), what="all endpoints served")
        n = reloads() - start
        self.assertGreaterEqual(n, 1)
        self.assertLessEqual(n, 3, f"12 changes caused {n} reloads")

    def test_broken_template_keeps_old_config_serving(self):
        a = self.agent
        a.stop()
        tdir = os.path.join(a.dir, "templates")
        shutil.copytree(os.path.join(SRC, "templates"), tdir)
        with open(a.config) as f:
            conf = f.read()
        with open(a.config, "w") as f:
            f.write(conf.replace("[nginx]\n", f"[nginx]\ntemplate_dir = {tdir}\n"))
        a.start()
        port = free_port()
        a.manage("web", process_endpoint_ini(port))
        a.wait_healthy("web", 1)
        wait_until(lambda: http_get(self.url(port))[0] == 200, what="traffic")
        with open(os.path.join(tdir, "sites.conf.mustache"), "a") as f:
            f.write("\nthis_is_not_a_directive on;\n")
        port2 = free_port()
        a.manage("web2", process_endpoint_ini(port2))
        wait_until(lambda: "this_is_not_a_directive" in a.cli("log", "_agent", check=0).stdout,
                   what="nginx -t failure in the event log")
        self.assertEqual(http_get(self.url(port))[0], 200, "the old config keeps serving")
        self.assertEqual(http_get(self.url(port2))[0], 0, "the new endpoint was not applied")


class EndpointsDirTest(AgentTestCase):
    def test_files_are_managed_declaratively(self):
        a = self.agent
        port = free_port()
        path = os.path.join(a.endpoints_dir, "decl.conf")
        with open(path, "w") as f:
            f.write(process_endpoint_ini(port))
        wait_until(lambda: "decl" in a.cli("list", check=0).stdout, timeout=15, what="endpoint from file")
        a.wait_healthy("decl", 1)
        os.unlink(path)
        wait_until(lambda: "decl" not in a.cli("list", check=0).stdout, timeout=20, what="endpoint removed")


class MembershipUnderLoadTest(AgentTestCase):
    def test_scale_changes_under_keepalive_load_lose_nothing(self):
        a = self.agent
        port = free_port()
        a.manage("web", process_endpoint_ini(port, 1, 3))
        a.wait_healthy("web", 1)
        wait_until(lambda: http_get(self.url(port))[0] == 200, what="traffic")
        wrk = start_wrk(self.url(port), duration_s=12, connections=8)
        try:
            time.sleep(1)
            a.cli("set", "web", "scaling", "min_instances", "3", check=0)
            a.wait_healthy("web", 3, timeout=10)
            a.cli("set", "web", "scaling", "min_instances", "1", check=0)
            a.cli("set", "web", "scaling", "max_instances", "1", check=0)
            wait_until(lambda: a.status("web")["healthy"] == 1 and a.status("web")["draining"] == 0,
                       timeout=10, what="scale down")
        finally:
            out, _ = wrk.communicate(timeout=60)
        self.assertRegex(out, r"Requests/sec")
        self.assertNotIn("Socket errors", out, out)
        self.assertNotIn("Non-2xx", out, out)
        reloads = re.findall(r"reload", a.cli("log", "_agent", check=0).stdout)
        self.assertLessEqual(len(reloads), 2, "membership changes must not reload nginx")


if __name__ == "__main__":
    unittest.main()
