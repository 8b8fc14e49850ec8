"""Numeric bounds of the daemons' settings, declared once on their config types.

A bounded field of a config dataclass is annotated with its bound as a
``msgspec.Meta`` (``ge``, ``gt``, ``le``)::

    reserve: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    timeout_s: Annotated[float, msgspec.Meta(ge=0.01, le=60.0)] = 1.0

(``X | None`` fields may be bounded too; None is not checked. A bound is ``ge``,
``ge`` and ``le``, or ``gt`` and ``le``: the shapes the messages below can word;
another is refused when the type is first read.) ``check`` reads
those declarations and tells the first value out of its bound, in the words of
the flag that sets it: ``--NAME`` is the field's name without its unit suffix
``_s``, underscores made dashes, and an ``_s`` field is in seconds. The
command-line parsers call it on their parsed flags (an ``argparse`` error,
exit status 2), and each config type calls it on itself when it is made, so a
config built in code is held to the same bounds.

The wording is the one each program has always printed:

- a lower end only: ``--reserve must be at least 1, got 0`` (``0 or more`` for 0);
- a range, when the config type's ``RANGES`` is ``Ranges.BETWEEN`` (the default;
  seqgen-proxy): ``--timeout must be between 0.01 and 60.0 seconds``;
- a range, ``Ranges.INTERVAL`` (seqgen-admin):
  ``--follow-max-names must be in 1..1000, got 0``,
  ``--control-timeout must be in (0, 60] seconds, got 61.0``.

A NaN is out of every bound (each test is written so that a NaN fails it).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, NamedTuple, Union, get_args, get_origin, get_type_hints

import msgspec

__all__ = ["Bound", "Ranges", "bounds", "check", "check_config"]


class Ranges(Enum):
    """How a program words a range (both ends given)."""

    BETWEEN = "between"
    INTERVAL = "interval"


class Bound(NamedTuple):
    field: str
    meta: msgspec.Meta

    @property
    def flag(self) -> str:
        return "--" + self.field.removesuffix("_s").replace("_", "-")

    @property
    def unit(self) -> str:
        return " seconds" if self.field.endswith("_s") else ""

    def holds(self, value: Any) -> bool:
        meta = self.meta
        return ((meta.ge is None or value >= meta.ge) and (meta.gt is None or value > meta.gt)
                and (meta.le is None or value <= meta.le))

    def message(self, value: Any, ranges: Ranges) -> str:
        meta, flag = self.meta, self.flag
        low = meta.ge if meta.ge is not None else meta.gt
        if meta.le is None:
            wanted = "0 or more" if meta.ge == 0 else f"at least {low}"
            return f"{flag} must be {wanted}{self.unit}, got {value}"
        if ranges is Ranges.BETWEEN:
            return f"{flag} must be between {low} and {meta.le}{self.unit}"
        interval = f"{low}..{meta.le}" if meta.gt is None else f"({low}, {meta.le}]"
        return f"{flag} must be in {interval}{self.unit}, got {value}"


def _meta(hint: Any) -> msgspec.Meta | None:
    """The msgspec.Meta with a numeric bound in a field's type (also inside ``X | None``)."""
    if get_origin(hint) in (Union, types.UnionType):
        return next(filter(None, map(_meta, get_args(hint))), None)
    if get_origin(hint) is Annotated:
        for extra in hint.__metadata__:
            if isinstance(extra, msgspec.Meta) and any(
                    bound is not None for bound in (extra.ge, extra.gt, extra.le, extra.lt)):
                return extra
    return None


_FOUND: dict[type, tuple[Bound, ...]] = {}


def bounds(config_type: type) -> tuple[Bound, ...]:
    """The bounded fields of a config dataclass, in the order of its fields."""
    found = _FOUND.get(config_type)
    if found is None:
        hints = get_type_hints(config_type, include_extras=True)
        metas = ((field.name, _meta(hints[field.name])) for field in dataclasses.fields(config_type))
        found = tuple(Bound(name, meta) for name, meta in metas if meta is not None)
        for bound in found:
            meta = bound.meta
            if meta.lt is not None or (meta.ge is None) == (meta.gt is None) or (
                    meta.gt is not None and meta.le is None):
                raise TypeError(f"{config_type.__name__}.{bound.field}: a bound is ge, ge and le, "
                                f"or gt and le; got {meta!r}")
        _FOUND[config_type] = found
    return found


def check(config_type: type, values: Mapping[str, Any]) -> None:
    """ValueError (its message for the user) when a value in ``values`` is out of its bound."""
    ranges: Ranges = getattr(config_type, "RANGES", Ranges.BETWEEN)
    for bound in bounds(config_type):
        value = values.get(bound.field)
        if value is not None and not bound.holds(value):
            raise ValueError(bound.message(value, ranges))


def check_config(config: Any) -> None:
    """``check`` on a config dataclass itself (from its ``__post_init__``)."""
    check(type(config), {bound.field: getattr(config, bound.field)
                         for bound in bounds(type(config))})
