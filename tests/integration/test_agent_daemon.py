"""reactor-agent as a daemon: --check-config, the packaged agent.conf,
--log-file with SIGUSR1 reopening (logrotate), and the CLI finding the agent
through agent.conf. Runs the real binaries; needs no root.
"""
import os
import re
import signal
import subprocess
import tempfile
import unittest

from harness import BIN, SRC, Agent, http_get, wait_until

AGENT = os.path.join(BIN, "reactor-agent")
PACKAGED_CONF = os.path.join(SRC, "packaging", "agent.conf")


def check_config(path):
    return subprocess.run([AGENT, "--check-config", path], capture_output=True, text=True, timeout=30)


def agent_keys_from_source():
    """(section, key) of every agent.conf key, from the key table in agent_config.cc."""
    with open(os.path.join(SRC, "agent", "common", "agent_config.cc")) as f:
        text = f.read()
    return set(re.findall(r'\{"(agent|nginx|cloud:docker|cloud:process)",\s*"([a-z_]+)"', text))


def commented_keys(text):
    """(section, key, default) of every `#key = value` line, in file order."""
    out, section = [], None
    for line in text.splitlines():
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^#([a-z_]+) = ?(.*)$", line)
        if m:
            out.append((section, m.group(1), m.group(2)))
    return out


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="rit-cc-")
        self.addCleanup(self.dir.cleanup)

    def write(self, text):
        path = os.path.join(self.dir.name, "agent.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_packaged_config_is_valid_and_all_defaults(self):
        r = check_config(PACKAGED_CONF)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(": ok", r.stdout)

    def test_packaged_config_comments_every_key_with_a_valid_default(self):
        with open(PACKAGED_CONF) as f:
            text = f.read()
        listed = commented_keys(text)
        self.assertEqual({(s, k) for s, k, _ in listed}, agent_keys_from_source(),
                         "packaging/agent.conf must show every agent.conf key, commented")
        # Uncommenting every default must give a valid file (the host name
        # placeholder is the only value that is not literal).
        uncommented = re.sub(r"^#name = <hostname>$", "name = test-host", text, flags=re.M)
        uncommented = re.sub(r"^#([a-z_]+ =)", r"\1", uncommented, flags=re.M)
        r = check_config(self.write(uncommented))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_values_exit_2_naming_file_line_section_and_key(self):
        path = self.write("[agent]\nslots = -1\nbogus = 1\n[nginx]\nmode = sometimes\n")
        r = check_config(path)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}: line 2: [agent] slots:", r.stderr)
        self.assertIn(f"{path}: line 3: [agent] bogus: unknown key", r.stderr)
        self.assertIn(f"{path}: line 5: [nginx] mode:", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_missing_file_exits_2(self):
        r = check_config(os.path.join(self.dir.name, "absent.conf"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("absent.conf", r.stderr)

    def test_bad_config_stops_the_agent_with_exit_2_and_logs_why(self):
        path = self.write("[agent]\ninterval = 5m\n")
        log = os.path.join(self.dir.name, "agent.log")
        r = subprocess.run([AGENT, "--config", path, "--log-file", log], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("[agent] interval", r.stderr)
        with open(log) as f:
            self.assertIn("[agent] interval", f.read())

    def test_unwritable_log_file_exits_2(self):
        r = subprocess.run([AGENT, "--config", PACKAGED_CONF, "--log-file", "/nonexistent-dir/agent.log"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent-dir/agent.log", r.stderr)


class LogFileAgent(Agent):
    """The harness's agent, logging with --log-file instead of stdout."""

    def start(self):
        self.log_file = os.path.join(self.dir, "own.log")
        self.log = open(os.path.join(self.dir, "agent.log"), "ab")  # stdout/stderr: should stay empty
        self.proc = subprocess.Popen([AGENT, "--config", self.config, "--log-file", self.log_file],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: self.proc.poll() is not None or
                   http_get(f"http://127.0.0.1:{self.api_port}/v1/health",
                            headers={"Authorization": f"Bearer {self.token()}"})[0] == 200,
                   timeout=20, what="agent API")
        if self.proc.poll() is not None:
            raise AssertionError(f"agent exited with {self.proc.returncode}: {self.agent_log()[-2000:]}")
        return self


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class Daemon(unittest.TestCase):
    def setUp(self):
        self.agent = LogFileAgent(self._testMethodName)
        self.addCleanup(self.agent.cleanup)
        self.agent.start()

    def test_log_file_is_reopened_on_sigusr1(self):
        a = self.agent
        wait_until(lambda: read(a.log_file), timeout=10, what="first lines in --log-file")
        # What logrotate does: rename, then SIGUSR1 (postrotate).
        rotated = a.log_file + ".1"
        os.rename(a.log_file, rotated)
        a.proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: "SIGUSR1: log file" in read(a.log_file), timeout=10, what="a new log file after SIGUSR1")
        self.assertNotIn("SIGUSR1", read(rotated))
        # Later lines go to the new file, none to stdout/stderr.
        a.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(read(a.log_file).splitlines()) >= 2, timeout=10, what="lines after the reload")
        self.assertIsNone(a.proc.poll())
        self.assertEqual(a.agent_log(), "")

    def test_cli_finds_the_agent_through_agent_conf(self):
        # No --api/--token-file and no REACTOR_API/REACTOR_TOKEN: the CLI
        # reads listen and token_file from the agent.conf REACTOR_CONFIG names
        # (/etc/reactor/agent.conf when installed).
        env = {k: v for k, v in os.environ.items() if k not in ("REACTOR_API", "REACTOR_TOKEN")}
        reactor = os.path.join(BIN, "reactor")
        r = subprocess.run([reactor, "list"], capture_output=True, text=True, timeout=30,
                           env=dict(env, REACTOR_CONFIG=self.agent.config))
        self.assertEqual(r.returncode, 0, r.stderr)
        # A config the CLI cannot parse is ignored: back to the built-in
        # defaults (127.0.0.1:7070), so this agent is not reached.
        bad = os.path.join(self.agent.dir, "bad.conf")
        with open(bad, "w") as f:
            f.write(f"[agent]\nlisten = 127.0.0.1:{self.agent.api_port}\nbogus = 1\n")
        r = subprocess.run([reactor, "--api", f"127.0.0.1:{self.agent.api_port}", "list"], capture_output=True,
                           text=True, timeout=30, env=dict(env, REACTOR_CONFIG=bad))
        self.assertNotEqual(r.returncode, 0, "the token must not come from an invalid agent.conf")
        # Flags still win over agent.conf.
        r = subprocess.run([reactor, "--api", f"127.0.0.1:{self.agent.api_port}", "--token-file",
                            self.agent.token_file, "list"], capture_output=True, text=True, timeout=30,
                           env=dict(env, REACTOR_CONFIG=bad))
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
