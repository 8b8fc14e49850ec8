"""The proxy's counters for --metrics (seqgen_proxy.stats) and their Prometheus families."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from seqgen_common.errors import ErrorCode
from seqgen_common.protocol import encode_error
from seqgen_proxy.metrics import BackendView, ProxyView, RelayCollector, proxy_metric_families
from seqgen_proxy.stats import LATENCY_BUCKETS_S, STAT_FIELDS, Latency, ProxyStats
from tests.unit.test_admin_metrics import Samples
from tests.unit.test_admin_metrics import scrape as scrape_registry


def scrape(collector: Collector) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return scrape_registry(registry)


class Fixed(Collector):
    def __init__(self, view: ProxyView) -> None:
        self.view = view

    def collect(self) -> Iterable[Metric]:
        return proxy_metric_families(self.view)


def test_replies_are_counted_by_outcome_and_numbers() -> None:
    stats = ProxyStats(2)
    stats.replied(b'[null,"7"]')
    stats.replied(b'[null,"1","3","5"]')
    stats.replied(encode_error(ErrorCode.UNAVAILABLE, "overloaded"))
    stats.replied(encode_error(ErrorCode.BAD_NAME, "no"))
    stats.replied(b'["NOT_A_CODE","x"]')
    stats.replied(b"garbage")
    outcomes = stats.outcomes()
    assert stats.numbers == 4
    assert outcomes["OK"] == 2
    assert outcomes["UNAVAILABLE"] == 1
    assert outcomes["BAD_NAME"] == 1
    assert outcomes["OTHER"] == 2  # the label set stays bounded whatever a backend sends
    assert set(outcomes) == {"OK", "OTHER", *ErrorCode}


def test_latency_buckets_are_cumulative_with_a_sum() -> None:
    latency = Latency()
    for seconds in (0.0001, 0.0005, 0.003, 0.003, 100.0):
        latency.observe(seconds)
    buckets, sum_s = latency.snapshot()
    assert len(buckets) == len(LATENCY_BUCKETS_S) + 1
    bound = dict(zip([*LATENCY_BUCKETS_S, float("inf")], buckets, strict=True))
    assert bound[0.0005] == 2  # a bound is inclusive (Prometheus' "le")
    assert bound[0.0025] == 2
    assert bound[0.005] == 4
    assert bound[5.0] == 4
    assert bound[float("inf")] == 5
    assert abs(sum_s - 100.0066) < 1e-9


def view(**changes: object) -> ProxyView:
    latency = Latency()
    latency.observe(0.002)
    buckets, sum_s = latency.snapshot()
    fields: dict[str, object] = dict(
        outcomes={"OK": 5, "UNAVAILABLE": 2},
        counts=dict(numbers=9, shed=1, unavailable=1, retries=3, stale_replies=4, undelivered=0,
                    coalesced=6, coalesced_jobs=2, coalesced_numbers=8, hedges=7, hedge_wins=5,
                    late_answers=6, late_numbers=11, caps_applied=1),
        cap_names=12, in_flight=2, queued=3,
        max_in_flight=1000, max_queued=10_000, max_names=100_000,
        backends=[BackendView("tcp://a:1", True, 2, 0, buckets, sum_s),
                  BackendView("tcp://b:2", False, 0, 3, [0] * len(buckets), 0.0)],
    )
    fields.update(changes)
    return ProxyView(**fields)  # type: ignore[arg-type]


def test_families_name_every_counter_and_each_backend() -> None:
    samples = scrape(Fixed(view()))
    assert samples["seqgen_proxy_requests_total"] == {
        (("outcome", "OK"),): 5, (("outcome", "UNAVAILABLE"),): 2}
    single = {
        "seqgen_proxy_numbers_relayed_total": 9, "seqgen_proxy_shed_total": 1,
        "seqgen_proxy_unavailable_total": 1, "seqgen_proxy_retries_total": 3,
        "seqgen_proxy_stale_replies_total": 4, "seqgen_proxy_replies_undelivered_total": 0,
        "seqgen_proxy_coalesced_requests_total": 6, "seqgen_proxy_coalesced_jobs_total": 2,
        "seqgen_proxy_coalesced_numbers_total": 8, "seqgen_proxy_caps_applied_total": 1,
        "seqgen_proxy_hedges_total": 7, "seqgen_proxy_hedge_wins_total": 5,
        "seqgen_proxy_late_answers_total": 6, "seqgen_proxy_late_numbers_total": 11,
        "seqgen_proxy_cap_names": 12, "seqgen_proxy_cap_names_limit": 100_000,
        "seqgen_proxy_in_flight": 2, "seqgen_proxy_in_flight_limit": 1000,
        "seqgen_proxy_queued": 3, "seqgen_proxy_queued_limit": 10_000,
    }
    for name, value in single.items():
        assert samples[name] == {(): value}, name
    a, b = (("backend", "tcp://a:1"),), (("backend", "tcp://b:2"),)
    assert samples["seqgen_proxy_backend_up"] == {a: 1, b: 0}
    assert samples["seqgen_proxy_backend_in_flight"] == {a: 2, b: 0}
    assert samples["seqgen_proxy_backend_marked_down_total"] == {a: 0, b: 3}
    assert samples["seqgen_proxy_backend_latency_seconds_count"] == {a: 1, b: 0}
    assert samples["seqgen_proxy_backend_latency_seconds_bucket"][
        (("backend", "tcp://a:1"), ("le", "0.0025"))] == 1
    assert samples["seqgen_proxy_backend_latency_seconds_bucket"][
        (("backend", "tcp://a:1"), ("le", "0.001"))] == 0


def test_every_family_is_documented_in_docs_proxy_md() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "proxy.md").read_text()
    for family in proxy_metric_families(view()):
        suffix = "_total" if family.type == "counter" else ("_info" if family.type == "info" else "")
        assert f"`{family.name}{suffix}" in doc, family.name


def test_nothing_is_exported_before_the_relay_exists() -> None:
    assert scrape(RelayCollector()) == {}


SHAPED = {"backends", "ok", "errors", "latency", "marked_down"}
"""ProxyStats fields exported in a shape of their own (by outcome, per backend), not as one
counter each."""


def test_every_field_of_proxy_stats_is_a_declared_counter_or_has_its_own_shape() -> None:
    declared = {field.name for field in STAT_FIELDS}
    assert declared | SHAPED == {field.name for field in dataclasses.fields(ProxyStats)}
    assert not declared & SHAPED
    assert len({field.metric for field in STAT_FIELDS}) == len(STAT_FIELDS)


def test_each_counter_is_exported_and_logged_with_its_own_value() -> None:
    stats = ProxyStats(1)
    for value, field in enumerate(STAT_FIELDS, start=100):
        setattr(stats, field.name, value)
    samples = scrape(Fixed(view(counts=stats.counts())))
    text, totals = stats.stop_summary()
    for value, field in enumerate(STAT_FIELDS, start=100):
        assert samples[f"{field.metric}_total"] == {(): value}, field.name
        if field.stop is not None:
            assert totals[field.name] == value
            assert field.stop % value in text


def test_the_stop_line_reads_as_before() -> None:
    stats = ProxyStats(2)
    stats.retries, stats.unavailable, stats.shed, stats.stale_replies = 1, 2, 3, 4
    stats.undelivered, stats.coalesced, stats.hedges, stats.hedge_wins = 5, 6, 7, 8
    stats.late(3, success=True)
    stats.late(3, success=False)
    text, totals = stats.stop_summary()
    assert text == ("1 retries, 2 UNAVAILABLE, 3 shed (overloaded), 4 stale replies dropped, "
                    "5 replies undelivered, 6 requests coalesced, 7 hedges (8 won, "
                    "2 late answers, 3 numbers skipped)")
    assert totals == {"retries": 1, "unavailable": 2, "shed": 3, "stale_replies": 4,
                      "undelivered": 5, "coalesced": 6, "hedges": 7, "hedge_wins": 8,
                      "late_answers": 2, "late_numbers": 3}
