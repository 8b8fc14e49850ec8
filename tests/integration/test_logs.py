"""The daemons' logs as real processes write them: JSON lines, and plain lines in UTC.

Each daemon runs with ``--log-format json`` (or plain) and its stderr is read back
line by line: every line must parse, carry a UTC time with its zone, the level, the
logger and the message, and the records that carry fields (the start-up line's
whole configuration, a proxy's backend going down, uvicorn's access lines) must
have them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx

from seqgen_admin.config import AdminConfig
from seqgen_common.daemon import LEVELS
from seqgen_proxy.config import ProxyConfig
from seqgen_server.config import ServerConfig
from tests.conftest import Cluster, Proc, numbers, request, wait_until
from tests.integration.admin_support import start_admin

JSON = ["--log-format", "json"]
PLAIN_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) [\w.]+: .")


def records(proc: Proc) -> list[dict[str, object]]:
    """Every line the process wrote, each one a JSON object with the four fields."""
    found = []
    now = datetime.now(UTC)
    for line in proc.log().splitlines():
        record = json.loads(line)  # a line that is not JSON fails here, with the line
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= set(record), line
        assert record["level"] in LEVELS, line
        stamp = str(record["time"])
        assert stamp.endswith("Z"), line
        when = datetime.fromisoformat(stamp)
        assert when.utcoffset() == timedelta(0) and abs(now - when) < timedelta(minutes=5), line
        found.append(record)
    return found


def config_fields(config_type: type) -> set[str]:
    return {f.name for f in dataclasses.fields(config_type) if f.repr}


def start_record(proc: Proc, program: str) -> dict[str, object]:
    return next(r for r in records(proc) if str(r["message"]).startswith(f"{program} "))


def test_the_server_logs_json_lines_with_its_whole_configuration(cluster: Cluster) -> None:
    server = cluster.server(2, 3, drift=7, extra=[*JSON, "--max-disk-waits", "5"])
    numbers(server.bind, "x", count=3)
    assert server.term() == 0
    start = start_record(server, "seqgen-server")
    config = start["config"]
    assert isinstance(config, dict)
    assert set(config) == config_fields(ServerConfig)
    assert (config["instance"], config["instances"], config["drift"], config["max_disk_waits"],
            config["bind"], config["log_format"]) == (2, 3, 7, 5, server.bind, "json")
    assert start["sequences"] == 0 and start["level"] == "INFO"
    assert start["logger"] == "seqgen_server.server"
    stop = next(r for r in records(server) if str(r["message"]).startswith("stopped cleanly"))
    assert stop["sequences"] == 1


def test_the_proxy_logs_a_backend_going_down_with_its_fields(cluster: Cluster) -> None:
    server = cluster.server()
    proxy = cluster.proxy([server.bind], extra=[*JSON, "--timeout", "0.2"])
    start = start_record(proxy, "seqgen-proxy")
    assert set(start["config"]) == config_fields(ProxyConfig)  # type: ignore[arg-type]
    server.kill()

    def marked_down() -> bool:
        request(proxy.bind, b'["x", "0"]', timeout_s=1.0)  # type: ignore[attr-defined]
        return any(r.get("backend") == server.bind and r.get("up") is False
                   for r in records(proxy))

    wait_until(marked_down, 15, "the proxy's 'marked down' record", proxy)
    down = next(r for r in records(proxy) if r.get("backend") == server.bind)
    assert down["level"] == "WARNING" and down["reason"] and server.bind in str(down["message"])


def test_the_admin_logs_json_lines_without_its_token(cluster: Cluster) -> None:
    server = cluster.server()
    token = "a-secret-token-for-the-log-test"
    admin = start_admin(cluster, server.control, token=token, extra=JSON)
    assert httpx.get(f"{admin.url}/status", timeout=10).status_code == 200
    wait_until(lambda: any(r.get("path") == "/status" for r in records(admin.proc)), 10,
               "the access line of GET /status", admin.proc)
    access = next(r for r in records(admin.proc) if r.get("path") == "/status")
    assert (access["logger"], access["method"], access["status"]) == ("uvicorn.access", "GET", 200)
    start = start_record(admin.proc, "seqgen-admin")
    assert set(start["config"]) == config_fields(AdminConfig)  # type: ignore[arg-type]
    assert "token" not in start["config"]  # type: ignore[operator]
    assert token not in admin.proc.log()


def test_the_plain_format_says_utc(cluster: Cluster) -> None:
    server = cluster.server()
    proxy = cluster.proxy([server.bind])
    admin = start_admin(cluster, server.control)
    assert server.term() == 0
    for proc in (server, proxy, admin.proc):
        lines = proc.log().splitlines()
        assert lines, proc.args
        bad = [line for line in lines if not PLAIN_LINE.match(line)]
        assert not bad, bad


def test_warnings_and_uncaught_exceptions_are_json_lines_too() -> None:
    """Nothing reaches stderr in another shape: a warning, a thread's and the main thread's
    uncaught exceptions are records."""
    code = ("import threading, warnings\n"
            "from seqgen_common.logs import setup\n"
            "setup('INFO', 'json')\n"
            "warnings.warn('careful')\n"
            "t = threading.Thread(target=lambda: 1 / 0, name='worker'); t.start(); t.join()\n"
            "raise ValueError('the end')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(r["level"], r["logger"]) for r in lines] == [
        ("WARNING", "py.warnings"), ("ERROR", "seqgen"), ("ERROR", "seqgen")]
    assert "careful" in lines[0]["message"]
    assert lines[1]["message"] == "uncaught exception in thread worker: division by zero"
    assert "ZeroDivisionError" in lines[1]["exception"]
    assert "ValueError: the end" in lines[2]["exception"]
