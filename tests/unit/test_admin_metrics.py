"""Prometheus families from a status reply, the scrape-time collector, the HTTP metrics."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from seqgen_admin.follow import FollowCounts
from seqgen_admin.metrics import (
    ClusterCollector,
    HttpMetrics,
    ServerCollector,
    WitnessCollector,
    server_metric_families,
)
from seqgen_admin.plane import ClusterState
from seqgen_admin.witness import Seen, WitnessStore
from seqgen_common.control import Status
from tests.unit.test_admin_models import status_reply

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]
"""Sample name -> its labels (sorted pairs) -> value."""


def samples_of(exposition: str) -> Samples:
    """The samples of a Prometheus text exposition."""
    samples: Samples = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def scrape(registry: CollectorRegistry) -> Samples:
    return samples_of(generate_latest(registry).decode())


def registry_with(fetch: object) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    assert callable(fetch)
    registry.register(ServerCollector(fetch))
    return registry


def test_no_answer_exports_only_server_up_0() -> None:
    families = server_metric_families(None)
    assert [(f.name, f.samples[0].value) for f in families] == [("seqgen_server_up", 0)]


def test_the_servers_counters_as_seqgen_metrics() -> None:
    samples = scrape(registry_with(status_reply))
    assert samples["seqgen_server_up"][()] == 1
    assert samples["seqgen_server_info"] == {
        (("instance", "2"), ("instances", "3"), ("version", "1.2.3")): 1}
    assert samples["seqgen_requests_total"] == {
        (("outcome", "BAD_NAME"),): 2, (("outcome", "OK"),): 10}
    expected = {
        "seqgen_uptime_seconds": 12.5, "seqgen_drift": 100, "seqgen_reserve": 1000,
        "seqgen_sequences": 7, "seqgen_clean_start": 0, "seqgen_store_ok": 1,
        "seqgen_numbers_issued_total": 40, "seqgen_catchups_total": 1,
        "seqgen_catchup_skipped_numbers_total": 9, "seqgen_skipped_at_start_numbers": 3000,
        "seqgen_reservations_written_total": 5, "seqgen_store_write_seconds_count": 4,
        "seqgen_store_write_seconds_sum": 0.01, "seqgen_store_write_failures_total": 1,
        "seqgen_store_write_seconds_max": 0.004, "seqgen_disk_waits_total": 3,
        "seqgen_control_requests_total": 8,
    }
    for name, value in expected.items():
        assert samples[name] == {(): value}, name


def test_the_collector_asks_at_every_scrape() -> None:
    calls: list[int] = []

    def fetch() -> Status | None:
        calls.append(1)
        return status_reply() if len(calls) % 2 else None

    registry = registry_with(fetch)
    assert calls == []  # registering does not ask the server
    assert scrape(registry)["seqgen_server_up"][()] == 1
    second = scrape(registry)
    assert second["seqgen_server_up"][()] == 0
    assert "seqgen_requests_total" not in second
    assert len(calls) == 2


def test_a_failing_fetch_is_server_down_not_a_failed_scrape() -> None:
    def fetch() -> Status | None:
        raise RuntimeError("boom")

    assert scrape(registry_with(fetch))["seqgen_server_up"][()] == 0


def test_http_metrics_by_method_route_and_status() -> None:
    registry = CollectorRegistry(auto_describe=False)
    http = HttpMetrics(registry)
    http.observe("GET", "/status", 200, 0.003)
    http.observe("GET", "/status", 200, 0.2)
    http.observe("BREW", "<unmatched>", 405, 0.001)
    samples = scrape(registry)
    requests = samples["seqgen_admin_http_requests_total"]
    assert requests[(("method", "GET"), ("route", "/status"), ("status", "200"))] == 2
    assert requests[(("method", "OTHER"), ("route", "<unmatched>"), ("status", "405"))] == 1
    count = samples["seqgen_admin_http_request_duration_seconds_count"]
    assert count[(("method", "GET"), ("route", "/status"))] == 2
    buckets = samples["seqgen_admin_http_request_duration_seconds_bucket"]
    assert buckets[(("le", "0.005"), ("method", "GET"), ("route", "/status"))] == 1


def test_the_witness_record_freshness_per_instance(tmp_path: Path) -> None:
    store = WitnessStore.open(tmp_path / "w.db")
    registry = CollectorRegistry(auto_describe=False)
    witness: list[WitnessStore | None] = [None]
    registry.register(WitnessCollector(lambda: witness[0]))
    assert scrape(registry) == {}  # no --peer: no record, nothing to say
    witness[0] = store
    store.record(2, [Seen("a", 5, True)], 1000.0, confirmed_at=999.0)
    store.record(3, [Seen("a", 6, True)], 1000.0, confirmed_at=998.0)
    store.lost(3, 1001.0)
    store.record(4, [Seen("a", 7, True)], 1000.0)  # never confirmed
    samples = scrape(registry)
    assert samples["seqgen_witness_confirmed_timestamp_seconds"] == {
        (("witnessed_instance", "2"),): 999.0, (("witnessed_instance", "3"),): 998.0}
    assert samples["seqgen_witness_lost"] == {
        (("witnessed_instance", "2"),): 0, (("witnessed_instance", "3"),): 1}
    store.close()
def test_following_the_peers_is_exported_with_the_cluster_view() -> None:
    counts = FollowCounts(rounds=5, checked=7, raised=3, deferred=2, failures=1)
    states = {"on": ClusterState(None, False, [], [], counts),
              "off": ClusterState(None, False, [], [], None)}
    for which, state in states.items():
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ClusterCollector(lambda state=state: state))  # type: ignore[misc]
        samples = scrape(registry)
        if which == "off":
            assert samples["seqgen_follow_enabled"][()] == 0
            assert "seqgen_follow_raised_total" not in samples
            continue
        assert samples["seqgen_follow_enabled"][()] == 1
        assert {name: samples[f"seqgen_follow_{name}_total"][()] for name in
                ("rounds", "checked", "raised", "deferred", "failures")} == {
            "rounds": 5, "checked": 7, "raised": 3, "deferred": 2, "failures": 1}
