"""The status page (exporter/src/status_page.html) in real headless Chromium.

- against lottery-exporter on a real redis-server with the module: the numbers the page shows
  are LOTTERY.STATS's, hostile prize ids stay text, a screenshot is kept as
  target/test-artifacts/status-page.png; with a non-loopback bind the token is needed;
- against a plain HTTP server serving the page and a hostile /api/status (huge, RTL, emoji,
  markup, malformed entries, integers past 2^53): the layout holds, nothing runs, the token is
  sent, an API failure shows the banner and keeps the data.

Needs chromium (CHROMIUM, else /usr/bin/chromium): skipped without it, failed if env CI is set.
The exporter binary: LOTTERY_EXPORTER, else target/release/lottery-exporter.
"""
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import lottery_helpers as H
from chromium_helpers import Browser, chromium_or_skip

# Chromium and the exporter: the full suite only (scripts/test-servers.sh runs it on two servers).
pytestmark = pytest.mark.browser

PAGE = H.REPO / "exporter" / "src" / "status_page.html"
ARTIFACTS = H.REPO / "target" / "test-artifacts"
HOSTILE = "<img src=x onerror=alert(1)>"
NO_MARKUP_FROM_DATA = ("document.querySelectorAll('img, iframe, object, embed, b, i, u').length === 0"
                       " && document.scripts.length === 1")


def _page_errors(browser):
    """Dialogs opened, exceptions thrown, CSP violations logged: all must be empty."""
    out = [e for e in browser.events_named("Page.javascriptDialogOpening", "Runtime.exceptionThrown")]
    out += [e for e in browser.events_named("Log.entryAdded")
            if e["params"]["entry"].get("level") == "error" and "api/status" not in e["params"]["entry"].get("url", "")]
    return out


# --------------------------------------------------------------------------------------------
# the page against a hostile API


def _hostile_status():
    long = "W" * 4096
    rtl = "\u0627\u0644\u062c\u0627\u0626\u0632\u0629 \u202eevil\u202c \u05e9\u05dc\u05d5\u05dd"
    emoji = "\U0001f381\U0001f468\u200d\U0001f469\u200d\U0001f467\ufe0f\u0000end"
    now = 1_764_500_000_000
    history = [[now - 600_000 + i * 10_000, i * i * 50, i * 7] for i in range(61)]
    history[30][1] = 0  # a counter going back: a gap, not a negative rate
    return {
        "time_ms": now, "refresh_ms": 300,
        "campaigns": [
            {"key": HOSTILE, "state": "active", "draws": 180000, "wins": 420, "losses": 179580, "users": 7,
             "rejections": {"cooldown": 3, HOSTILE: 5, "quota": 0},
             "prizes": [{"id": HOSTILE, "stock": 9223372036854775807, "sold": 1, "infinite": False},
                        {"id": rtl, "stock": 5, "sold": 5, "infinite": False},
                        {"id": emoji, "stock": None, "sold": 123456789, "infinite": True},
                        {"id": long, "stock": 0, "sold": 9007199254740993, "infinite": False}],
             "stream": long,
             "recent_wins": [{"id": "1764500000000-0", "user": HOSTILE, "prize": rtl, "ts_ms": now, "code": long},
                             {"id": long, "user": long, "prize": emoji, "ts_ms": 1e300, "code": None}],
             "history": history},
            {"key": long, "state": "paused", "draws": 0, "wins": 0, "losses": 0, "users": 0, "rejections": {},
             "prizes": [], "stream": rtl, "recent_wins": [], "history": []},
            {"key": rtl, "state": "<b>bold</b>", "draws": "12", "wins": None, "losses": {}, "users": [],
             "rejections": [1, 2], "prizes": [None, 5, {"id": {"x": 1}, "stock": "x", "sold": -1}],
             "recent_wins": "not a list", "history": [[1], "x", [2, "a", 3], None]},
        ],
        "writers": [{"group": HOSTILE, "consumer": rtl, "target": long, "rows_total": 10, "retries_total": 2,
                     "errors_total": 1, "lag": None, "age_ms": 99_999_999}],
        "server": {"version": HOSTILE, "module_version": long},
        "errors": [f"<script>alert({i})</script>" for i in range(25)],
    }


