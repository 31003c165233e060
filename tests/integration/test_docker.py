"""Docker instances end to end: the real reactor-agent and its nginx, a
private dockerd started here (SPEC.md §12: vfs, no bridge, no iptables, host
networking, an image imported from busybox-static), driven through the
reactor CLI, traffic through nginx on loopback.

If dockerd cannot start, every test here fails with dockerd's own words:
docker instances are part of the product, so their tests are never skipped.
"""
import json
import os
import time
import unittest

from dockerd import Dockerd, DockerdError
from harness import Agent, free_port, http_get, wait_until

IMAGE = "reactor-it:1"

_dockerd = None
_dockerd_error = None


def setUpModule():
    global _dockerd, _dockerd_error
    try:
        _dockerd = Dockerd().start()
        _dockerd.import_busybox_image(*IMAGE.split(":"), index_html="hello from a container\n")
    except (DockerdError, OSError) as e:
        _dockerd_error = f"cannot run the docker tests: the private dockerd did not start: {e}"
        if _dockerd:
            _dockerd.stop()
            _dockerd = None


def tearDownModule():
    if _dockerd:
        _dockerd.stop()


def docker_endpoint_ini(port, min_instances=1, max_instances=1, slots=10, fall=2, extra=""):
    # busybox httpd in the foreground on the port the agent gives it; the
    # health check asks for the file that test_failing_health removes.
    return f"""[endpoint]
url = http://127.0.0.1:{port}/
cloud = docker
port = 8000

[scaling]
min_instances = {min_instances}
max_instances = {max_instances}
drain_timeout = 5s

[health]
path = /index.html
interval = 500ms
timeout = 500ms
fall = {fall}

[cloud:docker]
image = {IMAGE}
command = httpd -f -p 127.0.0.1:${{PORT}} -h /www
mem_limit = 64m
slots = {slots}
{extra}"""


class DockerTestBase(unittest.TestCase):
    agent_slots = 1000

    def setUp(self):
        if _dockerd_error:
            self.fail(_dockerd_error)
        # Ports for host-network containers: a block per test process, apart
        # from the process instances' block that the harness picks.
        base = 21000 + (os.getpid() % 100) * 50
        self.agent = Agent(self.id().split(".")[-1], extra_conf=f"""slots = {self.agent_slots}
[cloud:docker]
socket = {_dockerd.socket}
network = host
host_ip = 127.0.0.1
port_range = {base}-{base + 49}
""").start()
        self.addCleanup(self.cleanup)

    def cleanup(self):
        self.agent.cleanup()
        # Whatever a failed test left: this dockerd is ours alone.
        for c in _dockerd.containers(all=True):
            _dockerd.request("DELETE", f"/containers/{c['Id']}?force=1&v=1")

    def containers(self, running_only=True):
        """This agent's containers as {instance id: container id}."""
        out = {}
        for c in _dockerd.containers(all=not running_only, labels={"reactor.managed": "1"}):
            if c["Labels"].get("reactor.manager") == f"it-{self.agent.name[:40].replace('_', '-')}":
                out[c["Labels"]["reactor.instance"]] = c["Id"]
        return out

    def active(self, name):
        return {i["id"]: i["address"] for i in self.agent.instances(name) if i["state"] == "active"}

    def exec_in(self, container_id, *argv):
        status, body = _dockerd.request("POST", f"/containers/{container_id}/exec",
                                        body=json.dumps({"Cmd": list(argv)}),
                                        headers={"Content-Type": "application/json"})
        self.assertEqual(status, 201, body)
        exec_id = json.loads(body)["Id"]
        status, body = _dockerd.request("POST", f"/exec/{exec_id}/start", body=json.dumps({"Detach": True}),
                                        headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)


