"""Prometheus metrics of a running proxy (``--metrics http://HOST:PORT``).

prometheus-client's HTTP server answers ``/metrics`` from threads of its own;
at each scrape ``RelayCollector`` reads the relay's counters (``read_relay``,
plain reads of numbers and one-step copies) and turns them into families
(``proxy_metric_families``, pure). The relay's loop never waits for a scrape
and does no work for one beyond the additions it makes anyway. Every metric is
listed in docs/proxy.md ("Metrics").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from seqgen_common import __version__
from seqgen_common.daemon import serve
from seqgen_common.endpoints import parse_http
from seqgen_common.errors import StartupError
from seqgen_proxy.stats import LATENCY_BUCKETS_S

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from seqgen_proxy.relay import Relay

__all__ = ["BackendView", "Exporter", "ProxyView", "RelayCollector", "proxy_metric_families",
           "read_relay", "serve_observed"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackendView:
    host: str
    up: bool
    in_flight: int
    marked_down: int
    latency_buckets: list[int]
    """Cumulative counts per bucket of LATENCY_BUCKETS_S, the last one +Inf."""
    latency_sum_s: float


@dataclass(frozen=True, slots=True)
class ProxyView:
    """The proxy's counters at one moment (read from another thread: each number is exact,
    the set of them is only nearly simultaneous)."""

    outcomes: dict[str, int]
    numbers: int
    shed: int
    unavailable: int
    retries: int
    stale_replies: int
    undelivered: int
    coalesced_requests: int
    coalesced_jobs: int
    coalesced_numbers: int
    hedges: int
    hedge_wins: int
    late_answers: int
    late_numbers: int
    caps_applied: int
    cap_names: int
    in_flight: int
    queued: int
    max_in_flight: int
    max_queued: int
    max_names: int
    backends: list[BackendView]


def read_relay(relay: Relay) -> ProxyView:
    """The relay's counters now (safe from another thread: reads only)."""
    stats, config = relay.stats, relay.config
    in_flight, queued = relay.load()
    backends = []
    for backend in relay.backends:
        buckets, sum_s = stats.latency[backend.index].snapshot()
        backends.append(BackendView(
            backend.host, relay.pool.is_healthy(backend.index), len(backend.inflight),
            stats.marked_down[backend.index], buckets, sum_s))
    return ProxyView(
        outcomes=stats.outcomes(), numbers=stats.numbers, shed=relay.shed,
        unavailable=relay.unavailable, retries=relay.retries, stale_replies=relay.stale_replies,
        undelivered=relay.undelivered, coalesced_requests=relay.coalesced,
        coalesced_jobs=stats.coalesced_jobs, coalesced_numbers=stats.coalesced_numbers,
        hedges=relay.hedges.hedges, hedge_wins=relay.hedges.wins,
        late_answers=relay.hedges.late_answers, late_numbers=relay.hedges.late_numbers,
        caps_applied=stats.caps_applied, cap_names=len(relay.caps), in_flight=in_flight,
        queued=queued, max_in_flight=config.max_in_flight, max_queued=config.max_queued,
        max_names=config.max_names, backends=backends)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def proxy_metric_families(view: ProxyView) -> list[Metric]:
    """The ``seqgen_proxy_*`` families for one reading of the counters (no I/O)."""
    info = InfoMetricFamily("seqgen_proxy", "The proxy's version.")
    info.add_metric([], {"version": __version__})
    requests = CounterMetricFamily(
        "seqgen_proxy_requests", 'Client requests answered, by outcome: "OK", the error code, '
        'or "OTHER" (a backend\'s reply of no known code).', labels=["outcome"])
    for outcome, count in view.outcomes.items():
        requests.add_metric([outcome], count)
    up = GaugeMetricFamily("seqgen_proxy_backend_up",
                           "1 while the backend is in the rotation, 0 while it is marked down.",
                           labels=["backend"])
    in_flight = GaugeMetricFamily("seqgen_proxy_backend_in_flight",
                                  "Requests waiting on the backend.", labels=["backend"])
    marked_down = CounterMetricFamily("seqgen_proxy_backend_marked_down",
                                      "Times the backend went from up to down.", labels=["backend"])
    latency = HistogramMetricFamily(
        "seqgen_proxy_backend_latency_seconds",
        "Time from sending a request to the backend to its answer, per attempt.",
        labels=["backend"])
    bounds = [f"{bound:g}" for bound in LATENCY_BUCKETS_S] + ["+Inf"]
    for backend in view.backends:
        labels = [backend.host]
        up.add_metric(labels, int(backend.up))
        in_flight.add_metric(labels, backend.in_flight)
        marked_down.add_metric(labels, backend.marked_down)
        latency.add_metric(labels, list(zip(bounds, backend.latency_buckets, strict=True)),
                           sum_value=backend.latency_sum_s)
    return [
        info, requests,
        _counter("seqgen_proxy_numbers_relayed", "Numbers handed to clients in success replies.",
                 view.numbers),
        _counter("seqgen_proxy_shed", "Requests answered UNAVAILABLE (overloaded) by the proxy "
                 "itself: --max-queued was full, or the request waited a whole --timeout.", view.shed),
        _counter("seqgen_proxy_unavailable", "Requests answered UNAVAILABLE because no backend "
                 "answered.", view.unavailable),
        _counter("seqgen_proxy_retries", "Attempts sent to a further backend after one failed.",
                 view.retries),
        _counter("seqgen_proxy_stale_replies", "Late or unknown replies from backends, dropped.",
                 view.stale_replies),
        _counter("seqgen_proxy_replies_undelivered", "Replies whose client had left.",
                 view.undelivered),
        _counter("seqgen_proxy_coalesced_requests", "Client requests that shared a backend "
                 "request with others.", view.coalesced_requests),
        _counter("seqgen_proxy_coalesced_jobs", "Backend requests that carried more than one "
                 "client request.", view.coalesced_jobs),
        _counter("seqgen_proxy_coalesced_numbers", "Numbers asked for by those backend requests.",
                 view.coalesced_numbers),
        _counter("seqgen_proxy_hedges", "Backend requests sent as hedges: a request unanswered "
                 "within the hedge delay sent to a second backend too.", view.hedges),
        _counter("seqgen_proxy_hedge_wins", "Backend requests answered by their hedge first.",
                 view.hedge_wins),
        _counter("seqgen_proxy_late_answers", "Answers that came after the other attempt of "
                 "their request had won; dropped.", view.late_answers),
        _counter("seqgen_proxy_late_numbers", "Numbers in those late answers: issued, never "
                 "delivered (skipped).", view.late_numbers),
        _counter("seqgen_proxy_caps_applied", "Requests whose `last` was lowered to the highest "
                 "number the proxy relayed for the name.", view.caps_applied),
        _gauge("seqgen_proxy_cap_names", "Names whose highest relayed number is remembered.",
               view.cap_names),
        _gauge("seqgen_proxy_cap_names_limit", "--max-names.", view.max_names),
        _gauge("seqgen_proxy_in_flight", "Requests waiting on backends.", view.in_flight),
        _gauge("seqgen_proxy_in_flight_limit", "--max-in-flight.", view.max_in_flight),
        _gauge("seqgen_proxy_queued", "Client requests waiting in the proxy for room in flight "
               "or for their name's request out.", view.queued),
        _gauge("seqgen_proxy_queued_limit", "--max-queued.", view.max_queued),
        up, in_flight, marked_down, latency,
    ]


class RelayCollector(Collector):
    """Reads the relay at every collection; nothing until ``relay`` is set."""

    def __init__(self) -> None:
        self.relay: Relay | None = None

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        relay = self.relay
        return [] if relay is None else proxy_metric_families(read_relay(relay))


class Exporter:
    """The HTTP server of ``/metrics``, on threads of its own."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.collector = RelayCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)
        self._server: WSGIServer | None = None

    def listen(self) -> None:
        """Start serving; StartupError when the address cannot be listened on."""
        host, port, _ = parse_http(self.address)  # http:// only (seqgen_proxy.config)
        try:
            self._server, _ = start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            raise StartupError(f"cannot serve --metrics at {self.address}: {exc}") from exc
        log.info("metrics at %s/metrics", self.address)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def serve_observed(make: Callable[[], Relay], describe: Callable[[Relay], None], address: str) -> int:
    """seqgen_common.daemon.serve with ``/metrics`` served at ``address`` while the relay runs."""
    exporter = Exporter(address)

    def make_observed() -> Relay:
        exporter.listen()
        relay = make()
        exporter.collector.relay = relay
        return relay

    try:
        return serve(make_observed, describe)
    finally:
        exporter.stop()
