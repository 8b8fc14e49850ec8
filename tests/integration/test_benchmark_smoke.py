"""The benchmark as a CI guard: every scenario runs, none is grossly off its floor.

One short run of ``benchmarks.bench --quick`` (1 round of 0.4 s per side) is
shared by the tests below. They check CPU time per request against the floor
measured in the same run, never a throughput or a time: a loaded CI machine
slows seqgen and its floor alike, and CPU per request does not count the time a
process waits for a core. A scenario over its bound is measured once more, a
little longer (3 rounds of 1 s, medians), before it fails, so one unlucky
0.4 s window cannot fail the suite; a real regression fails both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

SCENARIOS = {
    "server-pipelined", "server-lockstep", "batch-1000", "client-next", "prefetch", "async-64",
    "threads-16", "threads-handoff", "proxy", "proxy-coalesce", "latency", "hedge", "hedge-load",
    "burst-direct", "burst-proxy",
}
WITH_FLOOR = SCENARIOS - {"proxy-coalesce", "latency", "burst-direct", "burst-proxy"}
"""Scenarios whose floor always runs (the coalescing ones need options that may not exist yet)."""

GROSS_CPU_RATIO = 2.0
"""A scenario fails when its CPU per request is more than this times its floor's."""
GROSS_CPU_RATIO_PROXY = 5.0
"""The proxy's own target is already 2.5x libzmq's zmq.proxy, so its guard is 2x that target."""


def bench(tmp_path: Path, name: str, *args: str) -> dict[str, Any]:
    out = tmp_path / f"{name}.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", *args, "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| scenario |" in done.stdout
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return bench(tmp_path_factory.mktemp("bench"), "quick", "--quick")


def rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in doc["rows"]}


def cpu_bound(name: str) -> float:
    return GROSS_CPU_RATIO_PROXY if name == "proxy" else GROSS_CPU_RATIO


@pytest.mark.timeout(300)
def test_every_scenario_runs_and_measures_cpu(quick: dict[str, Any]) -> None:
    by_name = rows(quick)
    assert set(by_name) == SCENARIOS
    for name, row in by_name.items():
        assert row["seqgen_samples"], name
        for sample in row["seqgen_samples"]:
            assert sample["rate"] > 0 and sample["answered"] > 0, (name, sample)
            assert sample["cpu_us"] is not None and sample["cpu_us"] > 0, (name, sample)
        if name in WITH_FLOOR:
            assert row["floor_samples"] and row["cpu_us"]["ratio"] > 0, (name, row)
    assert quick["extra"]["scale_names"] == 2000
    assert 0 < quick["extra"]["scale_rss_mb"] < 300


@pytest.mark.timeout(300)
def test_no_scenario_spends_grossly_more_cpu_per_request_than_its_floor(
    quick: dict[str, Any], tmp_path: Path
) -> None:
    over = [name for name, row in rows(quick).items()
            if row["cpu_us"]["ratio"] is not None and row["cpu_us"]["ratio"] > cpu_bound(name)]
    if not over:
        return
    again = rows(bench(tmp_path, "again", "--only", ",".join(over), "--rounds", "3", "--seconds", "1"))
    still = {name: again[name]["cpu_us"] for name in over if again[name]["cpu_us"]["ratio"] > cpu_bound(name)}
    assert not still, f"CPU per request grossly above the floor's (µs, medians): {still}"


@pytest.mark.timeout(300)
def test_every_burst_request_is_answered(quick: dict[str, Any]) -> None:
    by_name = rows(quick)
    for name in ("burst-direct", "burst-proxy"):
        for sample in by_name[name]["seqgen_samples"]:
            assert sample["extra"]["sent"] == 20_000, (name, sample)
            assert sample["unanswered"] == 0, f"{name}: {sample['unanswered']} of 20,000 requests unanswered"
            assert sample["extra"]["duplicates"] == 0, (name, sample)
