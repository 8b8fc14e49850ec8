"""seqgen_common.logs: the two formats and the settings of a start-up line."""

from __future__ import annotations

import ast
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from seqgen_common.logs import JsonFormatter, PlainFormatter, describe_settings, settings, setup
from tests.markdown import ROOT, inline_code, section

CREATED = 1_796_575_895.4721  # 2026-12-06T16:51:35.472Z


def record(message: str, *args: object, extra: dict[str, object] | None = None,
           exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.getLogger("seqgen_test.part").makeRecord(
        "seqgen_test.part", logging.WARNING, __file__, 1, message, args, exc_info, extra=extra)
    made.created, made.msecs = CREATED, 472.0
    return made


def test_json_is_one_line_with_utc_time_and_the_extra_fields() -> None:
    line = JsonFormatter().format(record("backend %s\ndown", "tcp://h:1",
                                         extra={"backend": "tcp://h:1", "up": False,
                                                "path": Path("/x")}))
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2026-12-06T16:51:35.472Z", "level": "WARNING", "logger": "seqgen_test.part",
        "message": "backend tcp://h:1\ndown", "backend": "tcp://h:1", "up": False, "path": "/x"}


def test_json_carries_the_traceback() -> None:
    entry = json.loads(JsonFormatter().format(record("failed", exc=True)))
    assert entry["message"] == "failed"
    assert "ValueError: boom" in entry["exception"]


def test_plain_lines_carry_the_utc_zone() -> None:
    line = PlainFormatter().format(record("hello %d", 5))
    assert line == "2026-12-06T16:51:35.472Z WARNING seqgen_test.part: hello 5"


@dataclass(frozen=True)
class _Config:
    bind: str = "tcp://a:1"
    data: Path = Path("/var/lib/seqgen")
    hosts: tuple[str, ...] = ("tcp://b:2",)
    token: str | None = field(default="secret", repr=False)


def test_settings_are_every_field_but_the_secret_ones() -> None:
    assert settings(_Config()) == {"bind": "tcp://a:1", "data": "/var/lib/seqgen",
                                   "hosts": ["tcp://b:2"]}
    assert "secret" not in describe_settings(_Config())
    assert describe_settings(_Config()) == "bind=tcp://a:1 data=/var/lib/seqgen hosts=['tcp://b:2']"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        setup("INFO", "xml")


def extra_keys_in_the_code() -> dict[str, str]:
    """Every key of an ``extra={...}`` literal passed to ``log.<level>(...)`` in the packages."""
    found: dict[str, str] = {}
    for path in sorted(ROOT.glob("seqgen_*/*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "log":
                for keyword in node.keywords:
                    if keyword.arg == "extra" and isinstance(keyword.value, ast.Dict):
                        for key in keyword.value.keys:
                            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                                found[key.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def test_every_structured_log_field_is_documented() -> None:
    keys = extra_keys_in_the_code()
    assert {"config", "backend"} <= set(keys)  # the reader finds them
    documented = set(inline_code(section("docs/operations.md", "Logs")))
    missing = [f"`{key}` ({where})" for key, where in sorted(keys.items()) if key not in documented]
    assert not missing, ("docs/operations.md, section 'Logs', does not name the log fields "
                         + ", ".join(missing))
