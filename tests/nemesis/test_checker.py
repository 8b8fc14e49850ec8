"""The checker finds what it is meant to find: histories made by hand, no processes, no root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.nemesis import render
from tests.nemesis.checker import (
    calls_between,
    duplicates,
    in_window,
    late_calls,
    order_violations,
    percentile,
    stats,
)
from tests.nemesis.records import CallRecord
from tests.nemesis.report import catch_up


def ok(t0: float, t1: float, value: int) -> CallRecord:
    return CallRecord(t0, t1, value)


def failed(t0: float, t1: float, code: str = "UNAVAILABLE") -> CallRecord:
    return CallRecord(t0, t1, None, code)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_stats_count_failures_and_latency_of_every_call() -> None:
    calls = [ok(0.0, 0.1, 1), ok(1.0, 1.2, 2), failed(2.0, 7.0)]
    s = stats(calls)
    assert (s.calls, s.failed, s.succeeded) == (3, 1, 2)
    assert s.errors == {"UNAVAILABLE": 1}
    assert s.max_s == pytest.approx(5.0)
    assert s.p50_s == pytest.approx(0.2)
    assert s.success_ratio == pytest.approx(2 / 3)


def test_windows_are_by_start_time() -> None:
    calls = [ok(0.5, 3.0, 1), ok(1.0, 1.1, 2), ok(2.0, 2.1, 3)]
    assert [c.value for c in in_window(calls, 1.0, 2.0)] == [2]
    assert calls_between({"a": calls, "b": calls}, 0.0, 1.5) == 4


def test_a_number_acknowledged_to_two_clients_is_a_duplicate() -> None:
    histories = {"a": [ok(0, 1, 3), ok(1, 2, 6)], "b": [ok(0, 1, 4), ok(2, 3, 6)]}
    assert duplicates(histories) == {6: ["a", "b"]}
    assert duplicates({"a": [ok(0, 1, 3), failed(1, 2)], "b": [ok(0, 1, 4)]}) == {}


def test_a_server_going_back_in_real_time_is_found_across_clients() -> None:
    # residue 1 of 3 (server 1): 4 then 7 is fine; 10 ended before a call that then got 7 is not.
    good = {"a": [ok(0.0, 0.1, 4), ok(0.2, 0.3, 10)], "b": [ok(0.4, 0.5, 13)]}
    assert order_violations(good, 3) == []
    bad = {"a": [ok(0.0, 0.1, 4), ok(0.2, 0.3, 10)], "b": [ok(0.4, 0.5, 7)]}
    [violation] = order_violations(bad, 3)
    assert violation.server == 1
    assert violation.earlier[1].value == 10 and violation.later == ("b", bad["b"][0])


def test_overlapping_calls_may_come_back_in_any_order() -> None:
    # Both calls were in flight at once: the server may have served either first.
    histories = {"a": [ok(0.0, 0.5, 7)], "b": [ok(0.1, 0.2, 4)]}
    assert order_violations(histories, 3) == []


def test_numbers_of_other_servers_do_not_constrain_each_other() -> None:
    histories = {"a": [ok(0.0, 0.1, 300), ok(0.2, 0.3, 5)]}  # residue 0 then residue 2
    assert order_violations(histories, 3) == []


def test_a_call_that_outlives_its_deadline_is_reported() -> None:
    assert late_calls({"a": [ok(0, 1, 1), failed(1, 7.5)]}, 6.0) == [("a", 6.5)]


def test_catch_up_counts_the_lagging_servers_requests_until_within_drift() -> None:
    # Servers s2 and s3 ran ahead to 600 while s1 (residue 1) stayed at 100.
    ahead = [ok(t / 10, t / 10 + 0.01, v) for t, v in enumerate(range(300, 601, 3))]
    s1 = [ok(0.0, 0.01, 100), ok(20.0, 20.01, 103), ok(20.1, 20.11, 106), ok(20.2, 20.21, 550)]
    cu = catch_up({"ahead": ahead, "s1": s1}, "s1", since=19.0, drift=100)
    assert cu is not None
    assert cu.lag_at_heal == 600 - 100
    assert cu.requests == 3  # 103 and 106 were still far behind; 550 is within drift of 600
    never = catch_up({"ahead": ahead, "s1": s1[:3]}, "s1", since=19.0, drift=100)
    assert never is not None and never.requests is None


def test_rendering_fails_loudly_when_a_template_changes_shape() -> None:
    with pytest.raises(ValueError, match="no longer contains"):
        render.substitute("command = /usr/bin/other", render.INSTALL_PATH, "/x")


def test_rendered_templates_keep_the_programs_and_change_only_the_values() -> None:
    host = render.render_host(Path("/venv"), Path("/data/s1"), "root", Path("/tls/s1"))
    commands = "\n".join(line for line in host.splitlines() if not line.lstrip().startswith(";"))
    assert "/opt/seqgen" not in commands and "/var/lib/seqgen" not in commands
    assert "/etc/seqgen" not in commands
    assert "--admin https://0.0.0.0:6411" in host and "--tls-client-ca /tls/s1/ca.crt" in host
    assert "command = /venv/bin/seqgen-server" in host and "--data /data/s1" in host
    assert "user = root" in host and "%(ENV_SEQGEN_INSTANCE)s" in host
    proxy = render.render_proxy(Path("/venv"), "root", ["10.231.0.11", "10.231.0.12", "10.231.0.13"])
    assert "--host tcp://10.231.0.13:6410" in proxy and ".internal" not in proxy
    assert "--bind tcp://0.0.0.0:6410" in proxy
