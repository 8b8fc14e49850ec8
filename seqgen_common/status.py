"""The server's status and counters (control GetStatus): one definition for the admin's
``/status`` and ``/metrics`` (docs/protocol.md, docs/admin.md).

Each field says how the admin documents it (seqgen_common.fields) and whether and
how ``/metrics`` exports it: a counter's kind and Prometheus family, a status
field's gauge or its label of ``seqgen_server_info``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from seqgen_common.errors import ErrorCode
from seqgen_common.fields import described, field_docs

__all__ = ["CounterField", "Counters", "Kind", "Status", "counter_fields"]


Kind = Literal["counter", "gauge", "summary_count", "summary_sum"]
"""How /metrics exports a field: a counter, a gauge, or the count or sum of a summary."""


def _count(kind: Kind, metric: str, description: str) -> msgspec.Meta:
    """Field metadata: how /status documents a counter and /metrics exports it."""
    return described(description, kind=kind, metric=metric)


class Counters(msgspec.Struct, kw_only=True):
    """Counters since the server started: the one definition.

    The server counts into an instance of this; the admin derives its HTTP model
    (``/status``) and its Prometheus families (``/metrics``) from these fields.
    """

    requests: Annotated[dict[str, int], _count(
        "counter", "seqgen_requests", 'Public requests by outcome: "OK" or the error code.')] = (
        msgspec.field(default_factory=lambda: Counter(dict.fromkeys(["OK", *ErrorCode], 0))))
    numbers_issued: Annotated[int, _count(
        "counter", "seqgen_numbers_issued",
        "Numbers handed out to clients (counted once their reply was handed to the socket).")] = 0
    catchups: Annotated[int, _count(
        "counter", "seqgen_catchups",
        "Requests whose `last` made the server skip ahead past another server.")] = 0
    catchup_skipped: Annotated[int, _count(
        "counter", "seqgen_catchup_skipped_numbers", "Own numbers skipped by catch-ups.")] = 0
    skipped_at_start: Annotated[int, _count(
        "gauge", "seqgen_skipped_at_start_numbers",
        "Own numbers skipped at start: reserved before a crash, maybe never issued.")] = 0
    reservations_written: Annotated[int, _count(
        "counter", "seqgen_reservations_written",
        "Durable high-water marks written (one per name per store write).")] = 0
    store_writes: Annotated[int, _count(
        "summary_count", "seqgen_store_write_seconds",
        "Store transactions (batches of durable marks) and their time.")] = 0
    store_write_failures: Annotated[int, _count(
        "counter", "seqgen_store_write_failures", "Store transactions that failed.")] = 0
    store_write_seconds_sum: Annotated[float, _count(
        "summary_sum", "seqgen_store_write_seconds", "Time spent in store transactions.")] = 0.0
    store_write_seconds_max: Annotated[float, _count(
        "gauge", "seqgen_store_write_seconds_max", "The slowest store transaction since start.")] = 0.0
    disk_waits: Annotated[int, _count(
        "counter", "seqgen_disk_waits",
        "Public requests whose reply had to wait for a store write.")] = 0
    replies_undelivered: Annotated[int, _count(
        "counter", "seqgen_replies_undelivered",
        "Replies that could not be handed to a client that had left; their numbers were "
        "never issued (they are skipped).")] = 0
    control_requests: Annotated[int, _count(
        "counter", "seqgen_control_requests", "Control requests served (admin traffic).")] = 0
    highest_mark: Annotated[int, _count(
        "gauge", "seqgen_highest_mark",
        "The highest durable mark of any name: no number issued is above it. Names end at "
        "9223372036854775807 (EXHAUSTED); alert well before.")] = 0


@dataclass(frozen=True, slots=True)
class CounterField:
    """One field of ``Counters`` with its documentation."""

    name: str
    value_type: Any
    """``int``, ``float`` or ``dict[str, int]`` (requests by outcome)."""
    kind: Kind
    metric: str
    """The Prometheus family name (counters get ``_total`` appended by the exposition)."""
    description: str

    @property
    def labelled(self) -> bool:
        """True for ``requests``: numbers by outcome rather than one number."""
        return self.value_type not in (int, float)


def counter_fields() -> list[CounterField]:
    """The fields of ``Counters`` in order, with their kind, metric name and description."""
    return [CounterField(f.name, f.hint, f.extra["kind"], f.extra["metric"], f.description or f.name)
            for f in field_docs(Counters)]


def _gauge(description: str, metric: str, help_text: str) -> msgspec.Meta:
    """A field of Status that /metrics exports as the gauge ``metric`` (a bool as 0 or 1)."""
    return described(description, gauge=metric, help=help_text)


def _info(description: str) -> msgspec.Meta:
    """A field of Status that /metrics exports as a label of ``seqgen_server_info``."""
    return described(description, info=True)


class Status(msgspec.Struct, tag_field="type", tag="status", kw_only=True, frozen=True):
    """The server's status and counters: its fields say how ``/status`` documents them and
    which ``/metrics`` exports (``status_gauges``)."""

    version: Annotated[str, _info("The server's seqgen version.")]
    instance: Annotated[int, _info("This server's instance number K: it issues v ≡ K mod N.")]
    instances: Annotated[int, _info("N, the number of servers in the cluster.")]
    drift: Annotated[int, _gauge(
        "How far a client's `last` may run ahead before a catch-up.",
        "seqgen_drift", "The server's --drift.")]
    reserve: Annotated[int, _gauge(
        "Own numbers per name made durable ahead of use.",
        "seqgen_reserve", "The server's --reserve (own numbers per name).")]
    uptime_s: Annotated[float, _gauge(
        "Seconds since the server started.",
        "seqgen_uptime_seconds", "Seconds since the server started.")]
    data_dir: Annotated[str, described("The server's data directory.")]
    sequences: Annotated[int, _gauge(
        "How many sequences (names) the server holds.",
        "seqgen_sequences", "Sequences (names) the server holds.")]
    clean_start: Annotated[bool, _gauge(
        "False when the previous run did not stop cleanly (crash, kill -9).",
        "seqgen_clean_start", "1 if the previous run stopped cleanly, else 0.")]
    store_ok: Annotated[bool, _gauge(
        "False while the store cannot persist (requests that need it get INTERNAL).",
        "seqgen_store_ok", "1 while the store persists, 0 while it fails.")]
    counters: Annotated[Counters, described("Counters since the server started.")]
    fenced: Annotated[bool, _gauge(
        "True while the server is fenced: its public socket answers every request "
        "UNAVAILABLE \"fenced\" and issues nothing (POST /recover or /unfence releases it).",
        "seqgen_fenced", "1 while the server is fenced (it issues nothing), else 0.")] = False
    restored: Annotated[bool, described(
        "True when this run started on a restored backup (GET /backup), not after a "
        "crash: it starts fenced, and POST /recover brings it back.")] = False
    resize_to: Annotated[int | None, described(
        "A resize to this many servers is unfinished on this server "
        "(null: none); `POST /resize` with that number finishes it.")] = None
    retired: Annotated[bool, described(
        "A resize retired this server: it stays fenced for good.")] = False