class DockerTest(DockerTestBase):
    def test_containers_serve_through_nginx(self):
        a = self.agent
        port = free_port()
        a.manage("web", docker_endpoint_ini(port, 2, 2))
        a.wait_healthy("web", 2, timeout=60)
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/")[0] == 200, what="traffic through nginx")
        self.assertEqual(http_get(f"http://127.0.0.1:{port}/")[1], "hello from a container\n")
        active = self.active("web")
        self.assertEqual(sorted(active), sorted(self.containers()), "one running container per active instance")
        for cid in self.containers().values():
            labels = _dockerd.inspect(cid)["Config"]["Labels"]
            self.assertEqual(labels["reactor.endpoint"], "web")
            self.assertEqual(labels["reactor.slots"], "10")
        self.assertEqual(len(set(active.values())), 2, "each container on a port of its own")

    def test_killed_container_is_replaced(self):
        a = self.agent
        port = free_port()
        a.manage("web", docker_endpoint_ini(port))
        a.wait_healthy("web", 1, timeout=60)
        (old_id, cid), = self.containers().items()
        status, body = _dockerd.request("POST", f"/containers/{cid}/kill")
        self.assertEqual(status, 204, body)
        wait_until(lambda: [i for i in self.active("web") if i != old_id], timeout=60, what="a replacement")
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/")[0] == 200, what="traffic to the replacement")
        wait_until(lambda: old_id not in self.containers(running_only=False), what="the dead container removed")
        self.assertEqual(len(self.containers()), 1)
        self.assertRegex(a.events("web"), rf"{old_id}.*exited")

    def test_failing_health_check_gets_the_container_replaced(self):
        a = self.agent
        port = free_port()
        a.manage("web", docker_endpoint_ini(port, fall=2))
        a.wait_healthy("web", 1, timeout=60)
        (old_id, cid), = self.containers().items()
        # The process keeps running; only its health path starts failing.
        self.exec_in(cid, "/bin/busybox", "rm", "/www/index.html")
        wait_until(lambda: [i for i in self.active("web") if i != old_id], timeout=60, what="a replacement")
        wait_until(lambda: old_id not in self.containers(running_only=False), timeout=30,
                   what="the unhealthy container stopped and removed")
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/index.html")[0] == 200,
                   what="traffic to the replacement")
        events = a.events("web")
        self.assertIn("HTTP 404", events, "the health transition is logged with the check's result")

    def test_agent_kill9_then_restart_keeps_the_same_containers(self):
        a = self.agent
        port = free_port()
        a.manage("web", docker_endpoint_ini(port, 2, 2))
        a.wait_healthy("web", 2, timeout=60)
        # Healthy is not yet served: the new server block waits out reload_delay.
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/")[0] == 200, what="traffic through nginx")
        before = self.containers()
        self.assertEqual(len(before), 2)
        a.kill9()
        self.assertEqual(http_get(f"http://127.0.0.1:{port}/")[0], 200, "nginx serves with the agent gone")
        a.start()
        a.wait_healthy("web", 2, timeout=30)
        # A few rounds for a duplicate launch or a removal to show, if any.
        time.sleep(2)
        self.assertEqual(self.containers(running_only=False), before, "the same containers, no duplicates")
        self.assertEqual(sorted(self.active("web")), sorted(before))

    def test_stop_leaves_no_containers(self):
        a = self.agent
        port = free_port()
        a.manage("web", docker_endpoint_ini(port, 2, 2))
        a.wait_healthy("web", 2, timeout=60)
        a.cli("stop", "web", check=0)
        wait_until(lambda: not self.containers(running_only=False), timeout=30, what="no containers left")
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/")[0] == 503, what="503 when stopped")
        self.assertEqual(a.status("web")["instances"], 0)


class DockerSlotsTest(DockerTestBase):
    # Room for two instances of 10 slots, not three.
    agent_slots = 25

    def test_no_launch_beyond_the_managers_slots(self):
        a = self.agent
        port = free_port()
        a.manage("web", docker_endpoint_ini(port, 3, 3, slots=10))
        a.wait_healthy("web", 2, timeout=60)
        wait_until(lambda: "no free slots" in a.events("web"), what="the slot shortage in the event log")
        time.sleep(2)  # rounds in which a third launch would show
        self.assertEqual(len(self.containers(running_only=False)), 2)
        st = a.status("web")
        self.assertEqual(st["instances"], 2)
        self.assertEqual(st["target"], 3)
        managers = a.cli_json("managers")
        me = [m for m in managers if m["name"] == f"it-{a.name[:40].replace('_', '-')}"]
        self.assertEqual(len(me), 1, managers)
        self.assertEqual(me[0]["slots_used"], 20)
        self.assertLessEqual(me[0]["slots_used"], me[0]["slots"])


if __name__ == "__main__":
    unittest.main()
