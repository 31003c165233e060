"""A private dockerd for integration tests (SPEC.md §12).

    with Dockerd() as d:              # or d = Dockerd(); d.start(); ...; d.stop()
        d.import_busybox_image("reactor-test", "1")
        ... point the agent's [cloud:docker] socket at d.socket, network = host ...

dockerd runs with its own data root, exec root and unix socket under a temp
dir, `--bridge=none --iptables=false --ip-masq=false --storage-driver=vfs`, so
only host-network containers run and nothing outside the temp dir changes.
Test images are imported from a tar of busybox-static (no registry is
reachable). Every wait is bounded; only the processes started here are
signalled, by pid; stop() removes every container, stops dockerd (SIGTERM,
then SIGKILL), unmounts what dockerd left mounted and removes the temp dir.
Needs root. Talks to dockerd over its socket with the standard library only.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.parse

API = "/v1.41"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("docker", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class DockerdError(RuntimeError):
    pass


class Dockerd:
    def __init__(self, start_timeout=30.0):
        self.start_timeout = start_timeout
        self.dir = None
        self.socket = None
        self.proc = None
        self._log = None

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        dockerd = shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin:/bin")
        if not dockerd:
            raise DockerdError("dockerd not found (install docker.io)")
        self.dir = tempfile.mkdtemp(prefix="reactor-dockerd.")
        self.socket = os.path.join(self.dir, "docker.sock")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        self._log = open(os.path.join(self.dir, "dockerd.log"), "wb")
        self.proc = subprocess.Popen(
            [dockerd, "--bridge=none", "--iptables=false", "--ip-masq=false", "--storage-driver=vfs",
             "--data-root=" + os.path.join(self.dir, "data"), "--exec-root=" + os.path.join(self.dir, "exec"),
             "--pidfile=" + os.path.join(self.dir, "docker.pid"), "--host=unix://" + self.socket,
             "--userland-proxy=false"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise DockerdError(f"dockerd exited during start-up ({self.proc.returncode}):\n{tail}")
            if os.path.exists(self.socket):
                try:
                    if self.request("GET", "/_ping", timeout=2)[0] == 200:
                        return self
                except OSError:
                    pass
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise DockerdError(f"dockerd did not answer within {self.start_timeout}s:\n{tail}")
            time.sleep(0.1)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                for c in self.containers(all=True):
                    self.request("DELETE", f"/containers/{c['Id']}?force=1&v=1")
            except (OSError, DockerdError):
                pass
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        if self.dir:
            self._kill_leftovers()
            self._unmount_under(self.dir)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, size=4000):
        try:
            with open(os.path.join(self.dir, "dockerd.log"), "rb") as f:
                return f.read()[-size:].decode(errors="replace")
        except (OSError, TypeError):
            return ""

    # -- API -----------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=60):
        """Returns (status, body bytes)."""
        conn = _UnixHTTPConnection(self.socket, timeout)
        try:
            conn.request(method, API + path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def containers(self, all=True, labels=None):
        query = {"all": "1" if all else "0"}
        if labels:
            query["filters"] = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
        status, body = self.request("GET", "/containers/json?" + urllib.parse.urlencode(query))
        if status != 200:
            raise DockerdError(f"list containers: {status} {body!r}")
        return json.loads(body)

    def inspect(self, name_or_id):
        """The container's JSON, or None when there is none."""
        status, body = self.request("GET", f"/containers/{name_or_id}/json")
        if status == 404:
            return None
        if status != 200:
            raise DockerdError(f"inspect {name_or_id}: {status} {body!r}")
        return json.loads(body)

    def import_busybox_image(self, repo="reactor-test", tag="1", index_html="hello from reactor-test\n"):
        """Imports busybox-static (with sh, httpd, sleep, ... and /www/index.html) as repo:tag."""
        busybox = shutil.which("busybox", path="/bin:/usr/bin:/sbin:/usr/sbin")
        if not busybox:
            raise DockerdError("busybox not found (install busybox-static)")
        root = os.path.join(self.dir, "rootfs")
        for d in ("bin", "www", "tmp", "etc"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        shutil.copy2(busybox, os.path.join(root, "bin", "busybox"))
        for tool in ("sh", "httpd", "sleep", "cat", "echo", "ls", "wget", "id", "env", "true", "false"):
            link = os.path.join(root, "bin", tool)
            if not os.path.lexists(link):
                os.symlink("busybox", link)
        with open(os.path.join(root, "www", "index.html"), "w") as f:
            f.write(index_html)
        with open(os.path.join(root, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        with open(os.path.join(root, "etc", "group"), "w") as f:
            f.write("root:x:0:\nnogroup:x:65534:\n")
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        tar_path = os.path.join(self.dir, "rootfs.tar")
        with tarfile.open(tar_path, "w") as tar:
            tar.add(root, arcname=".")
        with open(tar_path, "rb") as f:
            data = f.read()
        query = urllib.parse.urlencode({"fromSrc": "-", "repo": repo, "tag": tag})
        status, body = self.request("POST", "/images/create?" + query, body=data,
                                    headers={"Content-Type": "application/x-tar"}, timeout=120)
        if status != 200 or b'"error"' in body:
            raise DockerdError(f"import {repo}:{tag}: {status} {body!r}")
        return f"{repo}:{tag}"

    # -- clean-up helpers ----------------------------------------------------

    def _kill_leftovers(self):
        """After a SIGKILL of dockerd, its containerd may be left: only
        processes whose command line names our private dir are ours."""
        marker = (self.dir + "/").encode()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in (0, 1, os.getpid()):
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if marker in f.read():
                        os.kill(int(name), signal.SIGKILL)
            except OSError:
                pass

    @staticmethod
    def _unmount_under(path):
        """dockerd leaves exec/netns/default mounted: detach it (and anything
        else under `path`), deepest first."""
        points = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and fields[4].startswith(path + "/"):
                    points.append(fields[4])
        for p in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", p], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=10, check=False)


if __name__ == "__main__":
    # Smoke test: start, import, run a host-network httpd, stop.
    with Dockerd() as d:
        image = d.import_busybox_image()
        port = 20555
        spec = {"Image": image, "Cmd": ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
                "HostConfig": {"NetworkMode": "host"}}
        st, body = d.request("POST", "/containers/create?name=smoke", body=json.dumps(spec),
                             headers={"Content-Type": "application/json"})
        assert st == 201, body
        st, body = d.request("POST", "/containers/smoke/start")
        assert st == 204, body
        import urllib.request
        deadline = time.monotonic() + 10
        while True:
            try:
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                print(opener.open(f"http://127.0.0.1:{port}/", timeout=1).read().decode().strip())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    print("ok")
