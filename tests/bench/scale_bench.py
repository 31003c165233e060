#!/usr/bin/env python3
"""Scale (SPEC §11): one agent with 1,000 endpoints and 10,000 backends.

Starts 10,000 loopback HTTP backends (a few selector-based server processes,
each serving thousands of ports), the real reactor-agent with its own managed
nginx in a private temp dir (tests/integration/harness.py), and manages 1,000
`cloud = static` endpoints of 10 backends each, spread over a few dozen nginx
ports with distinct paths (endpoints sharing a port share one nginx server).

Measures:
  - a route apply at that size: from one change on a port nginx listens on
    (a new endpoint, or one endpoint's `balance` round_robin -> ip_hash) to
    nginx serving it (the new path answers / one client sticks to one
    backend), and the reloads counted meanwhile (goal: none, SPEC §11);
  - a new port: from the PUT to nginx answering on it (a reload);
  - the agent's resident memory and CPU once every backend is healthy;
  - that traffic through nginx reaches the backends (200s).

Usage: python3 tests/bench/scale_bench.py [BIN_DIR] [--endpoints N] [--per-endpoint K]
                                          [--ports P] [--runs R] [--cpu-seconds S]
Prints a table; exits 1 if a route apply misses median 50 ms / max 250 ms or
reloads nginx, a new port takes over 1 s, or the agent's RSS exceeds 48 MiB.
"""
import argparse
import http.client
import json
import os
import re
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../integration"))

APPLY_MEDIAN_GOAL_S = 0.050
APPLY_MAX_GOAL_S = 0.250
NEW_PORT_GOAL_S = 1.0
RSS_GOAL_MIB = 48.0  # issue 14 / SPEC §11
RELOAD_DELAY_MS = 50
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- backends -----------------------------------------------------------------

def serve_backends(lo, hi, count):
    """Child process: listens on `count` free ports in [lo, hi) of 127.0.0.1,
    prints them as one JSON line, then answers every request with 200 until
    its parent goes away."""
    parent = os.getppid()
    sel = selectors.DefaultSelector()
    ports = []
    for port in range(lo, hi):
        if len(ports) == count:
            break
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(128)
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, port)
        ports.append(port)
    print(json.dumps(ports), flush=True)
    buffers = {}

    def close(conn):
        sel.unregister(conn)
        buffers.pop(conn, None)
        conn.close()

    while os.getppid() == parent:
        for key, _ in sel.select(timeout=1.0):
            sock = key.fileobj
            if isinstance(key.data, int):  # a listener: accept what is queued
                while True:
                    try:
                        conn, _ = sock.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    conn.setblocking(False)
                    buffers[conn] = (key.data, b"")
                    sel.register(conn, selectors.EVENT_READ, None)
                continue
            port, buf = buffers[sock]
            try:
                chunk = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                close(sock)
                continue
            buf += chunk
            closed = False
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                low = head.lower()
                keep = (b"http/1.1" in low.split(b"\r\n", 1)[0] and b"connection: close" not in low)
                body = b"backend %d\n" % port
                resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s" %
                        (len(body), b"" if keep else b"Connection: close\r\n", body))
                try:
                    sock.send(resp)
                except OSError:
                    keep = False
                if not keep:
                    close(sock)
                    closed = True
                    break
            if not closed:
                buffers[sock] = (port, buf)


def start_backend_servers(total, processes):
    """Starts `processes` server processes sharing `total` ports below the
    ephemeral range. Returns (list of Popen, list of ports)."""
    per = (total + processes - 1) // processes
    span = 20000 // processes
    procs, ports = [], []
    for i in range(processes):
        lo = 10000 + i * span
        n = min(per, total - len(ports))
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", str(lo), str(lo + span), str(n)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        procs.append(p)
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=60):
            raise AssertionError("backend server did not report its ports within 60 s")
        got = json.loads(p.stdout.readline())
        if len(got) < n:
            raise AssertionError(f"backend server bound only {len(got)} of {n} ports in {lo}-{lo + span}")
        ports.extend(got)
    return procs, ports


def free_low_port(taken, lo=9000, hi=10000):
    """A free port below the ephemeral range (health checks churn through
    ephemeral ports, which could race with nginx binding one)."""
    for port in range(lo, hi):
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise AssertionError(f"no free port in {lo}-{hi}")