class _MockApi:
    """Serves the page at / and a canned /api/status; records the requests' token."""

    def __init__(self, status):
        self.status = status
        self.fail = False
        self.seen = []
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path, _, query = self.path.partition("?")
                if path == "/":
                    self._send(200, "text/html; charset=utf-8", PAGE.read_bytes())
                elif path == "/api/status":
                    mock.seen.append((query, self.headers.get("Authorization")))
                    if mock.fail:
                        self._send(500, "text/plain", b"boom")
                    else:
                        self._send(200, "application/json", json.dumps(mock.status).encode())
                else:
                    self._send(404, "text/plain", b"no")

            def _send(self, code, ctype, body):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_csp_hash_is_current():
    """The page's CSP allows its inline script by hash; a stale hash would stop the page."""
    subprocess.run(["bash", str(H.REPO / "scripts" / "status-page-csp.sh"), "--check"], check=True)


def test_hostile_api_data_stays_text_and_layout_holds():
    chromium = chromium_or_skip()
    api = _MockApi(_hostile_status())
    try:
        with Browser(chromium) as b:
            page = b.open(api.url + "?token=s3cr%C3%A9t")  # not header-safe: sent as the query only
            page.wait_for("document.body.dataset.status === 'ok'")
            assert page.eval(NO_MARKUP_FROM_DATA)
            keys = page.eval("[...document.querySelectorAll('[data-campaign]')].map(e => e.dataset.campaign)")
            st = _hostile_status()
            assert keys == [c["key"] for c in st["campaigns"]]
            card = f"document.querySelector('[data-campaign]')"
            assert page.eval(f"{card}.querySelector('h2').textContent") == HOSTILE
            prizes = page.eval(f"""[...{card}.querySelectorAll('[data-prize]')].map(li => [li.dataset.prize,
                li.querySelector('.pid').textContent, li.querySelector('[data-field=sold]').dataset.value,
                li.querySelector('[data-field=stock]').dataset.value, li.querySelector('[data-field=stock]').textContent,
                !!li.querySelector('.bar')])""")
            p = st["campaigns"][0]["prizes"]
            assert prizes == [
                [p[0]["id"], p[0]["id"], "1", "9223372036854775807", "9,223,372,036,854,775,807", True],
                [p[1]["id"], p[1]["id"], "5", "5", "5", True],
                [p[2]["id"], p[2]["id"], "123456789", "inf", "\u221e", False],
                [p[3]["id"], p[3]["id"], "9007199254740993", "0", "0", True]]
            assert page.eval(f"{card}.querySelector('[data-field=draws]').dataset.value") == "180000"
            assert page.eval(f"{card}.querySelector('[data-field=rejections]').dataset.value") == "8"
            # 2 draws/s.. the last sample: (60^2 - 59^2) * 50 / 10 s
            assert abs(float(page.eval(f"{card}.querySelector('[data-field=draws_per_s]').dataset.value")) - 595.0) < 1e-9
            assert page.eval(f"{card}.querySelectorAll('svg path').length") == 2
            wins = page.eval(f"[...{card}.querySelectorAll('tr[data-win] [data-field=user]')].map(e => e.textContent)")
            assert wins == [HOSTILE, "W" * 4096]
            assert page.eval("document.querySelector('[data-writer] td').textContent") == HOSTILE
            assert page.eval("document.getElementById('scrape').querySelectorAll('li').length") == 21
            # the malformed campaign renders without throwing; unknown state shown as text
            assert page.eval("document.querySelectorAll('[data-campaign]')[2].querySelector('[data-field=state]').textContent") \
                == "<b>bold</b>"
            # nothing wider than the window: long text is ellipsised, not stretching the layout
            assert page.eval("document.documentElement.scrollWidth <= window.innerWidth"), \
                page.eval("[document.documentElement.scrollWidth, window.innerWidth]")
            assert page.eval("[...document.querySelectorAll('.card')].every(c => c.getBoundingClientRect().width <= window.innerWidth)")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(str(ARTIFACTS / "status-page-hostile.png"), full_page=True)
            # the token: as the query parameter; not header-safe, so no Authorization header
            assert api.seen[0] == ("token=s3cr%C3%A9t", None)

            # the API failing: a visible banner, the last data kept, then recovery
            api.fail = True
            page.wait_for("document.body.dataset.status === 'error'", timeout=10)
            assert page.eval("!document.getElementById('banner').hidden")
            assert "HTTP 500" in page.eval("document.getElementById('banner').textContent")
            assert page.eval("document.querySelectorAll('[data-campaign]').length") == 3
            api.fail = False
            page.wait_for("document.body.dataset.status === 'ok'", timeout=10)
            assert page.eval("document.getElementById('banner').hidden")
            assert _page_errors(b) == []

            # many campaigns: the first 200 drawn, the rest counted
            many = {"refresh_ms": 300, "campaigns_omitted": 7,
                    "campaigns": [{"key": f"c{i}", "state": "active", "draws": i,
                                   "prizes": [{"id": "p", "stock": 1, "sold": 0}], "prizes_omitted": 3 if i == 0 else 0}
                                  for i in range(250)]}
            api.status = many
            page.wait_for("document.querySelector('[data-field=campaigns_hidden]')?.dataset.value === '50'", timeout=10)
            assert page.eval("document.querySelectorAll('[data-campaign]').length") == 200
            assert page.eval("document.querySelectorAll('[data-campaign]')[199].dataset.campaign") == "c199"
            # what the exporter's size bounds left out is said, not silently missing
            assert page.eval("document.querySelector('[data-field=campaigns_omitted]').dataset.value") == "7"
            assert page.eval("document.querySelectorAll('[data-field=prizes_omitted]').length") == 1
            assert page.eval("document.querySelector('[data-campaign=c0] [data-field=prizes_omitted]').dataset.value") == "3"

            # a header-safe token goes both ways
            page2 = b.open(api.url + "?token=abc.DEF-123")
            page2.wait_for("document.body.dataset.status === 'ok'")
            assert ("token=abc.DEF-123", "Bearer abc.DEF-123") in api.seen
            assert _page_errors(b) == []
    finally:
        api.close()


