"""Shared helpers for integration tests: start the real reactor-agent (which
starts its own nginx) on loopback ports in a private temp dir, drive it with
the real `reactor` CLI, and stop everything it started, by pid.

Every wait is bounded; nothing here addresses anything but 127.0.0.1.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

BIN = os.environ.get("REACTOR_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SRC = os.environ.get("REACTOR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
PYTHON = shutil.which("python3", path="/usr/bin") or shutil.which("python3")


# Instance ports come from blocks below Linux's ephemeral range (32768-60999),
# where free_port() finds nginx's listen ports: an instance can never take a
# port a test picked for nginx. Process blocks: 10000-17999; docker: 21000-25999.
PROCESS_PORT_BASE = 10000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=15.0, interval=0.1, what="condition"):
    """Polls predicate() until it returns a truthy value or timeout passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def http_get(url, timeout=3.0, headers=None):
    """Returns (status, body); status 0 when the connection failed."""
    req = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
        return 0, ""


def control_get(prefix, path):
    """GET on the agent's nginx control socket (local only); the body, or
    None when nginx does not answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(os.path.join(prefix, "control/control.sock"))
        s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return body.decode().strip() if head.startswith(b"HTTP/1.1 200") else None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def kill_group_and_wait(pid, sig=signal.SIGKILL, timeout=10.0):
    for target in (lambda: os.killpg(pid, sig), lambda: os.kill(pid, sig)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)


def process_app_command():
    return f"{PYTHON} -m http.server ${{PORT}} --bind 127.0.0.1"


def process_endpoint_ini(port, min_instances=1, max_instances=1, extra=""):
    return f"""[endpoint]
url = http://127.0.0.1:{port}/
cloud = process

[scaling]
min_instances = {min_instances}
max_instances = {max_instances}
drain_timeout = 10s

[health]
path = /
interval = 500ms
timeout = 500ms

[cloud:process]
command = {process_app_command()}
working_dir = /tmp
{extra}"""


class Agent:
    """One reactor-agent with its own nginx, store, token and instances."""

    def __init__(self, test_name, extra_conf="", nginx_extra="", state=None):
        # Short: the nginx control socket path must fit a sockaddr_un.
        self.dir = tempfile.mkdtemp(prefix="rit-")
        self.name = test_name
        os.chmod(self.dir, 0o755)  # nginx workers (nobody) traverse the prefix
        self.api_port = free_port()
        self.token_file = os.path.join(self.dir, "token")
        self.prefix = os.path.join(self.dir, "nginx")
        self.state_dir = os.path.join(self.dir, "state")
        self.endpoints_dir = os.path.join(self.dir, "endpoints.d")
        os.makedirs(self.endpoints_dir)
        self.config = os.path.join(self.dir, "agent.conf")
        ports_lo = PROCESS_PORT_BASE + (os.getpid() % 200) * 40  # this test process's block
        with open(self.config, "w") as f:
            f.write(f"""[agent]
