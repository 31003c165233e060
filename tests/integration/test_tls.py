"""The agent's API beyond loopback: TLS ([agent] tls_cert_file, tls_key_file)
or an explicit insecure_listen = true.

A throwaway CA and server certificate are made with the real `openssl` in a
temp dir. A TLS agent on 127.0.0.1 is reached by the real `reactor` CLI with
--ca-file (and fails clearly without it or with another CA), plain HTTP to
its port gets no answer, and the dashboard login's cookie carries Secure. An
agent with `listen = 0.0.0.0:PORT` and no TLS refuses to start naming
[agent] listen; with insecure_listen = true it starts. Bad TLS files stop
the agent before it starts anything, naming the key and the file.

Traffic goes to 127.0.0.1 only (an agent bound to 0.0.0.0 is reached there).
"""
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import BIN, Agent, free_port, http_get, wait_until

AGENT = os.path.join(BIN, "reactor-agent")
CLI = os.path.join(BIN, "reactor")

CA_CNF = """[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = {cn}
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

SERVER_EXT = """basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
"""


def openssl(*args, cwd):
    exe = shutil.which("openssl")
    if not exe:
        raise AssertionError("openssl (Debian package openssl) is needed to make the test certificates; "
                             "run packaging/install-deps.sh")
    r = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {r.stderr}")


class Pki:
    """A CA, a server certificate for 127.0.0.1/localhost signed by it, a
    second CA that signed nothing of ours, and a key matching neither."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="rit-tls-")
        d = self.dir = self.tmp.name
        os.chmod(d, 0o755)
        for name, cn in (("ca", "reactor test CA"), ("other_ca", "some other CA")):
            with open(os.path.join(d, f"{name}.cnf"), "w") as f:
                f.write(CA_CNF.format(cn=cn))
            openssl("req", "-x509", "-config", f"{name}.cnf", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
                    "-days", "2", cwd=d)
        with open(os.path.join(d, "server.ext"), "w") as f:
            f.write(SERVER_EXT)
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=d)
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "stray.key", cwd=d)
        self.ca = self.path("ca.pem")
        self.other_ca = self.path("other_ca.pem")
        self.cert = self.path("server.pem")
        self.key = self.path("server.key")
        self.stray_key = self.path("stray.key")

    def path(self, name):
        return os.path.join(self.dir, name)

    def cleanup(self):
        self.tmp.cleanup()


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def tls_conf(cert, key):
    return f"tls_cert_file = {cert}\ntls_key_file = {key}\n"


def set_listen(agent, listen):
    with open(agent.config) as f:
        conf = f.read()
    old = f"listen = 127.0.0.1:{agent.api_port}"
    assert old in conf
    with open(agent.config, "w") as f:
        f.write(conf.replace(old, f"listen = {listen}"))


def https_request(method, url, ca, body=None, headers=None, timeout=5.0):
    """(status, headers, body) over https verified against `ca`."""
    ctx = ssl.create_default_context(cafile=ca)
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode(errors="replace")


