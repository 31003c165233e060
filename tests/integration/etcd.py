"""A real etcd cluster for integration tests: N members of Debian's etcd
(/usr/bin/etcd, 3.4) on 127.0.0.1, each with its own data dir under a private
temp dir (on /dev/shm when it exists) and its own client and peer ports;
members are killed and restarted by pid. Every wait is bounded.
"""
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.request

from harness import free_port, pid_alive, wait_until

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"


def make_tls_files(directory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate
    (openssl), in `directory`: {"ca", "server_cert", "server_key",
    "client_cert", "client_key"} -> path."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)
    f = {k: os.path.join(directory, k + ".pem") for k in
         ("ca", "ca_key", "server_cert", "server_key", "client_cert", "client_key")}
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=reactor test CA",
        "-keyout", f["ca_key"], "-out", f["ca"])
    ext = os.path.join(directory, "server.ext")
    with open(ext, "w") as e:
        e.write("subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth, clientAuth\n")
    for who, extfile in (("server", ext), ("client", None)):
        csr = os.path.join(directory, who + ".csr")
        # No CommonName on the client's: etcd 3.4's gateway refuses every
        # request from a certificate with one when auth is on ("CommonName of
        # client sending a request against gateway will be ignored").
        subject = "/CN=reactor server" if who == "server" else "/O=reactor client"
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
            "-keyout", f[who + "_key"], "-out", csr)
        sign = ["x509", "-req", "-in", csr, "-CA", f["ca"], "-CAkey", f["ca_key"], "-CAcreateserial",
                "-days", "2", "-out", f[who + "_cert"]]
        if extfile:
            sign += ["-extfile", extfile]
        run(*sign)
    return f


class EtcdCluster:
    def __init__(self, members=3, tls=None, extra_args=()):
        """tls: make_tls_files()'s dict: clients must use https and a
        certificate the CA signed. extra_args: more etcd flags."""
        self.tls = tls
        self.extra_args = list(extra_args)
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
        client = f"{self.scheme()}://127.0.0.1:{m['client']}"
        peer = f"http://127.0.0.1:{m['peer']}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        log = open(os.path.join(self.dir, f"{m['name']}.log"), "ab")
        m["proc"] = subprocess.Popen(
            [ETCD, f"--name={m['name']}", f"--data-dir={m['data']}",
             f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
             f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
             f"--initial-cluster={self.initial}", f"--initial-cluster-token={self.token}",
             "--initial-cluster-state=new", "--heartbeat-interval=100", "--election-timeout=1000",
             "--enable-v2=false", "--logger=zap", "--log-level=warn", *self.tls_args(), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()

    def scheme(self):
        return "https" if self.tls else "http"

    def tls_args(self):
        if not self.tls:
            return []
        return [f"--cert-file={self.tls['server_cert']}", f"--key-file={self.tls['server_key']}",
                f"--trusted-ca-file={self.tls['ca']}", "--client-cert-auth"]

    def opener(self):
        handlers = [urllib.request.ProxyHandler({})]
        if self.tls:
            context = ssl.create_default_context(cafile=self.tls["ca"])
            context.load_cert_chain(self.tls["client_cert"], self.tls["client_key"])
            handlers.append(urllib.request.HTTPSHandler(context=context))
        return urllib.request.build_opener(*handlers)

    def healthy(self, i):
        m = self.members[i]
        try:
            with self.opener().open(f"{self.scheme()}://127.0.0.1:{m['client']}/health", timeout=2) as r:
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

    def etcdctl(self, *args, timeout=15, user=None):
        """user: "name:password" once auth is enabled."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        env["ETCDCTL_API"] = "3"
        flags = [f"--endpoints={','.join(self.scheme() + '://' + e for e in self.endpoints().split(','))}"]
        if self.tls:
            flags += [f"--cacert={self.tls['ca']}", f"--cert={self.tls['client_cert']}",
                      f"--key={self.tls['client_key']}"]
        if user:
            flags.append(f"--user={user}")
        return subprocess.run([ETCDCTL, *flags, *args],
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
