"""Backend selection and health (pure, times passed in)."""

from __future__ import annotations

import pytest

from seqgen_proxy.backends import BackendPool


def test_round_robin_over_healthy_backends() -> None:
    pool = BackendPool(3, probe_interval_s=0.5)
    assert [pool.choose(0) for _ in range(6)] == [0, 1, 2, 0, 1, 2]


def test_a_retry_goes_to_the_next_backend_and_each_is_tried_once() -> None:
    pool = BackendPool(3, probe_interval_s=0.5)
    first = pool.choose(0)
    assert first == 0
    tried = 1 << first
    second = pool.choose(tried)
    assert second == 1
    tried |= 1 << 1
    assert pool.choose(tried) == 2
    tried |= 1 << 2
    assert tried == 0b111
    assert pool.choose(tried) is None


def test_down_backends_are_skipped_while_others_are_healthy() -> None:
    pool = BackendPool(3, probe_interval_s=0.5)
    assert pool.failed(1, now=10.0) is True
    assert pool.failed(1, now=10.1) is False  # already down: reported once
    assert pool.down == 1
    assert [pool.choose(0) for _ in range(4)] == [0, 2, 0, 2]


def test_down_backends_are_the_last_resort() -> None:
    pool = BackendPool(2, probe_interval_s=0.5)
    pool.failed(0, now=1.0)
    assert pool.choose(0) == 1
    assert pool.choose(1 << 1) == 0  # the healthy one was tried: try the down one too
    assert pool.choose(0b11) is None
    pool.failed(1, now=1.0)
    assert pool.choose(0) in (0, 1)


def test_probes_are_scheduled_by_the_injected_time() -> None:
    pool = BackendPool(2, probe_interval_s=0.5)
    assert pool.probes_due(100.0) == []
    assert pool.next_probe_at() is None
    pool.failed(1, now=10.0)
    assert pool.next_probe_at() == pytest.approx(10.5)
    assert pool.probes_due(10.4) == []
    assert pool.probes_due(10.5) == [1]
    pool.probe_sent(1)
    assert pool.probes_due(11.0) == []  # one probe at a time
    assert pool.next_probe_at() is None
    pool.probe_failed(1, now=11.0)
    assert pool.probes_due(11.4) == []
    assert pool.probes_due(11.5) == [1]
    pool.probe_sent(1)
    assert pool.answered(1) is True  # back up
    assert pool.answered(1) is False
    assert pool.down == 0
    assert pool.is_healthy(1)
    assert pool.probes_due(100.0) == []


def test_needs_a_backend() -> None:
    with pytest.raises(ValueError):
        BackendPool(0, probe_interval_s=0.5)
