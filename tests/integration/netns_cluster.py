"""A small reactor cluster on one machine, for the cluster tests (issue 12)
and tests/bench/failover_bench.py.

Topology, all made and removed by the test itself:
- a bridge namespace holding a Linux bridge with NO uplink (and 198.18.0.1,
  the observer's address: the test reads etcd from here);
- per host a namespace (h1, h2, h3) joined to the bridge by a veth pair,
  198.18.0.11, .12, .13: its own reactor-agent (API on its own 127.0.0.1),
  its own nginx and its process instances;
- per etcd member a namespace (e1, e2, e3), 198.18.0.21-.23, so that killing
  or cutting off a host never takes an etcd member with it.
Addresses come only from 198.18.0.0/15 (RFC 2544): no packet leaves the
namespaces, and nothing here addresses 10/8, 172.16/12 or 192.168/16.

Namespace names carry the test process's pid ("rit<pid>-<n>-h1"), so two
runs never meet; the processes of a namespace are found by its network
namespace inode (`ip netns pids`, /proc/PID/ns/net), never by a name.
Every wait is bounded; if a namespace cannot be made, start() raises
AssertionError with the reason (the test fails, it never skips).

The module is also the traffic client: `python3 netns_cluster.py client
URL OUT_FILE MAX_SECONDS` run inside a host namespace sends requests (a new
connection each, 4 threads) until SIGTERM or MAX_SECONDS and keeps OUT_FILE
(JSON: ok, failed, codes, first failures, slowest) up to date.
"""
import base64
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, PYTHON, control_get, pid_alive, wait_until  # noqa: E402

IP = shutil.which("ip", path="/usr/sbin:/usr/bin:/sbin:/bin") or "ip"
ETCD = "/usr/bin/etcd"
NET = "198.18.0."
OBSERVER = NET + "1"
API_PORT = 7070
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_root_ns_fd = None
_counter = [0]


# -- namespaces ---------------------------------------------------------------

