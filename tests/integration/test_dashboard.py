"""The dashboard (/ui/) in real headless Chromium, driven by Selenium, against
the real agent and its nginx: log in (a wrong token is refused with a delay),
an endpoint turns healthy, the rate chart receives points under load, stop
and start from the page, a bad rule refused with its column, the rules
preview, draining an instance with zero failed requests for a client,
pagination, the managers page (cordon, and drain with its confirmation), keyboard use and a phone-width layout.
Screenshots of each page go to <build>/test-artifacts/dashboard/.

Selenium is Debian's python3-selenium, importable only by /usr/bin/python3;
when ctest runs this file with another python3, the test re-runs itself
under /usr/bin/python3. A browser that cannot start fails the test.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PYTHON = "/usr/bin/python3"

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    SELENIUM_ERROR = None
except ImportError as e:  # reported by the tests, never skipped
    SELENIUM_ERROR = e

RUN_HERE = SELENIUM_ERROR is None or os.path.realpath(sys.executable) == os.path.realpath(SYSTEM_PYTHON)

if not RUN_HERE:
    class DashboardUnderSystemPython(unittest.TestCase):
        def test_dashboard_suite_under_usr_bin_python3(self):
            if not os.path.exists(SYSTEM_PYTHON):
                self.fail(f"{SYSTEM_PYTHON} is missing; the browser tests need it with python3-selenium")
            r = subprocess.run([SYSTEM_PYTHON, "-m", "unittest", "-v", "test_dashboard"], cwd=HERE,
                               env=dict(os.environ), timeout=1200)
            self.assertEqual(r.returncode, 0, "the dashboard tests failed under /usr/bin/python3 (output above)")
else:
    from harness import BIN, Agent, Backend, free_port, kill_group_and_wait, pid_alive, process_endpoint_ini, \
        start_wrk, wait_until

    CHROMIUM = "/usr/bin/chromium"
    CHROMEDRIVER = "/usr/bin/chromedriver"
    ARTIFACTS = os.path.join(os.path.abspath(os.path.join(BIN, "..")), "test-artifacts", "dashboard")

    class Browser:
        """One headless Chromium with a fresh profile, through chromedriver."""

        def __init__(self):
            if SELENIUM_ERROR is not None:
                raise AssertionError(f"python3-selenium is not importable ({SELENIUM_ERROR}); "
                                     "run packaging/install-deps.sh")
            for path in (CHROMIUM, CHROMEDRIVER):
                if not os.path.exists(path):
                    raise AssertionError(f"{path} is missing: install chromium and chromium-driver "
                                         "(packaging/install-deps.sh)")
            self.profile = tempfile.mkdtemp(prefix="reactor-chromium-")
            opts = webdriver.ChromeOptions()
            opts.binary_location = CHROMIUM
            for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         f"--user-data-dir={self.profile}", "--window-size=1280,800", "--no-proxy-server"]:
                opts.add_argument(flag)
            self.service = Service(CHROMEDRIVER, port=free_port(),
                                   log_path=os.path.join(self.profile, "chromedriver.log"))
            try:
                self.driver = webdriver.Chrome(service=self.service, options=opts)
            except WebDriverException as e:
                log = ""
                try:
                    with open(os.path.join(self.profile, "chromedriver.log")) as f:
                        log = f.read()[-2000:]
                except OSError:
                    pass
                self.close()
                raise AssertionError(f"Chromium cannot start: {e.msg}\n{log}")
            self.driver.set_page_load_timeout(20)
            self.driver.set_script_timeout(20)

        def close(self):
            d = getattr(self, "driver", None)
            if d is not None:
                try:
                    d.quit()
                except Exception:
                    pass
            proc = getattr(self.service, "process", None) if hasattr(self, "service") else None
            if proc is not None and pid_alive(proc.pid):
                kill_group_and_wait(proc.pid, signal.SIGKILL, timeout=5)
            shutil.rmtree(self.profile, ignore_errors=True)

    class DashboardTest(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            os.makedirs(ARTIFACTS, exist_ok=True)
            cls.browser = Browser()
            cls.d = cls.browser.driver

        @classmethod
        def tearDownClass(cls):
            cls.browser.close()

        def setUp(self):
            self.agent = Agent(self.id().split(".")[-1]).start()
            self.addCleanup(self.agent.cleanup)
            self.base = f"http://127.0.0.1:{self.agent.api_port}"
            self.d.set_window_size(1280, 800)
            self.d.delete_all_cookies()

        # -- helpers ------------------------------------------------------
        def shot(self, name):
            path = os.path.join(ARTIFACTS, f"{name}.png")
            self.d.save_screenshot(path)
            return path

        def find(self, css, timeout=15):
            def shown():
                e = self.d.find_elements(By.CSS_SELECTOR, css)
                try:
                    return e[0] if e and e[0].is_displayed() else None
                except StaleElementReferenceException:
                    return None  # replaced by the page since it was found: not there yet
            return wait_until(shown, timeout=timeout, what=f"element {css}")

        def text_of(self, css):
            # One read in the page: a node the page replaces between a lookup
            # and a second call for its text would be stale.
            return self.d.execute_script(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css)

        def enabled(self, css):
            """True when css names a control that is there and enabled (one read in the page)."""
            return self.d.execute_script(
                "const e = document.querySelector(arguments[0]); return !!e && !e.disabled;", css)

        def focused(self, attribute):
            """The focused element's attribute (one read in the page)."""
            return self.d.execute_script("return document.activeElement.getAttribute(arguments[0]);", attribute)

        def wait_text(self, css, needle, timeout=20):
            try:
                return wait_until(lambda: needle in self.text_of(css), timeout=timeout, what=f"{needle!r} in {css}")
            except AssertionError as e:
                # What the page and the agent said at the end of the wait.
                raise AssertionError(f"{e}\n{css} now: {self.text_of(css)!r}\n"
                                     f"agent log (tail):\n{self.agent.agent_log()[-3000:]}") from None

        def login(self):
            self.d.get(self.base + "/ui/")
            token = self.find("#token")
            token.send_keys(self.agent.token())
            self.find("#login-button").click()
            self.find("#endpoints")

        def manage_web(self, instances=2):
            port = free_port()
            self.agent.manage("web", process_endpoint_ini(port, min_instances=instances, max_instances=instances))
            return port

        # -- tests --------------------------------------------------------
        def test_login_refuses_a_wrong_token_with_a_delay_then_logs_in_and_out(self):
            d = self.d
            d.get(self.base + "/")
            token = self.find("#token")
            self.shot("login")
            token.send_keys("not-the-token-at-all")
            t0 = time.monotonic()
            self.find("#login-button").click()
            self.wait_text("#login-error", "wrong token")
            self.assertGreaterEqual(time.monotonic() - t0, 0.9, "a wrong token is answered after a delay")
            self.assertEqual(token.get_attribute("aria-invalid"), "true")
            self.shot("login-wrong-token")
            # Keyboard only: the token field, Enter.
            token.clear()
            token.send_keys(self.agent.token())
            token.send_keys(Keys.ENTER)
            self.find("#endpoints")
            cookies = {c["name"]: c for c in d.get_cookies()}
            c = cookies["reactor_session"]
            self.assertTrue(c["httpOnly"])
            self.assertEqual(c["sameSite"], "Strict")
            self.assertNotEqual(c["value"], self.agent.token())
            self.assertEqual(d.execute_script("return document.cookie"), "", "the session cookie is HttpOnly")
            # A change without the CSRF token is refused even with the cookie.
            status = d.execute_async_script("""
                const done = arguments[arguments.length - 1];
                fetch('/v1/endpoints/nosuch/state', {method: 'PUT', credentials: 'same-origin',
                      headers: {'Content-Type': 'application/json'}, body: '{"state":"stopped"}'})
                  .then(r => done(r.status)).catch(e => done(String(e)));""")
            self.assertEqual(status, 403)
            self.find("#logout").click()
            self.find("#token")
            status = d.execute_async_script("""
                const done = arguments[arguments.length - 1];
                fetch('/v1/endpoints', {credentials: 'same-origin'}).then(r => done(r.status));""")
            self.assertEqual(status, 401, "logged out: the old session no longer works")

        def test_endpoint_turns_healthy_and_the_rate_chart_receives_points_under_load(self):
            self.login()
            port = self.manage_web()
            self.find('tr[data-endpoint="web"]')
            self.wait_text('tr[data-endpoint="web"]', "2 / 2", timeout=40)
            self.shot("overview")
            self.find('tr[data-endpoint="web"] a').click()
            self.find("#chart-rate")
            wait_until(lambda: len(self.d.find_elements(By.CSS_SELECTOR, "#instance-rows tr[data-instance]")) == 2,
                       timeout=30, what="two instances in the table")
            self.wait_text("#instance-rows", "HTTP 200")
            self.wait_text("#event-log", "endpoint created")
            points = "return window.reactorCharts.rate.data.datasets[0].data.filter(p => p.y > 0).length"
            self.assertEqual(self.d.execute_script(points), 0)
            wrk = start_wrk(f"http://127.0.0.1:{port}/", duration_s=6, connections=4)
            try:
                wait_until(lambda: self.d.execute_script(points) >= 3, timeout=15,
                           what="the rate chart to receive points above zero")
                self.shot("endpoint-under-load")
            finally:
                wrk.communicate(timeout=30)  # reads and closes its pipe
            # One sample a second through the page's one stream, not more.
            n0 = self.d.execute_script("return window.reactorCharts.rate.data.datasets[0].data.length")
            time.sleep(5)
            n1 = self.d.execute_script("return window.reactorCharts.rate.data.datasets[0].data.length")
            self.assertGreaterEqual(n1 - n0, 3, "about one point a second")
            self.assertLessEqual(n1 - n0, 7, "about one point a second")

        def test_stop_and_start_from_the_page(self):
            self.login()
            self.manage_web(instances=1)
            self.d.get(self.base + "/ui/#/endpoint/web")
            self.wait_text("#sum-instances", "1 / 1", timeout=40)
            self.find("#btn-stop").click()
            wait_until(lambda: self.agent.status("web")["state"] == "stopped", what="stopped")
            self.wait_text("#endpoint-state", "stopped")
            self.wait_text("#sum-instances", "0 / 0", timeout=30)
            self.wait_text("#event-log", "running → stopped")
            self.shot("endpoint-stopped")
            self.find("#btn-start").click()
            self.wait_text("#endpoint-state", "running")
            self.wait_text("#sum-instances", "1 / 1", timeout=40)
            self.assertEqual(self.agent.status("web")["state"], "running")

        def test_a_bad_rule_is_refused_in_place_with_its_column_and_the_preview_explains(self):
            self.login()
            self.manage_web(instances=1)
            self.d.get(self.base + "/ui/#/endpoint/web")
            rules = self.find("#rules")
            rules.clear()
            rules.send_keys("5 < rate <")
            self.find("#settings-save").click()
            self.wait_text("#rules-error", "1:11")
            self.assertIn("^", self.text_of("#rules-error"))
            self.assertEqual(rules.get_attribute("aria-invalid"), "true")
            self.assertEqual(self.d.switch_to.active_element, rules, "focus moves to the refused field")
            self.shot("endpoint-bad-rule")
            self.find("#rules-preview-button").click()
            self.wait_text("#rules-error", "column 11")
            self.assertNotIn("rate <", self.agent.cli("get", "web", "scaling", "rules", check=0).stdout)
            # A good rule: the preview says what it would do, then it is saved.
            rules.clear()
            rules.send_keys("0.25 < rate < 20")
            max_in = self.find("#max_instances")
            max_in.clear()
            max_in.send_keys("3")
            self.find("#rules-preview-button").click()
            self.wait_text("#rules-preview", "target 1")
            self.assertEqual(self.text_of("#rules-error"), "")
            self.find("#settings-save").click()
            self.wait_text("#settings-saved", "Saved")
            self.assertIn("0.25 < rate < 20", self.agent.cli("get", "web", "scaling", "rules", check=0).stdout)
            self.assertIn("3", self.agent.cli("get", "web", "scaling", "max_instances", check=0).stdout)
            # min above max is refused on its own field.
            min_in = self.find("#min_instances")
            min_in.clear()
            min_in.send_keys("9")
            self.find("#settings-save").click()
            wait_until(lambda: self.text_of("#min_instances-error") or self.text_of("#max_instances-error"),
                       what="min/max refused in place")
            self.shot("endpoint-preview")

        def test_drain_one_instance_with_zero_failed_requests(self):
            self.login()
            port = self.manage_web(instances=2)
            self.agent.wait_healthy("web", 2, timeout=40)
            self.d.get(self.base + "/ui/#/endpoint/web")
            wait_until(lambda: len(self.d.find_elements(By.CSS_SELECTOR, "button[data-drain]")) == 2, timeout=20,
                       what="two drain buttons")
            before = {i["id"] for i in self.agent.instances("web")}
            wrk = start_wrk(f"http://127.0.0.1:{port}/", duration_s=12, connections=4)
            try:
                time.sleep(2)
                victim = self.d.execute_script(
                    "return document.querySelector('button[data-drain]').getAttribute('data-drain');")
                self.find(f'button[data-drain="{victim}"]').click()
                self.wait_text("#event-log", f"{victim}")
                self.wait_text("#event-log", "drained by an operator")
                wait_until(lambda: victim not in {i["id"] for i in self.agent.instances("web")}, timeout=30,
                           what="the drained instance to be removed")
                self.agent.wait_healthy("web", 2, timeout=40)
                self.shot("endpoint-after-drain")
            finally:
                out, _ = wrk.communicate(timeout=40)
            after = {i["id"] for i in self.agent.instances("web")}
            self.assertNotIn(victim, after)
            self.assertEqual(len(after - before), 1, "one replacement was launched")
            self.assertIn("requests in", out, out)
            self.assertNotIn("Socket errors", out, out)
            self.assertNotIn("Non-2xx", out, out)

        def test_overview_paginates_and_the_managers_page_shows_slots(self):
            backend = Backend()
            self.addCleanup(backend.stop)
            port = free_port()
            for i in range(60):
                self.agent.manage(f"e{i:03d}", f"""[endpoint]
url = http://127.0.0.1:{port}/e{i:03d}/
cloud = static
static_instances = 127.0.0.1:{backend.port}
""")
            self.login()
            self.wait_text("#page-info", "Page 1 of 3 (60 endpoints)")
            rows = self.d.find_elements(By.CSS_SELECTOR, "#endpoint-rows tr[data-endpoint]")
            self.assertEqual(len(rows), 25)
            self.find("#page-next").click()
            self.wait_text("#page-info", "Page 2 of 3")
            self.find('tr[data-endpoint="e025"]')
            self.wait_text('tr[data-endpoint="e025"]', "1 / 1", timeout=30)
            f = self.find("#filter")
            f.send_keys("e05")
            self.wait_text("#page-info", "Page 1 of 1 (10 endpoints)")
            self.shot("overview-filtered")
            self.find("#nav-managers").click()
            self.find("#managers")
            self.wait_text("#managers-rows", "it-test-overview-paginates")
            self.wait_text("#managers-rows", "up")
            self.find("button[data-cordon]").click()
            self.wait_text("#managers-rows", "cordoned")
            self.assertIn("cordoned", self.agent.cli("managers", check=0).stdout)
            self.shot("managers")
            self.find("button[data-uncordon]").click()
            wait_until(lambda: "cordoned" not in self.agent.cli("managers", check=0).stdout,
                       what="uncordoned from the page")
            # Phone width: nothing but the tables' own scroll boxes overflows.
            self.d.set_window_size(390, 844)
            self.d.get(self.base + "/ui/#/")
            self.find("#endpoints")
            overflow = self.d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            self.assertLessEqual(overflow, 1)
            self.shot("overview-phone")

        def manager_view(self):
            """The agent's own row of GET /v1/managers (through `reactor managers --json`)."""
            views = self.agent.cli_json("managers")
            self.assertEqual(len(views), 1, views)
            return views[0]

        def test_drain_the_manager_from_the_managers_page_with_a_confirmation(self):
            self.login()
            self.manage_web(instances=1)
            self.agent.wait_healthy("web", 1, timeout=40)
            (instance,) = self.agent.instances("web")
            me = self.manager_view()
            name = me["name"]
            self.assertEqual((me["state"], me["draining"]), ("up", False))
            self.d.get(self.base + "/ui/#/managers")
            row = f'tr[data-manager="{name}"]'
            self.find(row)
            # Slots used / total and the lease time left, as the API says.
            self.wait_text(row, f"{me['slots_used']} / {me['slots']}")
            wait_until(lambda: re.search(r"\b\d+\.\d s\b", self.text_of(row)), what=f"lease left in {row}")
            drain = f'button[data-drain="{name}"]'
            question = f'[data-drain-question="{name}"]'
            # Keyboard only. Escape cancels the confirmation: nothing is sent.
            self.find(drain).send_keys(Keys.ENTER)
            self.wait_text(question, f"Drain {name}?")
            self.assertIn("only host up", self.text_of(question), "one host: its instances have nowhere to go")
            self.assertEqual(self.focused("data-drain-confirm"), name, "focus moves to the confirmation")
            self.shot("managers-drain-confirm")
            self.d.switch_to.active_element.send_keys(Keys.ESCAPE)
            wait_until(lambda: not self.d.find_elements(By.CSS_SELECTOR, question), what="the confirmation to close")
            wait_until(lambda: self.focused("data-drain") == name, what="focus back on the drain button")
            self.assertFalse(self.manager_view()["draining"], "a cancelled drain sends nothing")
            # An error from the API is shown in its row, as text: a stale CSRF
            # token (what a page open across a new login sends) is refused.
            csrf = self.d.execute_script("const c = app.csrf; app.csrf = 'stale'; return c;")
            self.find(drain).click()
            self.find(f'button[data-drain-confirm="{name}"]').click()
            error = f'[data-manager-error="{name}"]'
            self.wait_text(error, "missing or wrong X-CSRF-Token for this session (reload the dashboard)")
            self.assertEqual(self.d.execute_script(
                f"return document.querySelector('{error}').childElementCount"), 0, "the error is plain text")
            self.assertFalse(self.manager_view()["draining"])
            wait_until(lambda: self.enabled(drain), what="the drain button usable again after the error")
            self.shot("managers-drain-error")
            # Confirmed with the page's own token: the API reports the host
            # draining (and cordoned: no new placements), and so does the page.
            self.d.execute_script("app.csrf = arguments[0];", csrf)
            self.find(drain).send_keys(Keys.ENTER)
            self.d.switch_to.active_element.send_keys(Keys.ENTER)
            wait_until(lambda: self.manager_view()["draining"], what="GET /v1/managers to say draining")
            self.assertEqual(self.manager_view()["state"], "cordoned")
            self.wait_text(f"{row} .state", "draining")
            self.wait_text(drain, "Draining")
            self.assertFalse(self.enabled(drain), "no second drain while one is in progress")
            self.assertEqual(self.text_of(error), "", "the earlier error is gone")
            # The only host: the owner finds nowhere to move the instance and
            # says so; the instance keeps serving.
            wait_until(lambda: f"{name} is being drained" in self.agent.events("web"), timeout=20,
                       what="the owner to say the host is being drained")
            after = self.agent.instances("web")
            self.assertEqual([(i["id"], i["state"]) for i in after], [(instance["id"], "active")])
            self.assertEqual(self.agent.status("web")["healthy"], 1)
            self.shot("managers-draining")
            # Uncordon ends the drain, from the page too.
            self.find(f'button[data-uncordon="{name}"]').click()
            wait_until(lambda: (lambda m: m["state"] == "up" and not m["draining"])(self.manager_view()),
                       what="uncordoned: up, not draining")
            self.wait_text(f"{row} .state", "up")
            wait_until(lambda: self.enabled(drain), what="the drain button enabled again")

        def test_keyboard_reaches_every_control_of_the_endpoint_page(self):
            self.login()
            self.manage_web(instances=1)
            self.d.get(self.base + "/ui/#/endpoint/web")
            self.find("#btn-stop")
            seen = set()
            body = self.d.find_element(By.TAG_NAME, "body")
            body.send_keys(Keys.TAB)
            for _ in range(40):
                a = self.d.switch_to.active_element
                seen.add(a.get_attribute("id") or a.text)
                a.send_keys(Keys.TAB)
            for wanted in ["btn-start", "btn-pause", "btn-stop", "min_instances", "max_instances", "rules",
                           "settings-save", "rules-preview-button", "logout"]:
                self.assertIn(wanted, seen)
            self.d.set_window_size(390, 844)
            self.find("#chart-rate")
            overflow = self.d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            self.assertLessEqual(overflow, 1)
            self.shot("endpoint-phone")


if __name__ == "__main__":
    unittest.main()
