"""/docs and the status page in headless Chromium, with every host but 127.0.0.1 unreachable.

Chromium is Debian's ``chromium`` (scripts/test installs it); these tests are
skipped only when its binary is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.conftest import Cluster, numbers
from tests.integration.admin_support import Admin, start_admin

CHROMIUM = shutil.which("chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test installs it)"),
]

OFFLINE = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
"""--host-resolver-rules: any asset from the internet (a CDN) fails to load."""


def dump_dom(url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran (5 s of virtual time)."""
    assert CHROMIUM is not None
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        f"--host-resolver-rules={OFFLINE}", "--virtual-time-budget=5000", "--dump-dom", url,
    ]
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
    assert len(expected) == 7
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


def test_status_page_says_when_the_server_is_down(cluster: Cluster, tmp_path: Path) -> None:
    server = cluster.server()
    admin = start_admin(cluster, server.control, control_timeout_s=0.5)
    server.kill()
    page = rendered(dump_dom(f"{admin.url}/", tmp_path / "down"))
    assert page.elements["server-state"] == "unavailable"
    assert "does not answer" in page.elements["banner"]
    assert page.rows == []
