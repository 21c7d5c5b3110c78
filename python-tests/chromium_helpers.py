"""Headless Chromium driven over the DevTools protocol (a pipe: no websocket library needed).

    with Browser() as b:
        page = b.open("http://127.0.0.1:8080/")
        page.wait_for("document.body.dataset.status === 'ok'")
        page.eval("document.title")
        page.screenshot("shot.png")

CHROMIUM names the binary (default /usr/bin/chromium, else chromium on PATH). find_chromium()
returns None when there is none; a test then skips, or fails when env CI is set.
"""
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

import pytest


def find_chromium():
    env = os.environ.get("CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for c in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if c and os.access(c, os.X_OK):
            return c
    return None


def chromium_or_skip():
    path = find_chromium()
    if path is None:
        msg = "chromium not found (apt-get install chromium, or set CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI is set, so this is a failure", pytrace=False)
        pytest.skip(msg)
    return path


class CdpError(RuntimeError):
    pass


class Browser:
    def __init__(self, path=None, width=1280, height=900, timeout=20.0):
        self.path = path or chromium_or_skip()
        self.timeout = timeout
        self.dir = tempfile.mkdtemp(prefix="lottery-chromium-")
        # fd 3: commands to the browser, fd 4: its replies and events ('\0'-terminated JSON)
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()

        def child_fds():
            a, b = os.dup(to_r), os.dup(from_w)  # above 4: neither dup2 below clobbers the other
            os.dup2(a, 3)
            os.dup2(b, 4)

        argv = [self.path, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                f"--user-data-dir={self.dir}", f"--window-size={width},{height}", "--hide-scrollbars",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--disable-component-update",
                "--mute-audio", "--force-color-profile=srgb", "about:blank"]
        self.log = open(os.path.join(self.dir, "chromium.log"), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     preexec_fn=child_fds, pass_fds=(3, 4))
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._next = 0
        self.events = []

    # -- protocol
    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("timed out waiting for chromium")
            ready, _, _ = select.select([self._from_r], [], [], left)
            if ready:
                chunk = os.read(self._from_r, 1 << 20)
                if not chunk:
                    raise CdpError(f"chromium closed the pipe (exit {self.proc.poll()}): {self.log_tail()}")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=None):
        self._next += 1
        mid = self._next
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            m = self._read_message(deadline)
            if m.get("id") == mid:
                if "error" in m:
                    raise CdpError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)
                if m["method"] == "Page.javascriptDialogOpening":
                    # a dialog blocks the page: record it (self.events) and dismiss it
                    os.write(self._to_w, json.dumps({"id": 0, "method": "Page.handleJavaScriptDialog",
                                                     "params": {"accept": False},
                                                     "sessionId": m.get("sessionId")}).encode() + b"\0")

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log"):
            page.send(f"{domain}.enable")
        nav = page.send("Page.navigate", {"url": url})
        if nav.get("errorText"):
            raise CdpError(f"cannot open {url}: {nav['errorText']}")
        page.wait_for("location.href !== 'about:blank' && document.readyState === 'complete'")
        return page

    def events_named(self, *names):
        return [e for e in self.events if e.get("method") in names]

    def log_tail(self, n=2000):
        try:
            with open(os.path.join(self.dir, "chromium.log"), "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def close(self):
        try:
            os.close(self._to_w)
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self._from_r)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Page:
    def __init__(self, browser, session):
        self.b = browser
        self.session = session

    def send(self, method, params=None, timeout=None):
        return self.b.send(method, params, session=self.session, timeout=timeout)

    def eval(self, expr):
        """The value of a JS expression (JSON-serialisable; promises are awaited)."""
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CdpError(f"{expr[:80]!r} threw: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expr, timeout=15.0, interval=0.1):
        """Polls until expr is truthy (an expression that throws counts as not yet)."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                v = self.eval(expr)
                if v:
                    return v
            except CdpError as e:
                last = e
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {expr!r} ({last}) "
                                     f"(body: {self.eval('document.body && document.body.innerText.slice(0, 600)')!r})")
            time.sleep(interval)

    def screenshot(self, path, full_page=False):
        params = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = self.send("Page.captureScreenshot", params, timeout=30)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
