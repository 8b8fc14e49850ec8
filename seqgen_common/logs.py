"""How the daemons log: to stderr, in UTC, as plain lines or as one JSON object per line.

``setup(level, log_format)`` is called once by ``daemon.start`` for every daemon
(uvicorn's loggers included: the admin gives uvicorn no logging config of its own).

- ``plain``: ``2026-12-06T16:51:35.466Z INFO seqgen_server.server: message``. The
  time is UTC, and says so (``Z``).
- ``json``: one object per line, ``{"time": "2026-12-06T16:51:35.466Z", "level":
  "INFO", "logger": "seqgen_server.server", "message": "...", ...}``, followed by
  the structured fields that the call passed with ``extra=`` (the start-up line's
  ``config``, a backend's ``backend``...), and ``exception`` with the traceback when
  there is one. uvicorn's access lines carry ``client``, ``method``, ``path`` and
  ``status``.

``settings(config)`` is a daemon's whole typed configuration as plain values (every
dataclass field but the secret ones, which are declared ``repr=False``), so the
start-up line cannot leave out a setting that a later change adds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Final

__all__ = ["LOG_FORMATS", "JsonFormatter", "PlainFormatter", "describe_settings", "settings",
           "setup"]

LOG_FORMATS: Final = ("plain", "json")
PLAIN: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message"}
"""Attributes every record has (uvicorn adds ``color_message``); the rest came by ``extra=``."""
_ACCESS_FIELDS: Final = ("client", "method", "path", "http_version", "status")


def _utc(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class PlainFormatter(logging.Formatter):
    """The plain line, with an ISO 8601 UTC time (``...Z``)."""

    def __init__(self) -> None:
        super().__init__(PLAIN)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _utc(record), "level": record.levelname, "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) \
                and len(record.args) == len(_ACCESS_FIELDS):
            entry.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _log_uncaught(kind: type[BaseException], value: BaseException,
                  traceback: TracebackType | None, where: str = "") -> None:
    logging.getLogger("seqgen").error("uncaught exception%s: %s", where, value,
                                      exc_info=(kind, value, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        name = args.thread.name if args.thread is not None else "?"
        _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback, f" in thread {name}")


def setup(level: str, log_format: str = "plain") -> None:
    """The root logger writes to stderr (supervisord captures it) in ``log_format``.

    Warnings and uncaught exceptions (of the main thread and of the others) go through
    it too, so that nothing else writes to stderr in another shape.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else PlainFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _plain(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    describe = getattr(value, "describe", None)
    return describe() if callable(describe) else str(value)


def settings(config: Any) -> dict[str, object]:
    """Every non-secret field of a config dataclass, as JSON-able values."""
    return {f.name: _plain(getattr(config, f.name))
            for f in dataclasses.fields(config) if f.repr}


def describe_settings(config: Any) -> str:
    """``name=value`` for every setting, in the dataclass's order, for the start-up line."""
    return " ".join(f"{name}={value}" for name, value in settings(config).items())
