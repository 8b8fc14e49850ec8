"""What the proxy counts: the one definition. No zmq, no I/O.

``ProxyStats`` is to the proxy what ``seqgen_common.control.Counters`` is to the
server: each counter is declared once, with its Prometheus name and help text
(and, for those in the stop log line, its phrase there); ``/metrics``
(seqgen_proxy.metrics) and the ``stopped:`` log line are derived from these
declarations (``STAT_FIELDS``), so a counter added here shows in both.

The relay's loop bumps these (a few plain additions per request); the
exporter's thread reads them at scrape time. Readers copy a dict or list in
one step (atomic under the GIL), so a scrape never sees a container change
size under it and the loop never waits for a scrape.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field, fields
from typing import Any, Final

from seqgen_common.errors import ErrorCode
from seqgen_common.protocol import OK_START

__all__ = ["LATENCY_BUCKETS_S", "OTHER_OUTCOME", "STAT_FIELDS", "Latency", "ProxyStats",
           "StatField"]

LATENCY_BUCKETS_S: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                            1.0, 2.5, 5.0)
"""Upper bounds of the latency histogram's buckets (one more bucket holds the rest)."""
OTHER_OUTCOME: Final = "OTHER"
"""The outcome of a reply that is neither a success nor a known error code."""
_CODES: Final = frozenset(code.encode() for code in ErrorCode)
_OTHER: Final = OTHER_OUTCOME.encode()


class Latency:
    """A histogram of one backend's answer times: counts per bucket (not cumulative) and a sum."""

    __slots__ = ("counts", "sum_s")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.sum_s = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.sum_s += seconds

    def snapshot(self) -> tuple[list[int], float]:
        """(cumulative counts per bucket, the last being +Inf, sum of seconds)."""
        counts, total = list(self.counts), self.sum_s
        cumulative, running = [], 0
        for count in counts:
            running += count
            cumulative.append(running)
        return cumulative, total


def _count(metric: str, description: str, stop: str | None = None, *,
           detail: bool = False) -> Any:
    """A counter field, from 0: its Prometheus family (``metric``, ``_total`` added by the
    exposition) and help text; ``stop``, its phrase in the stop log line (``detail``: in
    parentheses after the phrase before it)."""
    return field(default=0, metadata={"metric": metric, "description": description,
                                      "stop": stop, "detail": detail})