# -- processes ------------------------------------------------------------------

def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def thread_cpu_s(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return set(int(x) for x in f.read().split())
    except OSError:
        return set()


def stop_pid(proc, timeout=10.0):
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass


# -- API --------------------------------------------------------------------------

class Api:
    """One keep-alive connection to the agent's REST API."""

    def __init__(self, port, token):
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}"}
        self.conn = None

    def call(self, method, path, body=None, timeout=60):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self.conn.request(method, path, body=body, headers=self.headers)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, (json.loads(data) if data else None)
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        return 0, None

    def put_endpoint(self, name, ini):
        status, body = self.call("PUT", f"/v1/endpoints/{name}", ini.encode())
        if status not in (200, 201):
            raise AssertionError(f"PUT {name}: {status} {body}")

    def set_key(self, name, section, key, value):
        status, body = self.call("PUT", f"/v1/endpoints/{name}/config",
                                 json.dumps({"section": section, "key": key, "value": value}).encode())
        if status != 200:
            raise AssertionError(f"set {name} [{section}] {key}: {status} {body}")

    def endpoints(self):
        status, body = self.call("GET", "/v1/endpoints")
        if status != 200:
            raise AssertionError(f"GET /v1/endpoints: {status} {body}")
        return body["endpoints"]

    def agent_log(self, after):
        status, body = self.call("GET", f"/v1/endpoints/_agent/log?after={after}")
        if status != 200:
            raise AssertionError(f"GET _agent log: {status} {body}")
        return body["events"], body["next"]


