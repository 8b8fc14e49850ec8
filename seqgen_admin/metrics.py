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

from seqgen_common.control import Status

__all__ = ["HttpMetrics", "HttpMetricsMiddleware", "ServerCollector", "server_metric_families"]

log = logging.getLogger(__name__)

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE: Final = "<unmatched>"
"""The route label of requests no route matched (keeps the label set small)."""


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def server_metric_families(status: Status | None) -> list[Metric]:
    """The ``seqgen_*`` families for one status reply; None means the server did not answer."""
    up = _gauge("seqgen_server_up", "1 if the server answered the admin at scrape time, else 0.",
                0 if status is None else 1)
    if status is None:
        return [up]
    c = status.counters
    info = InfoMetricFamily("seqgen_server", "The server's version and place in the cluster.")
    info.add_metric([], {
        "version": status.version,
        "instance": str(status.instance),
        "instances": str(status.instances),
    })
    requests = CounterMetricFamily(
        "seqgen_requests", "Public requests by outcome (OK or the error code).",
        labels=["outcome"],
    )
    for outcome, count in sorted(c.requests.items()):
        requests.add_metric([outcome], count)
    store_write = SummaryMetricFamily(
        "seqgen_store_write_seconds", "Store transactions (batches of durable marks) and their time.",
        count_value=c.store_writes, sum_value=c.store_write_seconds_sum,
    )
    return [
        up,
        info,
        _gauge("seqgen_uptime_seconds", "Seconds since the server started.", status.uptime_s),
        _gauge("seqgen_drift", "The server's --drift.", status.drift),
        _gauge("seqgen_reserve", "The server's --reserve (own numbers per name).", status.reserve),
        _gauge("seqgen_sequences", "Sequences (names) the server holds.", status.sequences),
        _gauge("seqgen_clean_start", "1 if the previous run stopped cleanly, else 0.",
               int(status.clean_start)),
        _gauge("seqgen_store_ok", "1 while the store persists, 0 while it fails.",
               int(status.store_ok)),
        requests,
        _counter("seqgen_numbers_issued", "Numbers handed out to clients.", c.numbers_issued),
        _counter("seqgen_catchups", "Requests whose last made the server skip ahead.", c.catchups),
        _counter("seqgen_catchup_skipped_numbers", "Own numbers skipped by catch-ups.",
                 c.catchup_skipped),
        _gauge("seqgen_skipped_at_start_numbers",
               "Own numbers skipped at start (reserved before a crash).", c.skipped_at_start),
        _counter("seqgen_reservations_written",
                 "Durable high-water marks written (one per name per store write).",
                 c.reservations_written),
        store_write,
        _counter("seqgen_store_write_failures", "Store transactions that failed.",
                 c.store_write_failures),
        _gauge("seqgen_store_write_seconds_max", "The slowest store write since start.",
               c.store_write_seconds_max),
        _counter("seqgen_disk_waits", "Public requests whose reply waited for a store write.",
                 c.disk_waits),
        _counter("seqgen_control_requests", "Control requests served.", c.control_requests),
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