@dataclass(slots=True)
class ProxyStats:
    """Everything the proxy counts since it started, for ``backends`` hosts.

    A slotted dataclass rather than a msgspec Struct: it never travels, and an addition to
    a Struct's field costs about 200 machine instructions more than one to a slot (measured
    with callgrind), several times on the path of every request.
    """

    backends: int
    retries: int = _count(
        "seqgen_proxy_retries", "Attempts sent to a further backend after one failed.",
        "%d retries")
    unavailable: int = _count(
        "seqgen_proxy_unavailable", "Requests answered UNAVAILABLE because no backend answered.",
        "%d UNAVAILABLE")
    shed: int = _count(
        "seqgen_proxy_shed", "Requests answered UNAVAILABLE (overloaded) by the proxy itself: "
        "--max-queued was full, or the request waited a whole --timeout.",
        "%d shed (overloaded)")
    stale_replies: int = _count(
        "seqgen_proxy_stale_replies", "Late or unknown replies from backends, dropped.",
        "%d stale replies dropped")
    undelivered: int = _count(
        "seqgen_proxy_replies_undelivered", "Replies whose client had left.",
        "%d replies undelivered")
    coalesced: int = _count(
        "seqgen_proxy_coalesced_requests",
        "Client requests that shared a backend request with others.",
        "%d requests coalesced")
    hedges: int = _count(
        "seqgen_proxy_hedges", "Backend requests sent as hedges: a request unanswered within "
        "the hedge delay sent to a second backend too.", "%d hedges")
    hedge_wins: int = _count(
        "seqgen_proxy_hedge_wins", "Backend requests answered by their hedge first.",
        "%d won", detail=True)
    late_answers: int = _count(
        "seqgen_proxy_late_answers", "Answers that came after the other attempt of their "
        "request had won; dropped.", "%d late answers", detail=True)
    late_numbers: int = _count(
        "seqgen_proxy_late_numbers", "Numbers in those late answers: issued, never delivered "
        "(skipped).", "%d numbers skipped", detail=True)
    numbers: int = _count(
        "seqgen_proxy_numbers_relayed", "Numbers handed to clients in success replies.")
    coalesced_jobs: int = _count(
        "seqgen_proxy_coalesced_jobs",
        "Backend requests that carried more than one client request.")
    coalesced_numbers: int = _count(
        "seqgen_proxy_coalesced_numbers", "Numbers asked for by those backend requests.")
    caps_applied: int = _count(
        "seqgen_proxy_caps_applied", "Requests whose `last` was lowered to the highest number "
        "the proxy relayed for the name.")
    ok: int = 0
    """Success replies handed to clients (with ``errors``: seqgen_proxy_requests by outcome)."""
    errors: dict[bytes, int] = field(
        default_factory=lambda: dict.fromkeys([*sorted(_CODES), _OTHER], 0))
    """Error replies to clients by code (the proxy's own and the backends')."""
    latency: list[Latency] = field(init=False)
    """Per backend: time from sending an attempt to its answer, as the loop saw it."""
    marked_down: list[int] = field(init=False)
    """Per backend: how often it went from up to down."""

    def __post_init__(self) -> None:
        self.latency = [Latency() for _ in range(self.backends)]
        self.marked_down = [0] * self.backends

    def replied(self, reply: bytes) -> None:
        """A reply was handed to a client (or meant for one that has left)."""
        if reply.startswith(OK_START):
            self.ok += 1
            self.numbers += reply.count(b",")  # [null,"v1",...,"vN"]: one comma per number
            return
        code = reply[2:reply.find(b'"', 2)]  # ["CODE","message"]
        self.errors[code if code in _CODES else _OTHER] += 1

    def late(self, numbers: int, success: bool) -> None:
        """An answer came for a hedged request after its other attempt had settled it."""
        self.late_answers += 1
        if success:
            self.late_numbers += numbers

    def outcomes(self) -> dict[str, int]:
        """Replies by outcome: "OK", each error code, "OTHER" (a consistent copy)."""
        errors = dict(self.errors)
        return {"OK": self.ok, **{code.decode(): count for code, count in errors.items()}}

    def counts(self) -> dict[str, int]:
        """The value of each counter of ``STAT_FIELDS``, by field name."""
        return {stat.name: getattr(self, stat.name) for stat in STAT_FIELDS}

    def stop_summary(self) -> tuple[str, dict[str, int]]:
        """The stop log line's text (after "stopped: ") and its totals, by field name."""
        phrases: list[tuple[str, list[str]]] = []
        totals: dict[str, int] = {}
        for stat in STAT_FIELDS:
            if stat.stop is None:
                continue
            totals[stat.name] = value = getattr(self, stat.name)
            if stat.detail:
                phrases[-1][1].append(stat.stop % value)
            else:
                phrases.append((stat.stop % value, []))
        text = ", ".join(f"{main} ({', '.join(details)})" if details else main
                         for main, details in phrases)
        return text, totals


@dataclass(frozen=True, slots=True)
class StatField:
    """One counter of ``ProxyStats`` with its declaration."""

    name: str
    metric: str
    """The Prometheus family name (``_total`` is appended by the exposition)."""
    description: str
    stop: str | None
    """Its phrase in the stop log line (``%d`` for the value); None: not logged there."""
    detail: bool
    """The phrase goes in parentheses after the one before it."""


def _stat_fields() -> tuple[StatField, ...]:
    declared = []
    for each in fields(ProxyStats):
        meta = each.metadata
        if "metric" in meta:  # else not a plain counter: exported in its own shape (metrics)
            declared.append(StatField(each.name, meta["metric"], meta["description"],
                                      meta["stop"], meta["detail"]))
    return tuple(declared)


STAT_FIELDS: Final = _stat_fields()
"""The plain counters of ``ProxyStats``, in declaration order."""