# --------------------------------------------------------------------------------------------
# the page against lottery-exporter on a real server

EXPORTER = os.environ.get("LOTTERY_EXPORTER", str(H.REPO / "target" / "release" / "lottery-exporter"))
NON_UTF8 = b"\xff\xfe-prize"
TOKEN = "page-test-token-0123456789"


class Exporter:
    def __init__(self, redis_port, bind="127.0.0.1", extra=(), env=None):
        if not os.access(EXPORTER, os.X_OK):
            pytest.fail(f"lottery-exporter not found at {EXPORTER!r}: build it with "
                        f"`cargo build --release -p lottery-exporter` or set LOTTERY_EXPORTER", pytrace=False)
        self.port = H.free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tempfile.NamedTemporaryFile(prefix="lottery-exporter-", suffix=".log", delete=False)
        argv = [EXPORTER, "--redis", f"redis://127.0.0.1:{redis_port}", "--listen", f"{bind}:{self.port}",
                "--sample-ms", "500", *extra]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"lottery-exporter exited {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"lottery-exporter does not listen: {self.log_tail()}")
                time.sleep(0.05)

    def get(self, path, headers=None):
        """(status, body) of a GET."""
        req = urllib.request.Request(self.url.rstrip("/") + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, res.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def status(self, headers=None):
        code, body = self.get("/api/status", headers)
        assert code == 200, (code, body[:300])
        return json.loads(body)

    def log_tail(self):
        with open(self.log.name, "rb") as f:
            return f.read()[-2000:].decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def close(self):
        self.stop()
        self.log.close()
        os.unlink(self.log.name)


@pytest.fixture
def exporter_factory():
    started = []

    def make(*a, **kw):
        e = Exporter(*a, **kw)
        started.append(e)
        return e

    yield make
    for e in started:
        e.close()


def _setup_campaigns(server):
    """Two campaigns with hostile and non-UTF-8 ids and keys, some draws, one writer status."""
    raw = server.raw()
    key = "shop:{page}"
    assert raw.call("LOTTERY.CONFIGURE", key, "PRIZE", HOSTILE, 30, 40, "PRIZE", NON_UTF8, 30, 25,
                    "PRIZE", "sticker", 30, "INF", "PRIZE", "voucher", 30, "CODES", "NOTHING", 20) == "OK"
    # enough codes never to run out: about half the latest wins are codes
    assert raw.call("LOTTERY.CODES", key, "voucher", "ADD", *[f"CODE-{i:04d}" for i in range(300)]) == 300
    assert raw.call("LOTTERY.CONFIGURE", HOSTILE, "PRIZE", "\u05e9\u05dc\u05d5\u05dd \U0001f381", 1, 3,
                    "NOTHING", 1) == "OK"
    assert raw.call("LOTTERY.PAUSE", HOSTILE) == "OK"
    _draws(raw, key, 0, 150)
    # a writer's status hash (the contract lottery-writer publishes), with a hostile consumer name
    assert raw.call("HSET", "lottery-writer:g1:" + HOSTILE, "target", key, "stream", key + ":wins",
                    "group", "g1", "consumer", HOSTILE, "database", "sqlite",
                    "started_ms", int(time.time() * 1000), "updated_ms", int(time.time() * 1000),
                    "rows_total", 17, "retries_total", 2, "errors_total", 1) == 10
    raw.close()
    return key


def _draws(raw, key, first, n):
    replies = raw.pipeline([("LOTTERY.DRAW", key, f"user-{i}") for i in range(first, first + n)])
    assert all(isinstance(r, list) for r in replies), replies[:3]


def _page_numbers(page, key):
    return page.eval(f"""(() => {{
        const card = [...document.querySelectorAll('[data-campaign]')].find(c => c.dataset.campaign === {json.dumps(key)});
        if (!card) return null;
        const f = (el, n) => el.querySelector(`[data-field=${{n}}]`).dataset.value;
        return {{
            state: f(card, 'state'),
            nums: Object.fromEntries(['draws', 'wins', 'losses', 'users'].map(n => [n, f(card, n)])),
            prizes: [...card.querySelectorAll('[data-prize]')].map(li => [li.dataset.prize,
                li.querySelector('.pid').textContent, f(li, 'sold'), f(li, 'stock')]),
            wins: [...card.querySelectorAll('tr[data-win]')].map(tr => [tr.dataset.win,
                tr.querySelector('[data-field=user]').textContent, tr.querySelector('[data-field=prize]').textContent,
                tr.querySelector('[data-field=code]').textContent]),
        }};
    }})()""")


def _expected_numbers(server, key):
    """What the page must show for key, from LOTTERY.STATS and XREVRANGE on the server itself."""
    raw = server.raw()
    flat = raw.call("LOTTERY.STATS", key)
    st = dict(zip([k.decode() for k in flat[0::2]], flat[1::2]))
    text = lambda b: b.decode("utf-8", "replace")  # noqa: E731
    wins = []
    for eid, fields in raw.call("XREVRANGE", st["stream"], "+", "-", "COUNT", 20):
        f = dict(zip(fields[0::2], fields[1::2]))
        wins.append([text(eid), text(f[b"user"]), text(f[b"prize"]), text(f.get(b"code", "\u2014".encode()))])
    raw.close()
    return {
        "state": st["state"].decode(),
        "nums": {n: str(st[n]) for n in ("draws", "wins", "losses", "users")},
        "prizes": [[text(p[0]), text(p[0]), str(p[3]), "inf" if p[2] == -1 else str(p[2])] for p in st["prizes"]],
        "wins": wins,
    }


def test_page_shows_the_servers_numbers(server, exporter_factory):
    chromium = chromium_or_skip()
    key = _setup_campaigns(server)
    exp = exporter_factory(server.port)
    with Browser(chromium) as b:
        page = b.open(exp.url)
        page.wait_for("document.body.dataset.status === 'ok' && document.querySelectorAll('[data-campaign]').length === 2")
        want = _expected_numbers(server, key)
        assert want["nums"]["draws"] == "150" and int(want["nums"]["wins"]) > 0 and len(want["wins"]) == 20
        assert any(w[3].startswith("CODE-") for w in want["wins"]), "no code prize won: change the weights"
        assert _page_numbers(page, key) == want
        assert _page_numbers(page, HOSTILE) == _expected_numbers(server, HOSTILE)
        assert _page_numbers(page, HOSTILE)["state"] == "paused"

        # hostile text is text: the escaped markup is in the DOM, no element was made from it
        assert page.eval(NO_MARKUP_FROM_DATA)
        html = page.eval("document.documentElement.outerHTML")
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert page.eval("document.querySelector('[data-campaign] h2').textContent") in (key, HOSTILE)
        prize_ids = page.eval("[...document.querySelectorAll('.pid')].map(e => e.textContent)")
        assert HOSTILE in prize_ids and NON_UTF8.decode("utf-8", "replace") in prize_ids
        assert page.eval("document.querySelector('[data-writer] [data-field=rows_total]').dataset.value") == "17"
        assert page.eval("[...document.querySelectorAll('[data-writer] td')][1].textContent") == HOSTILE

        # it refreshes itself: more draws show up, and the chart gets its rates
        _draws(server.raw(), key, 150, 60)
        page.wait_for(f"{_card_js(key)}.querySelector('[data-field=draws]').dataset.value === '210'", timeout=10)
        assert _page_numbers(page, key) == _expected_numbers(server, key)
        page.wait_for(f"{_card_js(key)}.querySelectorAll('svg path').length === 2", timeout=10)
        assert page.eval("document.documentElement.scrollWidth <= window.innerWidth")

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "status-page.png"
        page.screenshot(str(shot))
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, len(data)

        # the exporter gone: a visible banner, the last data kept
        exp.stop()
        page.wait_for("document.body.dataset.status === 'error'", timeout=15)
        assert page.eval("!document.getElementById('banner').hidden")
        assert page.eval("document.getElementById('banner').textContent").startswith("Cannot load the status")
        assert _page_numbers(page, key)["nums"]["draws"] == "210"
        assert _page_errors(b) == []


def _card_js(key):
    return f"[...document.querySelectorAll('[data-campaign]')].find(c => c.dataset.campaign === {json.dumps(key)})"


def test_non_loopback_bind_needs_the_token(server, exporter_factory):
    chromium = chromium_or_skip()
    key = _setup_campaigns(server)
    exp = exporter_factory(server.port, bind="0.0.0.0", env={"LOTTERY_EXPORTER_TOKEN": TOKEN})
    assert exp.get("/")[0] == 401
    assert exp.get("/api/status")[0] == 401
    assert exp.get("/api/status", {"Authorization": "Bearer wrong"})[0] == 401
    assert exp.get("/api/status?token=wrong")[0] == 401
    assert exp.status({"Authorization": f"Bearer {TOKEN}"})["campaigns"] is not None
    assert exp.get(f"/api/status?token={TOKEN}")[0] == 200
    code, body = exp.get(f"/?token={TOKEN}")
    assert code == 200 and body == PAGE.read_bytes()
    with Browser(chromium) as b:
        page = b.open(exp.url + f"?token={TOKEN}")
        page.wait_for(f"document.body.dataset.status === 'ok' && !!{_card_js(key)}")
        assert _page_numbers(page, key) == _expected_numbers(server, key)
        assert _page_errors(b) == []
