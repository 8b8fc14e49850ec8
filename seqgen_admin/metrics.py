"""Prometheus exposition: the server's counters (asked at scrape time) and the admin's HTTP metrics.

``ServerCollector`` asks the server for its status each time the registry is
collected and turns it into ``seqgen_*`` metric families
(``server_metric_families``, pure). When the server does not answer, only
``seqgen_server_up 0`` is exported, so the admin's own metrics still get
scraped. ``HttpMetricsMiddleware`` counts every HTTP request by method, route
template and status, and times it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seqgen_admin.follow import FollowCounts
from seqgen_admin.plane import ClusterState
from seqgen_admin.witness import InstanceState, WitnessStore
from seqgen_common.control import Counters, Status, counter_fields
from seqgen_common.errors import StoreError
from seqgen_common.fields import field_docs

__all__ = [
    "ClusterCollector",
    "HttpMetrics",
    "HttpMetricsMiddleware",
    "ServerCollector",
    "WitnessCollector",
    "cluster_metric_families",
    "server_metric_families",
    "witness_metric_families",
]

log = logging.getLogger(__name__)

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE: Final = "<unmatched>"
"""The route label of requests no route matched (keeps the label set small)."""


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter_families(counters: Counters) -> list[Metric]:
    """One family per field of ``Counters`` (the fields say their kind and name)."""
    families: list[Metric] = []
    summaries: dict[str, SummaryMetricFamily] = {}
    for field in counter_fields():
        value = getattr(counters, field.name)
        if field.labelled:
            family = CounterMetricFamily(field.metric, field.description, labels=["outcome"])
            for outcome, count in sorted(value.items()):
                family.add_metric([outcome], count)
            families.append(family)
        elif field.kind == "counter":
            families.append(CounterMetricFamily(field.metric, field.description, value=value))
        elif field.kind == "gauge":
            families.append(_gauge(field.metric, field.description, value))
        elif field.kind == "summary_count":  # its sum follows (a field of kind summary_sum)
            summaries[field.metric] = SummaryMetricFamily(field.metric, field.description)
        else:
            summary = summaries.pop(field.metric)
            count = getattr(counters, _count_of(field.metric))
            summary.add_metric([], count_value=count, sum_value=value)
            families.append(summary)
    return families


def _count_of(metric: str) -> str:
    """The field that holds the count of the summary ``metric``."""
    return next(f.name for f in counter_fields() if f.metric == metric and f.kind == "summary_count")


def server_metric_families(status: Status | None) -> list[Metric]:
    """The ``seqgen_*`` families for one status reply; None means the server did not answer."""
    up = _gauge("seqgen_server_up", "1 if the server answered the admin at scrape time, else 0.",
                0 if status is None else 1)
    if status is None:
        return [up]
    info = InfoMetricFamily("seqgen_server", "The server's version and place in the cluster.")
    info.add_metric([], {field.name: str(getattr(status, field.name))
                         for field in field_docs(Status) if field.extra.get("info")})
    return [
        up,
        info,
        *(_gauge(field.extra["gauge"], field.extra["help"], float(getattr(status, field.name)))
          for field in field_docs(Status) if "gauge" in field.extra),
        *_counter_families(status.counters),
    ]


class ServerCollector(Collector):
    """Asks the server (through ``fetch``) every time the registry is collected."""

    def __init__(self, fetch: Callable[[], Status | None]) -> None:
        self._fetch = fetch

    def describe(self) -> Iterable[Metric]:
        return []  # no server call when the collector is registered

    def collect(self) -> Iterable[Metric]:
        try:
            status = self._fetch()
        except Exception:
            log.exception("cannot ask the server for its status")
            status = None
        return server_metric_families(status)


def cluster_metric_families(state: ClusterState) -> list[Metric]:
    """The cluster view as of the last polls (no I/O)."""
    return [
        _gauge("seqgen_cluster_peers", "Peers configured (--peer).", len(state.peers)),
        _gauge("seqgen_cluster_peers_reachable", "Peers that answered their last poll.",
               sum(1 for peer in state.peers if peer.reachable)),
        _gauge("seqgen_cluster_conflicts", "Misconfigurations seen (two servers with one instance, "
               "different instance counts, an instance out of range, a server gone backwards); alert when "
               "above 0.",
               len(state.conflicts)),
        _gauge("seqgen_cluster_backwards", "Names that serving peers hold below what this host "
               "witnessed them issue (they can issue those numbers again); alert when above 0.",
               state.behind),
        *_follow_families(state.follow),
    ]


def _follow_families(counts: FollowCounts | None) -> list[Metric]:
    """Following the peers (seqgen_admin.follow); only ``enabled 0`` when it is off."""
    enabled = _gauge("seqgen_follow_enabled", "1 if this admin raises its server's floors to "
                     "follow the peers (--follow-peers with --peer), else 0.", int(counts is not None))
    if counts is None:
        return [enabled]
    return [
        enabled,
        CounterMetricFamily("seqgen_follow_rounds", "Rounds of following that had names to "
                            "consider (after a peer's poll).", value=counts.rounds),
        CounterMetricFamily("seqgen_follow_checked", "Names read from this server because a "
                            "peer was more than drift beyond them.", value=counts.checked),
        CounterMetricFamily("seqgen_follow_raised", "Floors this server raised to follow a peer "
                            "that was more than drift ahead.", value=counts.raised),
        CounterMetricFamily("seqgen_follow_deferred", "Names left for a later round by "
                            "--follow-max-names (or dropped while too many waited).",
                            value=counts.deferred),
        CounterMetricFamily("seqgen_follow_failures", "Rounds that failed (this server did not "
                            "answer); their names wait for the next.", value=counts.failures),
    ]


class ClusterCollector(Collector):
    """The cluster metrics, from the plane's state at every collection."""

    def __init__(self, state: Callable[[], ClusterState]) -> None:
        self._state = state

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        return cluster_metric_families(self._state())


