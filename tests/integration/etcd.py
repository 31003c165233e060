"""A real etcd cluster for integration tests: N members of Debian's etcd
(/usr/bin/etcd, 3.4) on 127.0.0.1, each with its own data dir under a private
temp dir (on /dev/shm when it exists) and its own client and peer ports;
members are killed and restarted by pid. Every wait is bounded.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

from harness import free_port, pid_alive, wait_until

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"


class EtcdCluster:
    def __init__(self, members=3):
        for binary, package in ((ETCD, "etcd-server"), (ETCDCTL, "etcd-client")):
            if not os.access(binary, os.X_OK):
                raise AssertionError(f"{binary} not found: install {package} (packaging/install-deps.sh)")
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.dir = tempfile.mkdtemp(prefix="rit-etcd-", dir=base)
        self.members = []
        for i in range(members):
            self.members.append({"name": f"m{i}", "client": free_port(), "peer": free_port(),
                                 "data": os.path.join(self.dir, f"m{i}"), "proc": None})
        self.initial = ",".join(f"{m['name']}=http://127.0.0.1:{m['peer']}" for m in self.members)
        self.token = f"rit-{os.getpid()}-{self.members[0]['client']}"

    def start(self, timeout=30):
        for i in range(len(self.members)):
            self._spawn(i)
        self.wait_healthy(timeout)
        return self

    def _spawn(self, i):
        m = self.members[i]
        client = f"http://127.0.0.1:{m['client']}"
        peer = f"http://127.0.0.1:{m['peer']}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        log = open(os.path.join(self.dir, f"{m['name']}.log"), "ab")
        m["proc"] = subprocess.Popen(
            [ETCD, f"--name={m['name']}", f"--data-dir={m['data']}",
             f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
             f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
             f"--initial-cluster={self.initial}", f"--initial-cluster-token={self.token}",
             "--initial-cluster-state=new", "--heartbeat-interval=100", "--election-timeout=1000",
             "--enable-v2=false", "--logger=zap", "--log-level=warn"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()

    def healthy(self, i):
        m = self.members[i]
        try:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(f"http://127.0.0.1:{m['client']}/health", timeout=2) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def wait_healthy(self, timeout=30):
        def all_up():
            for i, m in enumerate(self.members):
                if m["proc"] is None:
                    continue
                if m["proc"].poll() is not None:
                    raise AssertionError(f"etcd {m['name']} exited with {m['proc'].returncode}: "
                                         f"{self.log_tail(i)}")
                if not self.healthy(i):
                    return False
            return True
        wait_until(all_up, timeout=timeout, what="etcd cluster healthy")

    def url(self):
        return "etcd://" + ",".join(f"127.0.0.1:{m['client']}" for m in self.members)

    def endpoints(self):
        return ",".join(f"127.0.0.1:{m['client']}" for m in self.members
                        if m["proc"] is not None and m["proc"].poll() is None)

    def etcdctl(self, *args, timeout=15):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        env["ETCDCTL_API"] = "3"
        return subprocess.run([ETCDCTL, f"--endpoints={self.endpoints()}", *args],
                              capture_output=True, text=True, env=env, timeout=timeout)

    def kill(self, i):
        m = self.members[i]
        if m["proc"] is not None and m["proc"].poll() is None:
            m["proc"].kill()
            m["proc"].wait(timeout=10)
        m["proc"] = None

    def kill_all(self):
        for i in range(len(self.members)):
            self.kill(i)

    def restart(self, i, wait=True):
        self._spawn(i)
        if wait:
            self.wait_healthy()

    def log_tail(self, i, n=2000):
        try:
            with open(os.path.join(self.dir, f"{self.members[i]['name']}.log"), errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self):
        for m in self.members:
            p = m["proc"]
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
            m["proc"] = None
        shutil.rmtree(self.dir, ignore_errors=True)
