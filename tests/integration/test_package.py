"""The Debian package: `cpack -G DEB` in the build tree, its contents and
control fields, then (as root) a real install, start through the SysV init
script, the CLI finding the installed agent, log rotation, stop, and purge.

The install test changes the host (dpkg -i, /etc/reactor, /var/lib/reactor,
port 7070) and so refuses to run where any of that is already in use; it
always leaves the package purged and every process it started stopped.
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BIN, SRC, free_port, http_get, pid_alive, process_endpoint_ini, wait_until

BUILD_DIR = os.path.dirname(os.path.abspath(BIN))
PIDFILE = "/run/reactor-agent.pid"
NGINX_PIDFILE = "/var/lib/reactor/nginx/logs/nginx.pid"
INIT = "/etc/init.d/reactor-agent"
STATE_PATHS = ["/etc/reactor", "/var/lib/reactor", "/var/log/reactor"]
RECORDS = "/var/lib/reactor/instances"


def project_version():
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        return re.search(r"project\(reactor VERSION ([0-9.]+)", f.read()).group(1)


def run(args, timeout=120, env=None, check=None):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    if check is not None and r.returncode != check:
        raise AssertionError(f"{' '.join(args)} exited {r.returncode}, wanted {check}:\n"
                             f"stdout: {r.stdout}\nstderr: {r.stderr}")
    return r


_package = {}


def build_package():
    """Builds the .deb once per test run, into a temp dir; returns its path."""
    if "deb" in _package:
        return _package["deb"]
    if not os.path.exists(os.path.join(BUILD_DIR, "CPackConfig.cmake")):
        raise AssertionError(f"{BUILD_DIR} has no CPackConfig.cmake: re-run cmake on it")
    out = tempfile.mkdtemp(prefix="reactor-deb-")
    _package["dir"] = out
    r = subprocess.run(["cpack", "-G", "DEB", "-B", out], cwd=BUILD_DIR, capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"cpack -G DEB failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    debs = glob.glob(os.path.join(out, "reactor_*.deb"))
    if len(debs) != 1:
        raise AssertionError(f"expected one reactor_*.deb in {out}, found {debs}:\n{r.stdout}")
    _package["deb"] = debs[0]
    return debs[0]


def tearDownModule():
    if "dir" in _package:
        shutil.rmtree(_package["dir"], ignore_errors=True)


class PackageContents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.deb = build_package()

    def field(self, name):
        return run(["dpkg-deb", "-f", self.deb, name], check=0).stdout.strip()

    def test_files(self):
        listing = run(["dpkg-deb", "-c", self.deb], check=0).stdout
        entries = {}
        for line in listing.splitlines():
            parts = line.split()
            entries[parts[5].lstrip(".").rstrip("/") or "/"] = parts[0]
        for path, mode in [
            ("/usr/bin/reactor", "-rwxr-xr-x"),
            ("/usr/sbin/reactor-agent", "-rwxr-xr-x"),
            ("/etc/reactor/agent.conf", "-rw-r--r--"),
            ("/etc/reactor/endpoints", "drwxr-xr-x"),
            ("/etc/init.d/reactor-agent", "-rwxr-xr-x"),
            ("/etc/logrotate.d/reactor", "-rw-r--r--"),
            ("/lib/systemd/system/reactor-agent.service", "-rw-r--r--"),
            ("/usr/share/reactor/templates/nginx.conf.mustache", "-rw-r--r--"),
            ("/usr/share/reactor/templates/sites.conf.mustache", "-rw-r--r--"),
            ("/usr/share/reactor/templates/reactor_balancer.lua", "-rw-r--r--"),
            ("/usr/share/doc/reactor/examples/endpoints/process.conf", "-rw-r--r--"),
            ("/usr/share/doc/reactor/examples/endpoints/docker.conf", "-rw-r--r--"),
            ("/usr/share/doc/reactor/examples/endpoints/static.conf", "-rw-r--r--"),
            ("/usr/share/reactor/ui/index.html", "-rw-r--r--"),
            ("/usr/share/reactor/ui/app.js", "-rw-r--r--"),
            ("/usr/share/reactor/ui/app.css", "-rw-r--r--"),
            ("/usr/share/doc/reactor/grafana-dashboard.json", "-rw-r--r--"),
        ]:
            with self.subTest(path=path):
                self.assertIn(path, entries)
                self.assertEqual(entries[path], mode)
        # Nothing the maintainer scripts own (state, logs, the token) is shipped.
        for path in entries:
            self.assertFalse(path.startswith(("/var/", "/run/")) or path == "/etc/reactor/token", path)
        # Every shipped template is the source tree's.
        for name in os.listdir(os.path.join(SRC, "templates")):
            self.assertIn(f"/usr/share/reactor/templates/{name}", entries)
        for name in os.listdir(os.path.join(SRC, "ui")):
            self.assertIn(f"/usr/share/reactor/ui/{name}", entries)

    def test_control_fields(self):
        self.assertEqual(self.field("Package"), "reactor")
        self.assertEqual(self.field("Version"), project_version())
        self.assertEqual(self.field("Section"), "admin")
        self.assertEqual(self.field("Priority"), "optional")
        self.assertTrue(self.field("Maintainer"))
        self.assertEqual(self.field("Homepage"), "")
        depends = [d.strip().split()[0] for d in self.field("Depends").split(",")]
        for pkg in ["nginx", "libnginx-mod-http-lua", "libjs-chart.js", "libcurl4", "libsqlite3-0", "libsystemd0", "libc6"]:
            self.assertIn(pkg, depends)

    def test_conffiles_and_maintainer_scripts(self):
        ctrl = tempfile.mkdtemp(prefix="reactor-ctrl-")
        self.addCleanup(shutil.rmtree, ctrl, True)
        run(["dpkg-deb", "-e", self.deb, ctrl], check=0)
        with open(os.path.join(ctrl, "conffiles")) as f:
            conffiles = f.read().split()
        self.assertEqual(sorted(conffiles),
                         ["/etc/init.d/reactor-agent", "/etc/logrotate.d/reactor", "/etc/reactor/agent.conf"])
        for script in ["postinst", "prerm", "postrm"]:
            path = os.path.join(ctrl, script)
            self.assertTrue(os.stat(path).st_mode & stat.S_IXUSR, script)
            run(["sh", "-n", path], check=0)

    def test_scripts_parse(self):
        run(["sh", "-n", os.path.join(SRC, "packaging", "reactor-agent.init")], check=0)
        self.assertTrue(shutil.which("shellcheck"),
                        "shellcheck is not installed (packaging/install-deps.sh installs it)")
        scripts = [os.path.join(SRC, "packaging", "reactor-agent.init")] + \
            [os.path.join(SRC, "packaging", "debian", s) for s in ("postinst", "prerm", "postrm")]
        run(["shellcheck", "-s", "sh", *scripts], check=0)


def pid_from(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def installed():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "reactor"], capture_output=True, text=True)
    return r.returncode == 0 and "installed" in r.stdout.split()[-1:]


def port_free(port):
    """True when nothing listens on 127.0.0.1:port (TIME_WAIT leftovers do not count)."""
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def stop_pid(pid, first=signal.SIGTERM, timeout=15):
    if not pid or not pid_alive(pid):
        return
    for sig in (first, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)
        if not pid_alive(pid):
            return


class PackageInstall(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.fail("test_package.PackageInstall needs root: it installs the package with dpkg -i, "
                      "starts /etc/init.d/reactor-agent and purges it again (CI runs as root)")
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "reactor"], capture_output=True, text=True)
        if r.returncode == 0 and "not-installed" not in r.stdout:
            self.fail(f"a package named reactor is already on this host ({r.stdout.strip()}); "
                      "this test will not replace or purge it — remove it first (dpkg --purge reactor)")
        for path in STATE_PATHS:
            if os.path.exists(path):
                self.fail(f"{path} already exists; purging the package would delete it — "
                          "run this test on a host without a reactor installation")
        if not port_free(7070):
            self.fail("127.0.0.1:7070 is in use; the installed agent's default API port must be free")
        self.deb = build_package()
        self.we_installed = False
        self.addCleanup(self.cleanup)
        # Test the init script itself even on a host run by systemd
        # (/lib/lsb/init-functions would hand it to systemctl otherwise).
        self.env = dict(os.environ, _SYSTEMCTL_SKIP_REDIRECT="1", LC_ALL="C")
        for k in ("REACTOR_API", "REACTOR_TOKEN", "REACTOR_CONFIG"):
            self.env.pop(k, None)

    def cleanup(self):
        """Stops what the installed agent started, by pid, and purges the package."""
        stop_pid(pid_from(PIDFILE))
        nginx = pid_from(NGINX_PIDFILE)
        stop_pid(nginx, first=signal.SIGQUIT, timeout=10)
        for pid in self.instance_pids() + getattr(self, "seen_instances", []):
            stop_pid(pid)
        if self.we_installed:
            r = subprocess.run(["dpkg", "--purge", "reactor"], capture_output=True, text=True, timeout=120,
                               env=self.env)
            if r.returncode != 0:
                print(f"cleanup: dpkg --purge reactor exited {r.returncode}: {r.stdout}{r.stderr}")
        if os.path.exists(PIDFILE) and not pid_alive(pid_from(PIDFILE)):
            os.unlink(PIDFILE)

    def init(self, action, timeout=90):
        return run([INIT, action], timeout=timeout, env=self.env)

    def agent_log(self):
        try:
            with open("/var/log/reactor/agent.log", errors="replace") as f:
                return f.read()
        except OSError as e:
            return f"(no agent.log: {e})"

    def instance_pids(self):
        pids = []
        for path in glob.glob(os.path.join(RECORDS, "*.json")):
            try:
                with open(path) as f:
                    pids.append(int(json.load(f)["pid"]))
            except (OSError, ValueError, KeyError):
                pass
        return [p for p in pids if pid_alive(p)]

    def api_up(self, token):
        return http_get("http://127.0.0.1:7070/v1/health", headers={"Authorization": f"Bearer {token}"})[0] == 200

    def test_install_start_use_stop_purge(self):
        # -- install ------------------------------------------------------
        r = run(["dpkg", "-i", self.deb], timeout=300, env=self.env)
        self.we_installed = True
        self.assertEqual(r.returncode, 0, f"dpkg -i failed:\n{r.stdout}\n{r.stderr}")
        self.assertTrue(installed())
        token_stat = os.stat("/etc/reactor/token")
        self.assertEqual(stat.S_IMODE(token_stat.st_mode), 0o600)
        with open("/etc/reactor/token") as f:
            token = f.read().strip()
        self.assertRegex(token, r"^[0-9a-f]{64}$")
        self.assertEqual(stat.S_IMODE(os.stat("/var/lib/reactor").st_mode), 0o750)
        self.assertTrue(os.path.isdir("/var/log/reactor"))
        self.assertTrue(os.path.isdir("/etc/reactor/endpoints"))
        self.assertTrue(glob.glob("/etc/rc2.d/S*reactor-agent"), "update-rc.d defaults did not run")

        self.assertTrue(shutil.which("systemd-analyze"),
                        "systemd-analyze is not installed (packaging/install-deps.sh installs systemd)")
        r = run(["systemd-analyze", "verify", "/lib/systemd/system/reactor-agent.service"], env=self.env)
        self.assertEqual(r.returncode, 0, f"systemd-analyze verify:\n{r.stdout}{r.stderr}")
        self.assertNotIn("reactor-agent.service:", r.stdout + r.stderr)

        # -- start through the init script --------------------------------
        # postinst may have started it already (no policy-rc.d): start is
        # idempotent. Calling the script directly is not subject to
        # policy-rc.d, which only governs invoke-rc.d.
        r = self.init("start")
        self.assertEqual(r.returncode, 0, f"start:\n{r.stdout}{r.stderr}\n{self.agent_log()}")
        agent_pid = pid_from(PIDFILE)
        self.assertTrue(pid_alive(agent_pid))
        self.assertEqual(os.readlink(f"/proc/{agent_pid}/exe"), "/usr/sbin/reactor-agent")
        wait_until(lambda: self.api_up(token) or not pid_alive(agent_pid), timeout=30, what="the installed API")
        self.assertTrue(pid_alive(agent_pid), self.agent_log())
        self.assertEqual(self.init("status").returncode, 0)
        self.assertEqual(self.init("start").returncode, 0, "start on a running agent is a no-op")
        self.assertEqual(pid_from(PIDFILE), agent_pid)

        # The installed CLI finds the API and the token with no flags or env.
        r = run(["/usr/bin/reactor", "list"], timeout=30, env=self.env)
        self.assertEqual(r.returncode, 0, f"reactor list:\n{r.stdout}{r.stderr}")
        # The agent uses the packaged templates; its log is the init script's --log-file.
        nginx_pid = wait_until(lambda: pid_from(NGINX_PIDFILE), timeout=20, what="the managed nginx")
        self.assertIn("started", self.agent_log())
        # One process instance, to see it outlive agent restarts and stop on removal.
        web_port = free_port()
        r = subprocess.run(["/usr/bin/reactor", "manage", "web", "-"], input=process_endpoint_ini(web_port),
                           capture_output=True, text=True, timeout=30, env=self.env)
        self.assertEqual(r.returncode, 0, f"reactor manage:\n{r.stdout}{r.stderr}")
        instance = wait_until(lambda: self.instance_pids(), timeout=30, what="a process instance")[0]
        self.seen_instances = [instance]
        wait_until(lambda: http_get(f"http://127.0.0.1:{web_port}/")[0] == 200, timeout=30,
                   what="the endpoint serving through the installed nginx")

        # -- logrotate, then SIGUSR1 reopens the log ------------------------
        if shutil.which("logrotate"):
            state = tempfile.NamedTemporaryFile(prefix="logrotate-state-", delete=False)
            state.close()
            self.addCleanup(os.unlink, state.name)
            r = run(["logrotate", "-f", "-s", state.name, "/etc/logrotate.d/reactor"], env=self.env)
            self.assertEqual(r.returncode, 0, f"logrotate:\n{r.stdout}{r.stderr}")
            self.assertTrue(os.path.exists("/var/log/reactor/agent.log.1"))
            wait_until(lambda: "SIGUSR1: log file" in self.agent_log(), timeout=10,
                       what="the agent writing to the new agent.log")
        else:
            print("logrotate not installed: /etc/logrotate.d/reactor not exercised")

        # -- reload, restart: nginx keeps running, the agent adopts it -------
        r = self.init("reload")
        self.assertEqual(r.returncode, 0, f"reload:\n{r.stdout}{r.stderr}")
        self.assertEqual(pid_from(PIDFILE), agent_pid)
        r = self.init("restart")
        self.assertEqual(r.returncode, 0, f"restart:\n{r.stdout}{r.stderr}\n{self.agent_log()}")
        self.assertFalse(pid_alive(agent_pid))
        agent_pid = pid_from(PIDFILE)
        wait_until(lambda: self.api_up(token) or not pid_alive(agent_pid), timeout=30, what="the restarted API")
        self.assertTrue(pid_alive(agent_pid), self.agent_log())
        self.assertTrue(pid_alive(nginx_pid), "an agent restart must not stop nginx")
        self.assertEqual(pid_from(NGINX_PIDFILE), nginx_pid, "the restarted agent adopts the running nginx")
        self.assertTrue(pid_alive(instance), "an agent restart must not stop the instances")

        # -- stop -----------------------------------------------------------
        r = self.init("stop")
        self.assertEqual(r.returncode, 0, f"stop:\n{r.stdout}{r.stderr}")
        self.assertFalse(pid_alive(agent_pid))
        self.assertFalse(os.path.exists(PIDFILE))
        self.assertEqual(self.init("status").returncode, 3)
        self.assertEqual(self.init("stop").returncode, 0, "stop on a stopped agent is a no-op")
        # A stale pid file: LSB status 1.
        with open(PIDFILE, "w") as f:
            f.write(f"{agent_pid}\n")
        self.assertEqual(self.init("status").returncode, 1)
        os.unlink(PIDFILE)
        self.assertTrue(pid_alive(nginx_pid), "stopping the agent leaves nginx serving")
        self.assertTrue(pid_alive(instance), "stopping the agent leaves the instances serving")

        # -- purge ------------------------------------------------------------
        r = run(["dpkg", "--purge", "reactor"], timeout=120, env=self.env)
        self.assertEqual(r.returncode, 0, f"dpkg --purge:\n{r.stdout}{r.stderr}")
        self.we_installed = False
        self.assertFalse(installed())
        wait_until(lambda: not pid_alive(nginx_pid), timeout=20, what="removal to stop the managed nginx")
        wait_until(lambda: not pid_alive(instance), timeout=20, what="removal to stop the process instances")
        for path in STATE_PATHS + [INIT, "/usr/sbin/reactor-agent", "/usr/share/reactor"]:
            self.assertFalse(os.path.exists(path), f"{path} left after purge")
        self.assertFalse(glob.glob("/etc/rc?.d/*reactor-agent"))
        self.assertTrue(port_free(7070))


if __name__ == "__main__":
    unittest.main()