def witness_metric_families(states: dict[int, InstanceState]) -> list[Metric]:
    """The witness record's freshness per witnessed instance (no I/O)."""
    confirmed = GaugeMetricFamily(
        "seqgen_witness_confirmed_timestamp_seconds",
        "Unix time when this host's witness record of the instance was last known complete "
        "(a poll of its server, unfenced, drained every change); alert when it is old.",
        labels=["witnessed_instance"])
    lost = GaugeMetricFamily(
        "seqgen_witness_lost", "1 while the record of the instance is not being confirmed (its "
        "server did not answer, restarted, or is fenced), else 0.", labels=["witnessed_instance"])
    for instance, state in sorted(states.items()):
        if state.confirmed_at is None:
            continue  # never complete: nothing to say how old it is
        confirmed.add_metric([str(instance)], state.confirmed_at)
        lost.add_metric([str(instance)], int(state.lost_at is not None))
    return [confirmed, lost]


class WitnessCollector(Collector):
    """The witness record's state per instance, read (from the scrape's worker thread) at
    every collection; nothing without a record (no ``--peer``)."""

    def __init__(self, witness: Callable[[], WitnessStore | None]) -> None:
        self._witness = witness

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        witness = self._witness()
        if witness is None:
            return []
        try:
            states = witness.states()
        except StoreError:
            log.exception("cannot read the witness record for /metrics")
            return []
        return witness_metric_families(states)


class HttpMetrics:
    """The admin's own HTTP metrics, in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "seqgen_admin_http_requests", "HTTP requests served by the admin.",
            ["method", "route", "status"], registry=registry,
        )
        self.duration = Histogram(
            "seqgen_admin_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["method", "route"], registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


class HttpMetricsMiddleware:
    """Pure ASGI middleware: records each HTTP request in ``HttpMetrics``."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or UNMATCHED_ROUTE
            self.metrics.observe(
                str(scope["method"]), str(template), status, time.perf_counter() - started
            )
