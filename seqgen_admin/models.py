"""The admin's HTTP models: what the OpenAPI schema documents, field by field.

Sequence values are 64-bit; JSON numbers lose precision above 2**53 in many
clients (JavaScript), so every sequence value travels as a string of decimal
digits, as on the public wire protocol. The ``*_out`` functions turn control
replies (msgspec structs) into these models.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from seqgen_common.control import Counters, Pong, SequenceInfo, SequencePage, Status
from seqgen_common.errors import RequestError
from seqgen_common.limits import MAX_VALUE
from seqgen_common.protocol import validate_name

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

NAME_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]+$"
"""A sequence name has no control characters (and is 1 to 200 UTF-8 bytes)."""

DIGITS_PATTERN: Final = r"^[0-9]+$"


def check_name(name: str) -> str:
    """A valid sequence name, else ValueError (FastAPI answers 422)."""
    try:
        return validate_name(name)
    except RequestError as exc:
        raise ValueError(exc.message) from exc


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


class ServerCounters(_Model):
    """Counters since the server started."""

    requests: dict[str, int] = Field(
        description='Public requests by outcome: "OK" or the error code (BAD_NAME, INTERNAL...).'
    )
    numbers_issued: int = Field(description="Numbers handed out to clients.")
    catchups: int = Field(
        description="Requests whose `last` made the server skip ahead past another server."
    )
    catchup_skipped: int = Field(description="Own numbers skipped by those catch-ups.")
    skipped_at_start: int = Field(
        description="Own numbers skipped at start: reserved before a crash, maybe never issued."
    )
    reservations_written: int = Field(
        description="Durable high-water marks written (one per name per store write)."
    )
    store_writes: int = Field(description="Store transactions (batches of marks).")
    store_write_failures: int = Field(description="Store transactions that failed.")
    store_write_seconds_sum: float = Field(description="Total time spent in store writes.")
    store_write_seconds_max: float = Field(description="The slowest store write.")
    disk_waits: int = Field(
        description="Public requests whose reply had to wait for a store write."
    )
    control_requests: int = Field(description="Control requests served (admin traffic).")


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
    return ServerCounters(
        requests=dict(c.requests),
        numbers_issued=c.numbers_issued,
        catchups=c.catchups,
        catchup_skipped=c.catchup_skipped,
        skipped_at_start=c.skipped_at_start,
        reservations_written=c.reservations_written,
        store_writes=c.store_writes,
        store_write_failures=c.store_write_failures,
        store_write_seconds_sum=c.store_write_seconds_sum,
        store_write_seconds_max=c.store_write_seconds_max,
        disk_waits=c.disk_waits,
        control_requests=c.control_requests,
    )


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