def http_status(port, path, timeout=2.0):
    """(status, body) of GET http://127.0.0.1:port/path; (0, '') on failure."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return 0, ""
    finally:
        conn.close()


def poll(predicate, timeout, interval=0.005):
    """Polls until predicate() is truthy; returns (value, monotonic time seen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v, time.monotonic()
        time.sleep(interval)
    return None, time.monotonic()


# -- the benchmark ---------------------------------------------------------------

def endpoint_ini(port, path, backends, balance="round_robin"):
    return f"""[endpoint]
url = http://127.0.0.1:{port}{path}
cloud = static
static_instances = {", ".join(f"127.0.0.1:{p}" for p in backends)}

[health]
path = /
interval = 1s

[loadbalancer:nginx]
balance = {balance}
"""


def fmt_ms(seconds):
    return f"{seconds * 1000:.0f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir", nargs="?", default=None)
    ap.add_argument("--endpoints", type=int, default=1000)
    ap.add_argument("--per-endpoint", type=int, default=10)
    ap.add_argument("--ports", type=int, default=50, help="nginx listen ports the endpoints share")
    ap.add_argument("--runs", type=int, default=20, help="measured route applies (alternating kinds)")
    ap.add_argument("--port-runs", type=int, default=3, help="measured applies of an endpoint on a new port")
    ap.add_argument("--cpu-seconds", type=float, default=10.0)
    ap.add_argument("--backend-processes", type=int, default=2)
    ap.add_argument("--healthy-timeout", type=float, default=180.0)
    args = ap.parse_args()
    if args.bin_dir:
        os.environ["REACTOR_BIN_DIR"] = os.path.abspath(args.bin_dir)
    from harness import Agent  # noqa: E402  (reads REACTOR_BIN_DIR at import)

    n_endpoints, per = args.endpoints, args.per_endpoint
    n_backends = n_endpoints * per
    # 10,000 listeners plus their connections, and the agent's 10,000 checks:
    # every child inherits this limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < n_backends // args.backend_processes + 2000:
        print(f"RLIMIT_NOFILE hard limit {hard} is too low for {n_backends} backends", file=sys.stderr)
        return 2

    rows = []
    failures = []
    backends = []
    agent = None
    try:
        t = time.monotonic()
        backends, ports = start_backend_servers(n_backends, args.backend_processes)
        print(f"{len(ports)} backends listening in {time.monotonic() - t:.1f} s", flush=True)

        agent = Agent("scale", nginx_extra=f"reload_delay = {RELOAD_DELAY_MS}ms")
        # The harness's test interval is 500ms; the benchmark runs the default 1s.
        with open(agent.config) as f:
            conf = f.read().replace("interval = 500ms", "interval = 1s")
        with open(agent.config, "w") as f:
            f.write(conf)
        agent.start()
        api = Api(agent.api_port, agent.token())
        pid = agent.proc.pid

        taken = set()
        nginx_ports = [free_low_port(taken) for _ in range(args.ports)]
        layout = {}  # name → (port, path, backends)
        for i in range(n_endpoints):
            port = nginx_ports[i % len(nginx_ports)]
            path = f"/svc{i}/"  # no endpoint at "/": an unknown path is a 404 until its endpoint is applied
            layout[f"e{i:04d}"] = (port, path, ports[i * per:(i + 1) * per])

        t = time.monotonic()
        for name, (port, path, bk) in layout.items():
            api.put_endpoint(name, endpoint_ini(port, path, bk))
        manage_s = time.monotonic() - t
        print(f"managed {n_endpoints} endpoints in {manage_s:.1f} s", flush=True)
        rows.append(("manage 1,000 endpoints (sequential PUTs)", f"{manage_s:.1f} s", "—"))

        last_report = [time.monotonic()]

        def all_healthy():
            eps = api.endpoints()
            healthy = sum(e["healthy"] for e in eps)
            if time.monotonic() - last_report[0] >= 15:
                print(f"  {healthy} of {n_backends} backends healthy", flush=True)
                last_report[0] = time.monotonic()
            return healthy if len(eps) == n_endpoints and healthy == n_backends else None

        _, t_healthy = poll(all_healthy, timeout=args.healthy_timeout, interval=1.0)
        if all_healthy():
            healthy_s = t_healthy - t
            print(f"all {n_backends} backends healthy {healthy_s:.1f} s after the first PUT", flush=True)
            rows.append((f"all {n_backends:,} backends healthy (from the first PUT)", f"{healthy_s:.1f} s", "—"))
        else:
            # Measure the rest anyway: the numbers below are then taken while
            # the health checker is still failing some backends.
            healthy = sum(e["healthy"] for e in api.endpoints())
            failures.append(f"only {healthy} of {n_backends} backends healthy after {args.healthy_timeout:.0f} s "
                            "(the numbers are taken regardless)")
            rows.append((f"backends healthy {args.healthy_timeout:.0f} s after the first PUT",
                         f"{healthy:,} of {n_backends:,}", "all"))

        # Steady state: memory and CPU.
        time.sleep(3)
        main0 = thread_cpu_s(pid, pid)
        cpu0, w0 = proc_cpu_s(pid), time.monotonic()
        bcpu0 = sum(proc_cpu_s(b.pid) for b in backends)
        rss_samples = []
        while time.monotonic() - w0 < args.cpu_seconds:
            rss_samples.append(proc_status_kib(pid, "VmRSS"))
            time.sleep(0.5)
        cpu1, w1 = proc_cpu_s(pid), time.monotonic()
        main_frac = (thread_cpu_s(pid, pid) - main0) / (w1 - w0)
        bcpu1 = sum(proc_cpu_s(b.pid) for b in backends)
        cpu_frac = (cpu1 - cpu0) / (w1 - w0)
        rss_mib = max(rss_samples) / 1024
        hwm_mib = proc_status_kib(pid, "VmHWM") / 1024
        threads = proc_status_kib(pid, "Threads")
        rows.append(("agent RSS, all healthy (max over the CPU window)", f"{rss_mib:.1f} MiB (peak VmHWM "
                     f"{hwm_mib:.1f} MiB)", f"≤ {RSS_GOAL_MIB:.0f} MiB"))
        rows.append(("agent CPU, steady state (utime+stime / wall)",
                     f"{cpu_frac * 100:.1f}% of a core over {w1 - w0:.0f} s ({threads} threads)",
                     "health checks < 33% (separate bench)"))
        rows.append(("  of which: the loop thread (rounds, nginx)", f"{main_frac * 100:.1f}% of a core", "—"))
        rows.append(("backend servers' CPU (context)", f"{(bcpu1 - bcpu0) / (w1 - w0) * 100:.1f}% of a core", "—"))
        if rss_mib > RSS_GOAL_MIB:
            failures.append(f"agent RSS {rss_mib:.1f} MiB > {RSS_GOAL_MIB:.0f} MiB")

        # Traffic through nginx.
        sample = list(layout.items())[:: max(1, n_endpoints // 7)][:7]
        ok = total = wrong = 0
        for name, (port, path, bk) in sample:
            for _ in range(10):
                status, body = http_status(port, path)
                total += 1
                ok += status == 200
                if status == 200 and body.strip() not in {f"backend {p}" for p in bk}:
                    wrong += 1
        rows.append((f"traffic through nginx to {len(sample)} endpoints", f"{ok}/{total} × 200"
                     + (f", {wrong} from a wrong backend" if wrong else ""), "all 200"))
        if ok != total or wrong:
            failures.append(f"traffic: {ok}/{total} 200s, {wrong} from a wrong backend")

        # Config applies: route changes on ports nginx listens on (a push, no
        # reload), then new ports (a reload).
        applies = []  # (kind, total_s, api_s)
        _, seq = api.agent_log(0)

        def same_backend(port, path, n=6):
            bodies = set()
            for _ in range(n):
                status, body = http_status(port, path, timeout=1.0)
                if status != 200:
                    return False
                bodies.add(body)
            return len(bodies) == 1

        def count_reloads(after):
            n, nxt = 0, after
            while True:
                evs, nxt2 = api.agent_log(nxt)
                n += sum(1 for e in evs if e["kind"] == "reload")
                if nxt2 == nxt or not evs:
                    return n, nxt2
                nxt = nxt2

        balance_names = [n for n in list(layout)[7::37]]
        route_reloads = 0
        for run in range(args.runs):
            time.sleep(0.3 if run else 1.5)
            if run % 2 == 0:
                kind = "new endpoint"
                name = f"x{run:03d}"
                port = nginx_ports[run % len(nginx_ports)]
                path = f"/extra{run}/"
                bk = ports[(run * per) % n_backends:(run * per) % n_backends + per]
                t0w, t0 = time.time(), time.monotonic()
                api.put_endpoint(name, endpoint_ini(port, path, bk))
                t_api = time.monotonic()
                _, t_served = poll(lambda: http_status(port, path, timeout=1.0)[0] not in (0, 404), timeout=10)
                served = http_status(port, path)[0] not in (0, 404)
            else:
                kind = "balance change"
                name = balance_names[(run // 2) % len(balance_names)]
                port, path, _ = layout[name]
                t0w, t0 = time.time(), time.monotonic()
                api.set_key(name, "loadbalancer:nginx", "balance", "ip_hash")
                t_api = time.monotonic()
                # round_robin spreads consecutive requests over 10 backends;
                # ip_hash sends one client to one backend.
                _, t_served = poll(lambda: same_backend(port, path), timeout=10, interval=0.002)
                served = same_backend(port, path)
            if not served:
                failures.append(f"run {run + 1} ({kind}): nginx did not serve the change within 10 s")
                continue
            total_s = t_served - t0
            # The agent's "routes" event: when its loop pushed the change.
            push_s = float("nan")
            evs, seq = api.agent_log(seq)
            # (a late push of an earlier run may be in the same page: by time)
            pushes = [e for e in evs if e["kind"] == "routes" and e["time_ms"] / 1000.0 >= t0w - 0.005]
            if pushes:
                push_s = pushes[0]["time_ms"] / 1000.0 - t0w
            route_reloads += sum(1 for e in evs if e["kind"] == "reload")
            applies.append((kind, total_s, t_api - t0, push_s))
            print(f"run {run + 1}: {kind}: served after {fmt_ms(total_s)} (API answered at {fmt_ms(t_api - t0)}, "
                  f"pushed to nginx at {fmt_ms(push_s)})", flush=True)
        time.sleep(0.5)
        late_reloads, seq = count_reloads(seq)
        route_reloads += late_reloads

        port_applies = []
        for run in range(args.port_runs):
            time.sleep(1.0)
            name = f"p{run:03d}"
            port = free_low_port(taken)
            path = "/"
            bk = ports[run * per:(run + 1) * per]
            t0 = time.monotonic()
            api.put_endpoint(name, endpoint_ini(port, path, bk))
            _, t_served = poll(lambda: http_status(port, path, timeout=1.0)[0] not in (0, 404), timeout=10)
            if http_status(port, path)[0] in (0, 404):
                failures.append(f"new port run {run + 1}: nginx did not serve it within 10 s")
                continue
            port_applies.append(t_served - t0)
            print(f"new port {run + 1}: served after {fmt_ms(t_served - t0)}", flush=True)
        port_reloads, seq = count_reloads(seq)

        if applies:
            totals = [a[1] for a in applies]
            med, worst = statistics.median(totals), max(totals)
            rows.append((f"route apply (new endpoint / balance change on a listened port → nginx serves it, "
                         f"{len(applies)} runs)", f"median {fmt_ms(med)}, max {fmt_ms(worst)}",
                         f"median ≤ {APPLY_MEDIAN_GOAL_S * 1000:.0f} ms, max ≤ {APPLY_MAX_GOAL_S * 1000:.0f} ms"))
            for kind in ("new endpoint", "balance change"):
                k = [a[1] for a in applies if a[0] == kind]
                if k:
                    rows.append((f"  {kind} ({len(k)} runs)", f"median {fmt_ms(statistics.median(k))}, "
                                 f"max {fmt_ms(max(k))}", "—"))
            apis = [a[2] for a in applies]
            rows.append(("  of which: the API call (PUT, validation against 1,000 endpoints)",
                         f"median {fmt_ms(statistics.median(apis))}, max {fmt_ms(max(apis))}", "—"))
            pushes = [a[3] for a in applies if a[3] == a[3]]
            if pushes:
                rows.append(("  of which: change → the agent's loop pushes the route (API, waiting for and running "
                             "the round)", f"median {fmt_ms(statistics.median(pushes))}, max {fmt_ms(max(pushes))}",
                             "—"))
                after = [a[1] - a[3] for a in applies if a[3] == a[3]]
                rows.append(("  of which: push → nginx serves it", f"median {fmt_ms(statistics.median(after))}, "
                             f"max {fmt_ms(max(after))}", "—"))
            rows.append(("nginx reloads during the route applies", str(route_reloads), "0"))
            if med > APPLY_MEDIAN_GOAL_S or worst > APPLY_MAX_GOAL_S:
                failures.append(f"route apply median {fmt_ms(med)}, max {fmt_ms(worst)} over the goal")
            if route_reloads:
                failures.append(f"{route_reloads} reload(s) during route applies")
        if port_applies:
            rows.append((f"new port → nginx serves it (a reload; {len(port_applies)} runs)",
                         f"median {fmt_ms(statistics.median(port_applies))}, max {fmt_ms(max(port_applies))} "
                         f"(incl. reload_delay {RELOAD_DELAY_MS} ms; {port_reloads} reloads)",
                         f"≤ {NEW_PORT_GOAL_S:.0f} s"))
            if max(port_applies) > NEW_PORT_GOAL_S:
                failures.append(f"new port {fmt_ms(max(port_applies))} > {NEW_PORT_GOAL_S:.0f} s")
        # nginx -t on the live tree, timed here on its own.
        prefix = agent.prefix
        tests = []
        for _ in range(3):
            t = time.monotonic()
            subprocess.run(["/usr/sbin/nginx", "-t", "-q", "-p", prefix, "-c", f"{prefix}/conf/nginx.conf"],
                           capture_output=True, timeout=30)
            tests.append(time.monotonic() - t)
        with open(f"{prefix}/conf/sites.conf") as f:
            sites_kib = len(f.read()) / 1024

        rows.append((f"nginx -t of the live tree ({sites_kib:.0f} KiB sites.conf), timed alone",
                     f"median {fmt_ms(statistics.median(tests))}", "—"))
        rows.append(("reload_delay (coalescing, set in the bench's agent.conf)", f"{RELOAD_DELAY_MS} ms",
                     "default 200 ms"))
    except AssertionError as e:
        failures.append(str(e))
        if agent is not None and os.path.exists(os.path.join(agent.dir, "agent.log")):
            print(agent.agent_log()[-3000:], file=sys.stderr)
    finally:
        if agent is not None:
            agent.cleanup()
        for b in backends:
            stop_pid(b)

    print()
    print(f"scale: {n_endpoints:,} endpoints, {n_backends:,} static backends "
          f"({args.ports} nginx ports), health / every 1s, interval 1s")
    w = max(len(r[0]) for r in rows) if rows else 10
    w2 = max(len(r[1]) for r in rows) if rows else 10
    print(f"{'what':<{w}}  {'result':<{w2}}  goal")
    for what, result, goal in rows:
        print(f"{what:<{w}}  {result:<{w2}}  {goal}")
    for f in failures:
        print(f"FAIL: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve_backends(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