class TlsAgent(Agent):
    """An Agent whose API is HTTPS: started and waited for over TLS."""

    def __init__(self, name, pki):
        super().__init__(name, extra_conf=tls_conf(pki.cert, pki.key))
        self.pki = pki
        self.url = f"https://127.0.0.1:{self.api_port}"

    def healthy(self):
        try:
            return https_request("GET", self.url + "/v1/health", self.pki.ca,
                                 headers={"Authorization": f"Bearer {self.token()}"}, timeout=2)[0] == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self):
        self.log = open(os.path.join(self.dir, "agent.log"), "ab")
        self.proc = subprocess.Popen([AGENT, "--config", self.config], stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(lambda: self.proc.poll() is not None or self.healthy(), timeout=20, what="agent API over TLS")
        if self.proc.poll() is not None:
            raise AssertionError(f"agent exited with {self.proc.returncode}: {self.agent_log()[-2000:]}")
        pid = self.nginx_pid()
        if pid:
            self.all_nginx_pids.add(pid)
        return self


def run_cli(*args, env_extra=None, input=None):
    """The real CLI with no REACTOR_* from the caller's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REACTOR_")}
    env.update(env_extra or {})
    return subprocess.run([CLI, *args], input=input, capture_output=True, text=True, env=env, timeout=30)


class TlsApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()
        cls.agent = TlsAgent("tls_api", cls.pki)
        try:
            cls.agent.start()
        except BaseException:
            cls.agent.cleanup()
            cls.pki.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()
        cls.pki.cleanup()

    def cli(self, *args, **kw):
        return run_cli("--token-file", self.agent.token_file, *args, **kw)

    def test_cli_with_the_ca_file_reaches_the_agent_over_https(self):
        r = self.cli("--api", self.agent.url, "--ca-file", self.pki.ca, "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), [])
        # The host name is checked too: localhost is in the certificate.
        r = self.cli("--api", f"https://localhost:{self.agent.api_port}", "--ca-file", self.pki.ca, "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        # A change goes through as well (static endpoint: nothing to launch).
        ini = f"[endpoint]\nurl = http://127.0.0.1:{free_port()}/\ncloud = static\n" \
              f"static_instances = 127.0.0.1:9\n"
        r = self.cli("--api", self.agent.url, "--ca-file", self.pki.ca, "manage", "tlsweb", "-", input=ini)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.cli("--api", self.agent.url, "--ca-file", self.pki.ca, "status", "tlsweb", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["name"], "tlsweb")
        r = self.cli("--api", self.agent.url, "--ca-file", self.pki.ca, "unmanage", "tlsweb")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_host_port_with_a_ca_file_means_https_and_the_env_var_works(self):
        r = self.cli("--api", f"127.0.0.1:{self.agent.api_port}", "--ca-file", self.pki.ca, "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.cli("list", env_extra={"REACTOR_API": f"127.0.0.1:{self.agent.api_port}",
                                        "REACTOR_CA_FILE": self.pki.ca})
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_cli_finds_a_tls_agent_through_its_agent_conf(self):
        # No --api: the CLI reads listen and tls_cert_file from the agent.conf
        # REACTOR_CONFIG names, and trusts that very certificate.
        r = self.cli("list", "--json", env_extra={"REACTOR_CONFIG": self.agent.config})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), [])

    def test_a_certificate_that_does_not_verify_is_a_clear_error(self):
        # No CA file: the system's CAs do not know the test CA.
        r = self.cli("--api", self.agent.url, "list")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn(f"cannot reach the agent at {self.agent.url}", r.stderr)
        self.assertIn("SSL certificate problem", r.stderr)
        self.assertIn("--ca-file", r.stderr)
        # Another CA.
        r = self.cli("--api", self.agent.url, "--ca-file", self.pki.other_ca, "list")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("SSL certificate problem", r.stderr)
        self.assertIn(self.pki.other_ca, r.stderr)
        # A CA file that cannot be read; --ca-file for a plain http:// address.
        r = self.cli("--api", self.agent.url, "--ca-file", self.pki.path("absent.pem"), "list")
        self.assertEqual(r.returncode, 2)
        self.assertIn("absent.pem", r.stderr)
        r = self.cli("--api", f"http://127.0.0.1:{self.agent.api_port}", "--ca-file", self.pki.ca, "list")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--ca-file verifies an https:// agent", r.stderr)

    def test_plain_http_to_the_tls_port_gets_no_answer(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.agent.api_port, timeout=10)
        try:
            with self.assertRaises((http.client.HTTPException, ConnectionError)):
                conn.request("GET", "/v1/health", headers={"Authorization": f"Bearer {self.agent.token()}"})
                conn.getresponse()
        finally:
            conn.close()
        self.assertEqual(http_get(f"http://127.0.0.1:{self.agent.api_port}/v1/health")[0], 0)
        r = self.cli("--api", f"http://127.0.0.1:{self.agent.api_port}", "list")
        self.assertEqual(r.returncode, 1)
        self.assertIn("if the agent serves TLS", r.stderr)
        # The agent keeps serving TLS after the plain attempts.
        self.assertTrue(self.agent.healthy())

    def test_event_stream_follows_over_tls(self):
        # `reactor log --follow` reads GET /v1/stream (Server-Sent Events):
        # a new agent-wide event arrives through the TLS stream.
        out_path = os.path.join(self.agent.dir, "follow.out")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REACTOR_")}
        with open(out_path, "w+") as out:
            p = subprocess.Popen([CLI, "--token-file", self.agent.token_file, "--api", self.agent.url, "--ca-file",
                                  self.pki.ca, "log", "_agent", "--follow"], stdout=out, stderr=subprocess.STDOUT,
                                 env=env)
            try:
                wait_until(lambda: "started" in read(out_path), timeout=10, what="the agent's history")
                name = json.loads(self.cli("--api", self.agent.url, "--ca-file", self.pki.ca, "managers",
                                           "--json").stdout)[0]["name"]
                for action in ("cordon", "uncordon"):
                    r = self.cli("--api", self.agent.url, "--ca-file", self.pki.ca, "managers", action, name)
                    self.assertEqual(r.returncode, 0, r.stderr)
                wait_until(lambda: "uncordoned" in read(out_path), timeout=10,
                           what="the uncordon event through the TLS stream")
                self.assertIsNone(p.poll(), read(out_path))
            finally:
                p.terminate()
                p.wait(timeout=10)

    def test_dashboard_login_cookie_carries_secure(self):
        status, headers, body = https_request("POST", self.agent.url + "/v1/session", self.pki.ca,
                                              body=json.dumps({"token": self.agent.token()}).encode(),
                                              headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        cookie = headers.get("Set-Cookie", "")
        attrs = [a.strip() for a in cookie.split(";")]
        self.assertTrue(attrs[0].startswith("reactor_session="), cookie)
        self.assertIn("Secure", attrs)
        self.assertIn("HttpOnly", attrs)
        self.assertIn("SameSite=Strict", attrs)
        self.assertIn("csrf", json.loads(body))
        # The session works over TLS, and logging out clears it (Secure too).
        sid = attrs[0]
        status, _, body = https_request("GET", self.agent.url + "/v1/session", self.pki.ca, headers={"Cookie": sid})
        self.assertEqual(status, 200, body)
        csrf = json.loads(body)["csrf"]
        status, headers, _ = https_request("DELETE", self.agent.url + "/v1/session", self.pki.ca,
                                           headers={"Cookie": sid, "X-CSRF-Token": csrf})
        self.assertEqual(status, 200)
        self.assertIn("Secure", [a.strip() for a in headers.get("Set-Cookie", "").split(";")])


class ListenSecurity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()

    @classmethod
    def tearDownClass(cls):
        cls.pki.cleanup()

    def new_agent(self, name, extra_conf=""):
        a = Agent(name, extra_conf=extra_conf)
        self.addCleanup(a.cleanup)
        return a

    def run_agent(self, a):
        """Runs an agent that must refuse to start: (exit code, output)."""
        r = subprocess.run([AGENT, "--config", a.config], capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout + r.stderr

    def assert_nothing_started(self, a, port):
        self.assertFalse(os.path.exists(os.path.join(a.prefix, "logs/nginx.pid")), "nginx was started")
        self.assertEqual(http_get(f"http://127.0.0.1:{port}/v1/health")[0], 0)

    def test_non_loopback_listen_without_tls_refuses_to_start(self):
        a = self.new_agent("listen_refused")
        set_listen(a, f"0.0.0.0:{a.api_port}")
        code, out = self.run_agent(a)
        self.assertEqual(code, 2, out)
        self.assertIn(f"{a.config}: line 3: [agent] listen: 0.0.0.0:{a.api_port} is not a loopback address", out)
        self.assertIn("tls_cert_file and tls_key_file", out)
        self.assertIn("insecure_listen = true", out)
        self.assert_nothing_started(a, a.api_port)
        r = subprocess.run([AGENT, "--check-config", a.config], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("[agent] listen", r.stderr)

    def test_insecure_listen_true_starts_plain_http_beyond_loopback(self):
        a = self.new_agent("listen_insecure", extra_conf="insecure_listen = true\n")
        set_listen(a, f"0.0.0.0:{a.api_port}")
        a.start()  # waits for http://127.0.0.1:PORT/v1/health
        self.assertEqual(a.cli("list", check=0).returncode, 0)
        # Plain HTTP: the session cookie has no Secure.
        req = urllib.request.Request(f"http://127.0.0.1:{a.api_port}/v1/session", method="POST",
                                     data=json.dumps({"token": a.token()}).encode(),
                                     headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=5) as r:
            attrs = [x.strip() for x in r.headers.get("Set-Cookie", "").split(";")]
        self.assertIn("HttpOnly", attrs)
        self.assertNotIn("Secure", attrs)

    def test_tls_allows_a_non_loopback_listen(self):
        a = TlsAgent("listen_tls_any", self.pki)
        self.addCleanup(a.cleanup)
        set_listen(a, f"0.0.0.0:{a.api_port}")
        a.start()  # waits for https://127.0.0.1:PORT/v1/health, verified against the CA
        r = run_cli("--token-file", a.token_file, "--api", a.url, "--ca-file", self.pki.ca, "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        # Bound to every address, it answers on 127.0.0.2 too, a name its
        # certificate (IP:127.0.0.1, DNS:localhost) does not carry: refused.
        r = run_cli("--token-file", a.token_file, "--api", f"https://127.0.0.2:{a.api_port}", "--ca-file",
                    self.pki.ca, "list")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("no alternative certificate subject name matches target host name '127.0.0.2'", r.stderr)
        self.assertIn("give --api a name or address the certificate carries", r.stderr)

    def test_bad_tls_files_stop_the_agent_before_it_starts_anything(self):
        cases = [
            (self.pki.cert, self.pki.stray_key,
             f"[agent] tls_key_file: {self.pki.stray_key}: the private key does not match the certificate in "
             f"tls_cert_file ({self.pki.cert})"),
            (self.pki.path("absent.pem"), self.pki.key,
             f"[agent] tls_cert_file: {self.pki.path('absent.pem')}: cannot read: No such file or directory"),
            (self.pki.cert, self.pki.path("server.csr"), f"[agent] tls_key_file: {self.pki.path('server.csr')}: "
                                                          "not an unencrypted PEM private key"),
        ]
        for i, (cert, key, message) in enumerate(cases):
            with self.subTest(message=message):
                a = self.new_agent(f"tls_bad_{i}", extra_conf=tls_conf(cert, key))
                code, out = self.run_agent(a)
                self.assertEqual(code, 1, out)
                self.assertIn(a.config + ": " + message, out)
                self.assert_nothing_started(a, a.api_port)
                self.assertFalse(os.path.exists(a.token_file), "the token was created before the TLS check")
                r = subprocess.run([AGENT, "--check-config", a.config], capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 2)
                self.assertIn(a.config + ": " + message, r.stderr)


if __name__ == "__main__":
    unittest.main()
