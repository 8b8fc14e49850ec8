"""The hedge delay and budget (seqgen_common.hedging): pure logic, checked against the
vectors the Node.js client's test reads too (tests/unit/hedging_vectors.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from seqgen_common import hedging
from seqgen_common.hedging import Hedging

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "hedging_vectors.json").read_text())


def test_the_constants_are_the_vectors() -> None:
    for name, value in VECTORS["constants"].items():
        assert getattr(hedging, name) == value, name


@pytest.mark.parametrize("case", VECTORS["delay"], ids=lambda case: case["name"])
def test_delay_vectors(case: dict[str, Any]) -> None:
    policy = Hedging()
    checkpoints = {point["after"]: point for point in case["expect"]}
    for seen, latency_s in enumerate(case["latencies_s"], 1):
        policy.observe(latency_s)
        if seen in checkpoints:
            assert policy.delay_s == checkpoints[seen]["delay_s"], seen
            assert policy.p99_s() == checkpoints[seen]["p99_s"], seen


@pytest.mark.parametrize("case", VECTORS["budget"], ids=lambda case: case["name"])
def test_budget_vectors(case: dict[str, Any]) -> None:
    policy = Hedging()
    allowed = []
    for op in case["ops"]:
        if op == "s":
            policy.sent()
        else:
            allowed.append(policy.allow())
    assert allowed == case["allowed"]
    assert policy.credit == case["credit"]


def test_delay_is_twice_the_p99_clamped() -> None:
    """Independent of the vectors: the nearest-rank p99 of the window, times two, clamped."""
    policy = Hedging()
    assert policy.delay_s == hedging.CEILING_S  # nothing known yet
    latencies = [0.001 + 0.0001 * (i % 97) for i in range(1000)]
    for i, latency_s in enumerate(latencies, 1):
        policy.observe(latency_s)
        if i >= hedging.MIN_SAMPLES and (i - hedging.MIN_SAMPLES) % hedging.RECOMPUTE_EVERY == 0:
            window = sorted(latencies[max(0, i - hedging.WINDOW):i])
            p99 = window[math.ceil(0.99 * len(window)) - 1]
            assert policy.p99_s() == p99
            assert policy.delay_s == min(max(2 * p99, hedging.FLOOR_S), hedging.CEILING_S)
    assert hedging.FLOOR_S <= policy.delay_s <= hedging.CEILING_S


def test_budget_caps_hedges_at_five_percent_plus_the_burst() -> None:
    policy = Hedging()
    hedges = 0
    for _ in range(10_000):  # every request would like a hedge
        policy.sent()
        hedges += policy.allow()
    share = 10_000 // hedging.REQUESTS_PER_HEDGE
    assert share <= hedges <= hedging.BURST + share
