"""What the daemons' logs say about their configuration.

``settings(config)`` is a daemon's whole typed configuration as plain values (every
dataclass field but the secret ones, which are declared ``repr=False``), so the
start-up line cannot leave out a setting that a later change adds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

__all__ = ["describe_settings", "settings"]


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