def ip(*args, check=True, timeout=15):
    r = subprocess.run([IP, *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"`ip {' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()}")
    return r


def ns_inode(ns):
    try:
        return os.stat(f"/run/netns/{ns}").st_ino
    except OSError:
        return None


def pids_in_ns(ns):
    """Live pids whose network namespace is `ns` (by inode, from /proc)."""
    inode = ns_inode(ns)
    if inode is None:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino == inode:
                pids.append(int(entry))
        except OSError:  # gone, or a zombie (no namespace left)
            pass
    return [p for p in pids if p != os.getpid() and pid_alive(p)]


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def kill_ns_processes(ns, sig=signal.SIGKILL, timeout=10.0, first=()):
    """Signals every process in namespace `ns` (the pids in `first` before
    the rest, e.g. the agent so that it cannot start another), until none is
    left or `timeout` passes. Returns the pids signalled."""
    hit = set()
    for p in first:
        try:
            os.kill(p, sig)
            hit.add(p)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = pids_in_ns(ns)
        if not pids:
            return hit
        for p in pids:
            try:
                os.kill(p, sig)
                hit.add(p)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    left = pids_in_ns(ns)
    if left:
        raise AssertionError(f"processes still in namespace {ns} after {timeout}s: "
                             + "; ".join(f"{p} {' '.join(cmdline(p))[:80]}" for p in left))
    return hit


def delete_ns(ns):
    if ns_inode(ns) is None:
        return
    kill_ns_processes(ns)
    ip("netns", "delete", ns, check=False)


def remove_stale_namespaces():
    """Namespaces this module made in an earlier run whose test process is
    gone (killed before its cleanup ran): their processes, then them."""
    r = ip("netns", "list", check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"^(rit(\d+)-\d+-[a-z0-9]+)\b", line)
        if m and int(m.group(2)) != os.getpid() and not pid_alive(int(m.group(2))):
            delete_ns(m.group(1))


class _InNamespace:
    """Runs the with-body in network namespace `ns` on this thread only
    (setns on the calling thread; other threads are not affected). Sockets
    made inside stay in that namespace."""

    def __init__(self, ns):
        self.ns = ns

    def __enter__(self):
        global _root_ns_fd
        if _root_ns_fd is None:
            _root_ns_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.ns}")
        finally:
            os.close(fd)

    def __exit__(self, *exc):
        if _libc.setns(_root_ns_fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back to the test's own namespace")


def ns_connect(ns, host, port, timeout):
    with _InNamespace(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect((host, port))
    except OSError:
        s.close()
        raise
    return s


class _NsHTTPConnection(http.client.HTTPConnection):
    def __init__(self, ns, host, port, timeout):
        super().__init__(host, port, timeout=timeout)
        self.ns = ns

    def connect(self):
        self.sock = ns_connect(self.ns, self.host, self.port, self.timeout)


def ns_http(ns, method, host, port, path, body=None, headers=None, timeout=3.0):
    """One HTTP request from inside namespace `ns`: (status, body text);
    status 0 when the connection failed or timed out."""
    conn = _NsHTTPConnection(ns, host, port, timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return 0, ""
    finally:
        conn.close()


def b64(s):
    return base64.b64encode(s.encode()).decode()


def prefix_end(prefix):
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _owner_name(value):
    """The manager an owner key names (its value: the name, or JSON with it)."""
    value = value.strip()
    if value.startswith("{"):
        try:
            j = json.loads(value)
            return j.get("manager") or j.get("name") or value
        except ValueError:
            pass
    return value


# -- the cluster ----------------------------------------------------------------

class Host:
    """One host: a namespace, an agent, its nginx and instances."""

    def __init__(self, cluster, index, slots, extra_conf=""):
        self.cluster = cluster
        self.index = index
        self.name = f"h{index}"
        self.ns = f"{cluster.tag}-{self.name}"
        self.address = f"{NET}{10 + index}"
        self.bridge_port = self.name  # the veth's end in the bridge namespace
        self.slots = slots
        self.dir = os.path.join(cluster.dir, self.name)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.token_file = os.path.join(self.dir, "token")
        self.prefix = os.path.join(self.dir, "nginx")
        self.state_dir = os.path.join(self.dir, "state")
        self.endpoints_dir = os.path.join(self.dir, "endpoints.d")
        os.makedirs(self.endpoints_dir)
        self.config = os.path.join(self.dir, "agent.conf")
        ports_lo = 10000 + index * 100
        etcd_url = "etcd://" + ",".join(f"{m.address}:{ETCD_CLIENT_PORT}" for m in cluster.etcd)
        with open(self.config, "w") as f:
            f.write(f"""[agent]
name = {self.name}
listen = 127.0.0.1:{API_PORT}
token_file = {self.token_file}
state = {etcd_url}
state_dir = {self.state_dir}
endpoints_dir = {self.endpoints_dir}
interval = {cluster.interval}
slots = {slots}
address = {self.address}
lease_ttl = {cluster.lease_ttl_s:g}s
{extra_conf}
[nginx]
prefix = {self.prefix}
reload_delay = 200ms

[cloud:process]
port_range = {ports_lo}-{ports_lo + 99}
log_dir = {self.dir}/logs
""")
        self.proc = None
        self.log = None
        self.starts = 0

    # -- lifecycle ---------------------------------------------------------
    def start(self, timeout=30):
        self.starts += 1
        self.log = open(os.path.join(self.dir, "agent.log"), "ab")
        self.log.write(f"\n==== start {self.starts} at {time.time():.3f}\n".encode())
        self.log.flush()
        # `ip netns exec` execs the command in place: proc.pid is the agent.
        self.proc = subprocess.Popen([IP, "netns", "exec", self.ns, os.path.join(BIN, "reactor-agent"),
                                      "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: self.proc.poll() is not None or self.api("GET", "/v1/health")[0] == 200,
                   timeout=timeout, what=f"{self.name}'s agent API")
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name}'s agent exited with {self.proc.returncode}: "
                                 f"{self.agent_log()[-3000:]}")
        return self

    def agent_pid(self):
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def alive(self):
        return self.agent_pid() is not None

    def token(self):
        try:
            with open(self.token_file) as f:
                return f.read().strip()
        except OSError:
            return ""

    def agent_log(self):
        try:
            with open(os.path.join(self.dir, "agent.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill(self):
        """kill -9 of the whole host: its agent first, then every process left
        in its namespace (nginx master and workers, instances, clients)."""
        first = [self.proc.pid] if self.proc and self.proc.poll() is None else []
        kill_ns_processes(self.ns, signal.SIGKILL, first=first)
        if self.proc:
            self.proc.wait(timeout=10)
        self._close_log()

    def stop_agent(self, sig=signal.SIGTERM, timeout=15):
        """Stops the agent only (nginx and instances keep running)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._close_log()

    def agent_state(self):
        """The agent's process state letter (R, S, T = stopped...), "" if gone."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError, AttributeError):
            return ""

    def pause(self):
        """SIGSTOP to the agent; returns once every thread of it is stopped."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        wait_until(lambda: self.agent_state() == "T", timeout=5, interval=0.01, what=f"{self.name}'s agent stopped")

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        wait_until(lambda: self.agent_state() not in ("T", "t"), timeout=5, interval=0.01,
                   what=f"{self.name}'s agent running again")

    def partition(self):
        """Cuts the host off the bridge: its veth's bridge end goes down."""
        ip("-n", self.cluster.bridge_ns, "link", "set", self.bridge_port, "down")

    def heal(self):
        ip("-n", self.cluster.bridge_ns, "link", "set", self.bridge_port, "up")

    def _close_log(self):
        if self.log:
            self.log.close()
            self.log = None

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.stop_agent(timeout=10)
        kill_ns_processes(self.ns, signal.SIGKILL)
        self._close_log()

    # -- talking to it -------------------------------------------------------
    def api(self, method, path, body=None, timeout=5.0):
        """The agent's REST API, from inside the host's namespace."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        return ns_http(self.ns, method, "127.0.0.1", API_PORT, path, body=body, headers=headers,
                       timeout=timeout)

    def cli(self, *args, input=None, check=None, timeout=30):
        """The real `reactor` CLI, run inside the host's namespace."""
        env = {k: v for k, v in os.environ.items() if k not in ("REACTOR_TOKEN", "REACTOR_API")}
        r = subprocess.run([IP, "netns", "exec", self.ns, os.path.join(BIN, "reactor"),
                            "--api", f"127.0.0.1:{API_PORT}", "--token-file", self.token_file, *args],
                           input=input, capture_output=True, text=True, env=env, timeout=timeout)
        if check is not None and r.returncode != check:
            raise AssertionError(f"[{self.name}] reactor {' '.join(args)} exited {r.returncode}, wanted {check}:\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def cli_json(self, *args):
        r = self.cli(*args, "--json", check=0)
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise AssertionError(f"[{self.name}] reactor {' '.join(args)} --json printed no JSON ({e}): "
                                 f"{r.stdout!r}") from None

    def manage(self, name, ini, check=0):
        return self.cli("manage", name, "-", input=ini, check=check)

    def managers(self):
        return self.cli_json("managers")

    def status(self, name):
        return self.cli_json("status", name)

    def get(self, port, path="/", timeout=10.0):
        """A request to this host's nginx at 127.0.0.1:port, from inside it."""
        return ns_http(self.ns, "GET", "127.0.0.1", port, path, timeout=timeout)

    def members(self, endpoint):
        """The upstream members this host's nginx holds for `endpoint`
        ("host:port" strings), from its control socket; None if it does not
        answer."""
        text = control_get(self.prefix, f"/members/{endpoint}")
        if text is None:
            return None
        return sorted(m.split("=")[0] for m in text.split() if m)

    def instance_processes(self):
        """{port: [pid, ...]} of the http.server instances running in this
        host's namespace (found by namespace, then by their command line)."""
        out = {}
        for pid in pids_in_ns(self.ns):
            argv = cmdline(pid)
            if "http.server" in argv:
                i = argv.index("http.server")
                if i + 1 < len(argv) and argv[i + 1].isdigit():
                    out.setdefault(int(argv[i + 1]), []).append(pid)
        return out

    def client(self, port, path="/", max_seconds=120):
        return TrafficClient(self, port, path, max_seconds)


class EtcdMember:
    def __init__(self, cluster, index):
        self.name = f"e{index}"
        self.ns = f"{cluster.tag}-{self.name}"
        self.address = f"{NET}{20 + index}"
        self.bridge_port = self.name
        self.data = os.path.join(cluster.dir, self.name)
        self.proc = None


class Cluster:
    """Namespaces, a 3-member etcd, and one agent per host.

    slots: one number for every host, or a list (one per host)."""

    def __init__(self, hosts=3, slots=4, lease_ttl_s=2.0, interval="500ms", extra_conf=""):
        _counter[0] += 1
        self.tag = f"rit{os.getpid()}-{_counter[0]}"
        self.bridge_ns = f"{self.tag}-br"
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.dir = tempfile.mkdtemp(prefix="ritc-", dir=base)
        os.chmod(self.dir, 0o755)  # nginx workers (nobody) traverse the prefixes
        self.lease_ttl_s = lease_ttl_s
        self.interval = interval
        self.etcd = [EtcdMember(self, i) for i in (1, 2, 3)]
        slot_list = slots if isinstance(slots, (list, tuple)) else [slots] * hosts
        self.hosts = [Host(self, i + 1, slot_list[i], extra_conf) for i in range(hosts)]
        self.namespaces = []
        self._etcd_logs = []

    def host(self, name):
        return next(h for h in self.hosts if h.name == name)

    # -- start and stop ----------------------------------------------------------
    def start(self):
        for binary, package in ((ETCD, "etcd-server"), (IP, "iproute2"),
                                (os.path.join(BIN, "reactor-agent"), "the build (REACTOR_BIN_DIR)")):
            if not os.access(binary, os.X_OK) and not shutil.which(binary):
                raise AssertionError(f"{binary} not found: install {package} (packaging/install-deps.sh)")
        if os.geteuid() != 0:
            raise AssertionError("the cluster tests make network namespaces: they must run as root")
        remove_stale_namespaces()
        self._make_network()
        self._start_etcd()
        for h in self.hosts:
            h.start()
        self.wait_members_up()
        return self

    def _add_ns(self, ns):
        r = ip("netns", "add", ns, check=False)
        if r.returncode != 0:
            raise AssertionError(f"cannot create network namespace {ns} (`ip netns add`): {r.stderr.strip()}; "
                                 "the cluster tests need root and a kernel with network namespaces")
        self.namespaces.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")

    def _make_network(self):
        self._add_ns(self.bridge_ns)
        ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        ip("-n", self.bridge_ns, "addr", "add", f"{OBSERVER}/24", "dev", "br0")
        ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        for node in [*self.hosts, *self.etcd]:
            self._add_ns(node.ns)
            ip("-n", self.bridge_ns, "link", "add", node.bridge_port, "type", "veth",
               "peer", "name", "eth0", "netns", node.ns)
            ip("-n", self.bridge_ns, "link", "set", node.bridge_port, "master", "br0", "up")
            ip("-n", node.ns, "addr", "add", f"{node.address}/24", "dev", "eth0")
            ip("-n", node.ns, "link", "set", "eth0", "up")

    def _start_etcd(self):
        initial = ",".join(f"{m.name}=http://{m.address}:{ETCD_PEER_PORT}" for m in self.etcd)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        for m in self.etcd:
            client = f"http://{m.address}:{ETCD_CLIENT_PORT}"
            peer = f"http://{m.address}:{ETCD_PEER_PORT}"
            log = open(os.path.join(self.dir, f"{m.name}.log"), "ab")
            m.proc = subprocess.Popen(
                [IP, "netns", "exec", m.ns, ETCD, f"--name={m.name}", f"--data-dir={m.data}",
                 f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
                 f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                 f"--initial-cluster={initial}", f"--initial-cluster-token={self.tag}",
                 "--initial-cluster-state=new", "--heartbeat-interval=100", "--election-timeout=1000",
                 "--enable-v2=false", "--logger=zap", "--log-level=warn"],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            log.close()

        def healthy():
            for m in self.etcd:
                if m.proc.poll() is not None:
                    raise AssertionError(f"etcd {m.name} exited with {m.proc.returncode}: {self.etcd_log(m)}")
                status, body = ns_http(self.bridge_ns, "GET", m.address, ETCD_CLIENT_PORT, "/health", timeout=2)
                if status != 200 or '"health":"true"' not in body.replace(" ", ""):
                    return False
            return True
        wait_until(healthy, timeout=30, interval=0.2, what="the 3-member etcd cluster healthy")

    def etcd_log(self, m):
        try:
            with open(os.path.join(self.dir, f"{m.name}.log"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def wait_members_up(self, names=None, timeout=20):
        want = sorted(names or [h.name for h in self.hosts])
        def up():
            ms = self.etcd_range("/reactor/managers/")[1]
            return sorted(k.rsplit("/", 1)[1] for k in ms) == want or None
        wait_until(up, timeout=timeout, what=f"membership records of {want}")

    def cleanup(self):
        errors = []
        for h in self.hosts:
            try:
                h.cleanup()
            except Exception as e:  # keep tearing down the rest
                errors.append(f"{h.name}: {e}")
        for m in self.etcd:
            if m.proc and m.proc.poll() is None:
                m.proc.kill()
                m.proc.wait(timeout=10)
        for ns in reversed(self.namespaces):
            try:
                delete_ns(ns)
            except Exception as e:
                errors.append(f"{ns}: {e}")
        left = [ns for ns in self.namespaces if ns_inode(ns) is not None]
        if left:
            errors.append(f"namespaces left: {left}")
        if os.environ.get("REACTOR_KEEP_TEST_DIRS"):
            print(f"cluster dirs kept in {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise AssertionError("cluster teardown: " + "; ".join(errors))

    def logs(self, tail=4000):
        """Every agent's log tail, for a failure message."""
        return "\n".join(f"--- {h.name} agent.log\n{h.agent_log()[-tail:]}" for h in self.hosts)

    # -- etcd, read from the observer in the bridge namespace --------------------
    def etcd_call(self, path, body, timeout=3.0):
        last = None
        for m in self.etcd:
            status, text = ns_http(self.bridge_ns, "POST", m.address, ETCD_CLIENT_PORT, path,
                                   body=json.dumps(body), headers={"Content-Type": "application/json"},
                                   timeout=timeout)
            if status == 200:
                return json.loads(text)
            last = (m.name, status, text[:200])
        raise AssertionError(f"no etcd member answered {path}: last {last}")

    def etcd_range(self, prefix, revision=0):
        """(revision, {key: (value, kv)}) of every key under prefix, at one
        revision (the latest when 0)."""
        body = {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}
        if revision:
            body["revision"] = str(revision)
        j = self.etcd_call("/v3/kv/range", body)
        out = {}
        for kv in j.get("kvs", []):
            key = base64.b64decode(kv["key"]).decode()
            out[key] = (base64.b64decode(kv.get("value", "")).decode(errors="replace"), kv)
        return int(j["header"]["revision"]), out

    def etcd_get(self, key):
        """(value, create_revision) of one key, or (None, 0)."""
        j = self.etcd_call("/v3/kv/range", {"key": b64(key)})
        kvs = j.get("kvs", [])
        if not kvs:
            return None, 0
        return base64.b64decode(kvs[0].get("value", "")).decode(), int(kvs[0].get("create_revision", 0))

    def owner(self, endpoint):
        """The manager that owns `endpoint` now (/reactor/owners/<ep>), and
        its fencing token (the key's create revision)."""
        value, rev = self.etcd_get(f"/reactor/owners/{endpoint}")
        if value is None:
            return None, 0
        return _owner_name(value), rev

    def snapshot(self):
        """One consistent view: {"revision", "slots": {host: used},
        "instances": [{endpoint, id, manager, state, address, slots}],
        "owners": {endpoint: (manager, fencing token)}}."""
        rev, slots = self.etcd_range("/reactor/slots/")
        _, inst = self.etcd_range("/reactor/instances/", revision=rev)
        _, owners = self.etcd_range("/reactor/owners/", revision=rev)
        out = {"revision": rev, "slots": {}, "instances": [],
               "owners": {k.rsplit("/", 1)[1]: (_owner_name(v), int(kv.get("create_revision", 0)))
                          for k, (v, kv) in owners.items()}}
        for key, (value, _) in slots.items():
            try:
                out["slots"][key.rsplit("/", 1)[1]] = int(json.loads(value).get("used", 0))
            except (ValueError, AttributeError):
                out["slots"][key.rsplit("/", 1)[1]] = value
        for key, (value, _) in inst.items():
            parts = key.split("/")  # "", reactor, instances, ep, id
            try:
                rec = json.loads(value)
            except ValueError:
                rec = {}
            out["instances"].append({"endpoint": parts[3], "id": parts[4], "manager": rec.get("manager"),
                                     "state": rec.get("state"), "address": rec.get("address", ""),
                                     "slots": rec.get("slots", 0)})
        return out

    def instances(self, endpoint, snapshot=None):
        snap = snapshot or self.snapshot()
        return [i for i in snap["instances"] if i["endpoint"] == endpoint]

    def placement(self, endpoint, states=("active",), snapshot=None):
        """{host: count} of the endpoint's instance records in `states`."""
        out = {h.name: 0 for h in self.hosts}
        for i in self.instances(endpoint, snapshot):
            if i["state"] in states:
                out[i["manager"]] = out.get(i["manager"], 0) + 1
        return out

    def running_vs_records(self, endpoints):
        """Compares the instance processes in every host's namespace with the
        instance records of `endpoints`. Returns a list of problems (empty =
        each record has exactly one process on its manager, and no process
        runs without a record)."""
        snap = self.snapshot()
        problems = []
        wanted = {}  # (host, port) -> record id
        for i in snap["instances"]:
            if i["endpoint"] not in endpoints:
                continue
            port = i["address"].rsplit(":", 1)[-1]
            if not port.isdigit():
                problems.append(f"record {i['endpoint']}/{i['id']} has no port in {i['address']!r}")
                continue
            wanted[(i["manager"], int(port))] = f"{i['endpoint']}/{i['id']} ({i['state']})"
        for h in self.hosts:
            for port, pids in h.instance_processes().items():
                if len(pids) > 1:
                    problems.append(f"{h.name} runs {len(pids)} processes on port {port}: {pids}")
                if (h.name, port) not in wanted:
                    problems.append(f"{h.name} runs an instance on port {port} (pids {pids}) that no record assigns")
            running = h.instance_processes()
            for (host, port), rec in wanted.items():
                if host == h.name and port not in running:
                    problems.append(f"record {rec} on {host}:{port} has no process there")
        return problems


# -- traffic ----------------------------------------------------------------------

class TrafficClient:
    """A client inside a host's namespace sending GETs to that host's nginx
    at 127.0.0.1:port (this module's `client` mode, in its own process)."""

    def __init__(self, host, port, path="/", max_seconds=120):
        self.host = host
        self.out = os.path.join(host.cluster.dir, f"client-{host.name}-{port}-{time.monotonic_ns()}.json")
        self.proc = subprocess.Popen([IP, "netns", "exec", host.ns, PYTHON, os.path.abspath(__file__), "client",
                                      f"http://127.0.0.1:{port}{path}", self.out, str(max_seconds)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)

    def counts(self):
        try:
            with open(self.out) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"ok": 0, "failed": 0, "codes": {}, "failures": [], "slowest": 0}

    def wait_ok(self, n, timeout=20):
        """Waits until at least n more requests succeeded than now."""
        start = self.counts()["ok"]
        return wait_until(lambda: self.proc.poll() is None and self.counts()["ok"] >= start + n or
                          (self.proc.poll() is not None and self._died()),
                          timeout=timeout, what=f"{n} successful requests through {self.host.name}'s nginx")

    def _died(self):
        raise AssertionError(f"the traffic client exited with {self.proc.returncode}: {self.proc.stderr.read()}")

    def stop(self):
        """Stops the client; returns its final counts."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stderr:
            self.proc.stderr.close()
        return self.counts()

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.proc.stderr:
            self.proc.stderr.close()


def _client_main(url, out, max_seconds, threads=4):
    """Sends GETs to url (a new connection each) until SIGTERM or
    max_seconds; keeps `out` current."""
    m = re.match(r"^http://([^/:]+):(\d+)(/.*)$", url)
    host, port, path = m.group(1), int(m.group(2)), m.group(3)
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0, "codes": {}, "failures": [], "slowest": 0.0}
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()

    def write():
        with lock:
            text = json.dumps(counts)
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, out)

    def worker():
        while not stop.is_set():
            t0 = time.monotonic()
            conn = http.client.HTTPConnection(host, port, timeout=15)
            try:
                conn.request("GET", path, headers={"Connection": "close"})
                r = conn.getresponse()
                r.read()
                code = str(r.status)
            except (OSError, http.client.HTTPException) as e:
                code = type(e).__name__
            finally:
                conn.close()
            dt = time.monotonic() - t0
            with lock:
                counts["codes"][code] = counts["codes"].get(code, 0) + 1
                counts["slowest"] = max(counts["slowest"], dt)
                if code == "200":
                    counts["ok"] += 1
                else:
                    counts["failed"] += 1
                    if len(counts["failures"]) < 20:
                        counts["failures"].append({"at": round(time.time(), 3), "code": code,
                                                   "seconds": round(dt, 3)})
            time.sleep(0.01)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    while not stop.is_set() and time.monotonic() - started < max_seconds:
        write()
        stop.wait(0.2)
    stop.set()
    for w in workers:
        w.join(timeout=20)
    write()


# -- endpoints ----------------------------------------------------------------------

def cluster_app_command():
    return f"{PYTHON} -m http.server ${{PORT}} --bind ${{ADDRESS}}"


def cluster_endpoint_ini(port, min_instances=1, max_instances=None, placement=None, extra_scaling="",
                         drain_timeout="5s"):
    """A process endpoint served on every host's nginx at 127.0.0.1:port,
    its instances bound on the host's [agent] address."""
    max_instances = min_instances if max_instances is None else max_instances
    placement_line = f"placement = {placement}\n" if placement else ""
    return f"""[endpoint]
url = http://127.0.0.1:{port}/
cloud = process

[scaling]
min_instances = {min_instances}
max_instances = {max_instances}
{placement_line}ramp_limit = 10
drain_timeout = {drain_timeout}
{extra_scaling}
[health]
path = /
interval = 500ms
timeout = 500ms

[cloud:process]
command = {cluster_app_command()}
working_dir = /tmp
slots = 1
"""


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "client":
        _client_main(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        print(__doc__)
        sys.exit(2)
