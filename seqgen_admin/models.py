"""The admin's HTTP models: what the OpenAPI schema documents, field by field.

Sequence values are 64-bit; JSON numbers lose precision above 2**53 in many
clients (JavaScript), so every sequence value travels as a string of decimal
digits, as on the public wire protocol. The ``*_out`` functions turn control
replies (msgspec structs) into these models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, create_model

from seqgen_common.control import Counters, Pong, SequenceInfo, SequencePage, Status, counter_fields
from seqgen_common.limits import MAX_VALUE
from seqgen_common.protocol import NAME_PATTERN, name_problem

__all__ = [
    "NAME_PATTERN",
    "FloorRequest",
    "Health",
    "Problem",
    "Ready",
    "Sequence",
    "SequenceList",
    "ServerCounters",
    "ServerStatus",
    "check_name",
    "page_out",
    "ready_out",
    "sequence_out",
    "status_out",
]

DIGITS_PATTERN: Final = r"^[0-9]+$"


def check_name(name: str) -> str:
    """A valid sequence name, else ValueError (FastAPI answers 422)."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


def digits_at_most(limit: int) -> str:
    """A regular expression for the decimal digit strings of 0..``limit`` (leading zeros allowed).

    The schema then states the exact range, so a client (or a schema-driven test) can
    tell a valid value from the text alone. For 250:
    ``^0*(?:[0-9]{1,2}|[0-1][0-9]{2}|2[0-4][0-9]{1}|25[0-0]|250)$``.
    """
    digits = str(limit)
    width = len(digits)
    choices = [f"[0-9]{{1,{width - 1}}}"] if width > 1 else []
    for i, digit in enumerate(digits):
        if digit != "0":
            rest = width - i - 1
            choices.append(digits[:i] + f"[0-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    choices.append(digits)
    return "^0*(?:" + "|".join(choices) + ")$"


VALUE_PATTERN: Final = digits_at_most(MAX_VALUE)
"""A floor value: decimal digits of a number from 0 to 2**63 - 1."""


Digits = Annotated[str, Field(pattern=DIGITS_PATTERN, examples=["100000"])]
"""A 64-bit value as a string of decimal digits."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Problem(_Model):
    """Every error response (4xx/5xx other than 422) has this body."""

    detail: str = Field(description="What went wrong, for a person.")


class Health(_Model):
    status: Literal["ok"] = Field(description="The admin process serves HTTP.")


class Ready(_Model):
    status: Literal["ready"] = Field(description="The server answers its control socket.")
    version: str = Field(description="The server's seqgen version.")
    instance: int = Field(description="This server's instance number K (1..N).")
    instances: int = Field(description="N, the number of servers in the cluster.")


def _counters_model() -> type[BaseModel]:
    """``ServerCounters``, field by field from ``seqgen_common.control.Counters``."""
    fields: dict[str, Any] = {
        field.name: (field.value_type, Field(description=field.description))
        for field in counter_fields()
    }
    return create_model("ServerCounters", __base__=_Model, __doc__="Counters since the server started.",
                        **fields)


if TYPE_CHECKING:
    class ServerCounters(_Model):
        """For type checkers: the fields are made from ``Counters`` at import."""
else:
    ServerCounters = _counters_model()


class ServerStatus(_Model):
    version: str = Field(description="The server's seqgen version.")
    instance: int = Field(description="This server's instance number K: it issues v ≡ K mod N.")
    instances: int = Field(description="N, the number of servers in the cluster.")
    drift: int = Field(description="How far a client's `last` may run ahead before a catch-up.")
    reserve: int = Field(description="Own numbers per name made durable ahead of use.")
    uptime_s: float = Field(description="Seconds since the server started.")
    data_dir: str = Field(description="The server's data directory.")
    sequences: int = Field(description="How many sequences (names) the server holds.")
    clean_start: bool = Field(
        description="False when the previous run did not stop cleanly (crash, kill -9)."
    )
    store_ok: bool = Field(
        description="False while the store cannot persist (requests that need it get INTERNAL)."
    )
    counters: ServerCounters = Field(description="Counters since the server started.")


class Sequence(_Model):
    name: str = Field(description="The sequence name.")
    current: Digits = Field(
        description="The highest number issued (or the floor): the next number is greater."
    )
    durable: Digits = Field(
        description="The durable high-water mark: after a crash the server restarts above it."
    )


class SequenceList(_Model):
    items: list[Sequence] = Field(description="Sequences in name order (UTF-8 byte order).")
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class FloorRequest(_Model):
    value: Annotated[
        str,
        Field(
            pattern=VALUE_PATTERN,
            max_length=64,
            examples=["100000"],
            description=f"Decimal digits of a number from 0 to {MAX_VALUE}: the next number "
            "issued for the name will be greater than this.",
        ),
    ]


# ---- control replies -> HTTP models ------------------------------------------------


def ready_out(pong: Pong) -> Ready:
    return Ready(status="ready", version=pong.version, instance=pong.instance,
                 instances=pong.instances)


def _counters_out(c: Counters) -> ServerCounters:
    return ServerCounters(**msgspec.structs.asdict(c))


def status_out(s: Status) -> ServerStatus:
    return ServerStatus(
        version=s.version,
        instance=s.instance,
        instances=s.instances,
        drift=s.drift,
        reserve=s.reserve,
        uptime_s=s.uptime_s,
        data_dir=s.data_dir,
        sequences=s.sequences,
        clean_start=s.clean_start,
        store_ok=s.store_ok,
        counters=_counters_out(s.counters),
    )


def sequence_out(info: SequenceInfo) -> Sequence:
    return Sequence(name=info.name, current=str(info.current), durable=str(info.durable))


def page_out(page: SequencePage) -> SequenceList:
    return SequenceList(
        items=[sequence_out(info) for info in page.items], next_cursor=page.next_cursor
    )