name = it-{test_name[:40].replace("_", "-")}
listen = 127.0.0.1:{self.api_port}
token_file = {self.token_file}
state = {state or f"sqlite:{self.dir}/state.db"}
state_dir = {self.state_dir}
endpoints_dir = {self.endpoints_dir}
interval = 500ms
{extra_conf}
[nginx]
prefix = {self.prefix}
{nginx_extra or "reload_delay = 200ms"}
[cloud:process]
port_range = {ports_lo}-{ports_lo + 39}
log_dir = {self.dir}/logs
""")
        self.proc = None
        self.log = None
        self.all_nginx_pids = set()

    # -- lifecycle -------------------------------------------------------
    def start(self):
        self.log = open(os.path.join(self.dir, "agent.log"), "ab")
        self.proc = subprocess.Popen([os.path.join(BIN, "reactor-agent"), "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: self.proc.poll() is not None or
                   http_get(f"http://127.0.0.1:{self.api_port}/v1/health",
                            headers={"Authorization": f"Bearer {self.token()}"})[0] == 200,
                   timeout=20, what="agent API")
        if self.proc.poll() is not None:
            raise AssertionError(f"agent exited with {self.proc.returncode}: {self.agent_log()[-2000:]}")
        pid = self.nginx_pid()
        if pid:
            self.all_nginx_pids.add(pid)
        return self

    def token(self):
        try:
            with open(self.token_file) as f:
                return f.read().strip()
        except OSError:
            return ""

    def agent_log(self):
        with open(os.path.join(self.dir, "agent.log"), errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.log:
            self.log.close()
            self.log = None

    def kill9(self):
        self.stop(signal.SIGKILL)

    def nginx_pid(self):
        try:
            with open(os.path.join(self.prefix, "logs/nginx.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return 0

    def instance_pids(self):
        pids = []
        d = os.path.join(self.state_dir, "instances")
        if os.path.isdir(d):
            for name in os.listdir(d):
                if name.endswith(".json"):
                    try:
                        with open(os.path.join(d, name)) as f:
                            pids.append(int(json.load(f)["pid"]))
                    except (OSError, ValueError, KeyError):
                        pass
        return [p for p in pids if pid_alive(p)]

    def cleanup(self, keep_dir=False):
        """Stops the agent, its nginx and its instances, by pid."""
        self.stop()
        pid = self.nginx_pid()
        if pid:
            self.all_nginx_pids.add(pid)
        for p in self.all_nginx_pids:
            kill_group_and_wait(p, signal.SIGQUIT, timeout=5)
            kill_group_and_wait(p, signal.SIGKILL, timeout=5)
        for p in self.instance_pids():
            kill_group_and_wait(p, signal.SIGKILL)
        if not keep_dir and not os.environ.get("REACTOR_KEEP_TEST_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- CLI -------------------------------------------------------------
    def cli(self, *args, input=None, check=None, timeout=30):
        env = dict(os.environ, REACTOR_API=f"127.0.0.1:{self.api_port}")
        env.pop("REACTOR_TOKEN", None)
        r = subprocess.run([os.path.join(BIN, "reactor"), "--token-file", self.token_file, *args],
                           input=input, capture_output=True, text=True, env=env, timeout=timeout)
        if check is not None and r.returncode != check:
            raise AssertionError(f"reactor {' '.join(args)} exited {r.returncode}, wanted {check}:\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def cli_json(self, *args):
        r = self.cli(*args, "--json", check=0)
        return json.loads(r.stdout)

    def manage(self, name, ini, check=0):
        return self.cli("manage", name, "-", input=ini, check=check)

    def status(self, name):
        return self.cli_json("status", name)

    def instances(self, name):
        return self.cli_json("instances", name)

    def events(self, name):
        r = self.cli("log", name, check=0)
        return r.stdout

    def wait_healthy(self, name, count, timeout=20):
        return wait_until(lambda: (lambda s: s if s["healthy"] == count and s["instances"] == count
                                   and s["draining"] == 0 else None)(
            self.status(name)), timeout=timeout, what=f"{name} to have {count} healthy instance(s)")


def run_wrk(url, duration_s=5, connections=8, threads=1):
    """Runs wrk against url; returns its output. wrk prints 'Socket errors'
    and 'Non-2xx or 3xx responses' lines only when there were some."""
    r = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "5s", url],
                       capture_output=True, text=True, timeout=duration_s + 30)
    return r.stdout + r.stderr


def start_wrk(url, duration_s=5, connections=8, threads=1):
    return subprocess.Popen(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "5s", url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Backend:
    """A plain HTTP server (python3 http.server) on a loopback port, for
    static endpoints."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="reactor-backend-")
        with open(os.path.join(self.dir, "index.html"), "w") as f:
            f.write(f"backend {self.port}\n")
        self.proc = subprocess.Popen([PYTHON, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"],
                                     cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_until(lambda: http_get(f"http://127.0.0.1:{self.port}/")[0] == 200, timeout=10, what="backend")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
