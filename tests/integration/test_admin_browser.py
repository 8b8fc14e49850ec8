"""/docs and the status page in headless Chromium, with every host but 127.0.0.1 unreachable.

Chromium is Debian's ``chromium`` (scripts/test installs it); these tests are
skipped only when its binary is absent.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Cluster, numbers, wait_until
from tests.integration.admin_support import Admin, start_admin
from tests.integration.operator_support import cluster_view, free_admin_url, start_host

CHROMIUM = shutil.which("chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test installs it)"),
]

OFFLINE = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
"""--host-resolver-rules: any asset from the internet (a CDN) fails to load."""


FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--host-resolver-rules={OFFLINE}"]


def dump_dom(url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran (5 s of virtual time)."""
    assert CHROMIUM is not None
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
            "--dump-dom", url]
    done = subprocess.run(args, capture_output=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})


class Rows(HTMLParser):
    """What the status page rendered: the text of each element with an id, and the
    sequence rows as [name, current, durable]."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.elements: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self._cell: list[str] | None = None
        self._in_row = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr":
            self._in_row = a.get("class") == "sequence"
            if self._in_row:
                self.rows.append([])
        elif tag == "td" and self._in_row:
            self._cell = []
        if tag in VOID:
            return
        element_id = a.get("id")
        if element_id is not None:
            self.elements.setdefault(element_id, "")
        self._open.append((tag, element_id))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self._in_row = False
        while self._open:
            open_tag, _ = self._open.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _, element_id in self._open:
            if element_id is not None:
                self.elements[element_id] += data


def rendered(html: str) -> Rows:
    parser = Rows()
    parser.feed(html)
    return parser


def test_swagger_ui_renders_every_operation_offline(cluster: Cluster, tmp_path: Path) -> None:
    server = cluster.server()
    admin = start_admin(cluster, server.control)
    schema = httpx.get(f"{admin.url}/openapi.json").json()
    expected = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    assert len(expected) == 16  # with POST /resize and POST /resize/step
    dom = dump_dom(f"{admin.url}/docs", tmp_path / "profile")
    methods = re.findall(r'<div class="opblock opblock-(\w+)[^"]*" id="operations-', dom)
    paths = re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom)
    assert set(zip(methods, paths, strict=True)) == expected
    assert "seqgen-admin" in dom
    assert "Authorize" in dom  # the bearer security scheme


def seed(admin: Admin, bind: str) -> list[str]:
    names = [f"browser/{i:02d}" for i in range(12)]
    for i, name in enumerate(names):
        numbers(bind, name, count=i + 1)
    numbers(bind, "other<b>not bold</b>")
    return names


def test_status_page_renders_status_counters_and_a_paged_filtered_table(
    cluster: Cluster, tmp_path: Path
) -> None:
    server = cluster.server()
    admin = start_admin(cluster, server.control)
    names = seed(admin, server.bind)

    page = rendered(dump_dom(f"{admin.url}/?limit=10", tmp_path / "p1"))
    assert page.elements["status-instance"] == "1 of 1"
    assert page.elements["status-sequences"] == "13"
    assert page.elements["server-state"] == "ready"
    assert page.elements["page"] == "page 1"
    assert "Numbers issued" in page.elements["counters"]
    assert str(sum(range(1, 13)) + 1) in page.elements["counters"]
    assert page.rows == [[name, str(i + 1), page.rows[i][2]] for i, name in enumerate(names[:10])]
    assert all(int(row[2]) >= int(row[1]) for row in page.rows)

    filtered = rendered(dump_dom(f"{admin.url}/?prefix=browser/1", tmp_path / "p2"))
    assert [row[0] for row in filtered.rows] == ["browser/10", "browser/11"]
    assert [row[1] for row in filtered.rows] == ["11", "12"]

    other = rendered(dump_dom(f"{admin.url}/?prefix=other", tmp_path / "p3"))
    assert [row[0] for row in other.rows] == ["other<b>not bold</b>"]  # text, not markup
    assert page.elements["cluster-banner"] == ""  # no conflicts
    assert page.elements["status-fenced"] == "serving"
    assert "no peers configured" in page.elements["cluster-summary"]


def test_status_page_shows_the_cluster_and_a_red_banner_on_conflicts(
    cluster: Cluster, tmp_path: Path
) -> None:
    urls = [free_admin_url() for _ in range(3)]
    a = start_host(cluster, 1, 2, urls[0], [urls[1], urls[2]])
    start_host(cluster, 2, 2, urls[1], [urls[0]])
    third = start_host(cluster, 1, 2, urls[2], [urls[0]])  # instance 1 again: the mistake
    wait_until(lambda: cluster_view(a)["conflicts"] != [], 15, "admin 1 sees the conflict")
    with a.http() as http:
        assert http.post("/fence").status_code == 200
    page = rendered(dump_dom(f"{a.admin.url}/", tmp_path / "conflict"))
    banner = page.elements["cluster-banner"]
    assert banner.startswith("Misconfigured cluster")
    assert "instance 1 is used by 2 servers" in banner and urls[2] in banner
    table = page.elements["cluster"]
    assert "this server" in table and urls[1] in table and urls[2] in table
    assert "2 of 2" in table and "1 of 2" in table
    assert page.elements["cluster-summary"] == "(2 of 2 peers reachable)"
    assert page.elements["status-fenced"].startswith("FENCED")
    assert page.elements["fence-banner"].startswith("This server is fenced")
    # Without the misconfigured server the banner goes away by itself.
    third.server.kill()
    wait_until(lambda: cluster_view(a)["conflicts"] == [], 15, "the conflict clears")
    page = rendered(dump_dom(f"{a.admin.url}/", tmp_path / "fixed"))
    assert page.elements["cluster-banner"] == ""
    assert page.elements["cluster-summary"] == "(1 of 2 peers reachable)"


def test_status_page_says_when_the_server_is_down(cluster: Cluster, tmp_path: Path) -> None:
    server = cluster.server()
    admin = start_admin(cluster, server.control, control_timeout_s=0.5)
    server.kill()
    page = rendered(dump_dom(f"{admin.url}/", tmp_path / "down"))
    assert page.elements["server-state"] == "unavailable"
    assert "does not answer" in page.elements["banner"]
    assert page.rows == []


def _above_9(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4, messages
    ending in NUL), to click and type in a page and read what it shows."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Above 9, so that bash's "3<&R 4>&W" cannot overwrite one with the other.
        to_chrome_r, from_chrome_w = (_above_9(to_chrome_r), _above_9(from_chrome_w))
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}', CHROMIUM, *FLAGS,
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None,
             timeout_s: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\0" not in self._buffer:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no answer to {method} from chromium"
                if select.select([self._from_chrome], [], [], remaining)[0]:
                    chunk = os.read(self._from_chrome, 1 << 16)
                    assert chunk, "chromium closed the DevTools pipe"
                    self._buffer += chunk
            raw, _, self._buffer = self._buffer.partition(b"\0")
            reply: dict[str, Any] = json.loads(raw)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply
                return reply["result"]  # type: ignore[no-any-return]

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        self._session = self.send(
            "Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True})
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 15.0) -> None:
        """Poll the page until ``expression`` is true (the page's own fetches take time)."""
        deadline = time.monotonic() + timeout_s
        guarded = f"(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"
        while not self.js(guarded):  # false (not an error) while the page is still loading
            assert time.monotonic() < deadline, f"the page never got to: {expression}"
            time.sleep(0.05)

    def close(self) -> None:
        try:
            self._session = None
            self.send("Browser.close", timeout_s=5)
        except AssertionError:
            pass
        finally:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            os.close(self._to_chrome)
            os.close(self._from_chrome)


NAMES_JS = "[...document.querySelectorAll('#sequences tr.sequence td.name')].map(e => e.textContent)"


def test_status_page_pages_and_filters_when_clicked(cluster: Cluster, tmp_path: Path) -> None:
    server = cluster.server()
    admin = start_admin(cluster, server.control)
    names = seed(admin, server.bind)
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(f"{admin.url}/?limit=10&prefix=browser/")
        shows = "document.body.dataset.shown === {!r}".format
        browser.wait_for(shows("prefix=browser%2F&limit=10"))
        assert browser.js(NAMES_JS) == names[:10]
        assert browser.js("document.getElementById('prev').disabled") is True

        browser.js("document.getElementById('next').click()")
        browser.wait_for(shows("prefix=browser%2F&limit=10&cursor=browser%2F09"))
        assert browser.js("document.getElementById('page').textContent") == "page 2"
        assert browser.js(NAMES_JS) == names[10:]
        assert browser.js("document.getElementById('next').disabled") is True

        browser.js("document.getElementById('prev').click()")
        browser.wait_for(shows("prefix=browser%2F&limit=10"))
        assert browser.js(NAMES_JS) == names[:10]
        assert browser.js("document.getElementById('next').disabled") is False

        browser.js("""(() => { const box = document.getElementById('prefix');
                              box.value = 'browser/1'; box.dispatchEvent(new Event('input')); })()""")
        browser.wait_for(shows("prefix=browser%2F1&limit=10"))
        assert browser.js(NAMES_JS) == ["browser/10", "browser/11"]
        assert "prefix=browser%2F1" in browser.js("location.search")

        browser.js("""(() => { const box = document.getElementById('prefix');
                              box.value = 'browser/'; box.dispatchEvent(new Event('input')); })()""")
        browser.wait_for(shows("prefix=browser%2F&limit=10"))
        browser.js("""(() => { const box = document.getElementById('limit');
                              box.value = '1000'; box.dispatchEvent(new Event('change')); })()""")
        browser.wait_for(shows("prefix=browser%2F&limit=1000"))
        assert browser.js(NAMES_JS) == names
        assert browser.js("document.getElementById('next').disabled") is True
        assert "limit=1000" in browser.js("location.search")
    finally:
        browser.close()
