"""Prometheus metrics of a running proxy (``--metrics http://HOST:PORT``).

prometheus-client's HTTP server answers ``/metrics`` from threads of its own;
at each scrape ``RelayCollector`` reads the relay's counters (``read_relay``,
plain reads of numbers and one-step copies) and turns them into families
(``proxy_metric_families``, pure). The plain counters' families are derived
from their declaration in ``seqgen_proxy.stats.ProxyStats`` (``STAT_FIELDS``).
The relay's loop never waits for a scrape and does no work for one beyond the
additions it makes anyway. Every metric is listed in docs/proxy.md ("Metrics").
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
from seqgen_proxy.stats import LATENCY_BUCKETS_S, STAT_FIELDS

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
    counts: dict[str, int]
    """The plain counters of ProxyStats by field name (``ProxyStats.counts``)."""
    cap_names: int
    in_flight: int
    queued: int
    max_in_flight: int
    max_queued: int
    max_names: int
    backends: list[BackendView]


def read_relay(relay: Relay) -> ProxyView:
    """The relay's counters now (safe from another thread: reads only)."""
    stats, config, upstream = relay.stats, relay.config, relay.upstream
    in_flight, queued = relay.load()
    backends = []
    for backend in upstream.backends:
        buckets, sum_s = stats.latency[backend.index].snapshot()
        backends.append(BackendView(
            backend.host, upstream.pool.is_healthy(backend.index), len(backend.inflight),
            stats.marked_down[backend.index], buckets, sum_s))
    return ProxyView(
        outcomes=stats.outcomes(), counts=stats.counts(), cap_names=len(relay.caps),
        in_flight=in_flight,
        queued=queued, max_in_flight=config.max_in_flight, max_queued=config.max_queued,
        max_names=config.max_names, backends=backends)


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
        *(CounterMetricFamily(field.metric, field.description, value=view.counts[field.name])
          for field in STAT_FIELDS),
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
