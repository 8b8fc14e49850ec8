"""The benchmark runs end to end (a short smoke run; its numbers mean nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_quick_run_covers_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--quick", "--prefetch", "10", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(out.read_text())
    scenarios = [row["scenario"] for row in doc["rows"]]
    assert len(scenarios) == 6, scenarios
    for row in doc["rows"]:
        assert row["seqgen"] and row["floor"], row
        assert all(rate > 0 for rate in row["seqgen"] + row["floor"])
        assert row["ratio"] > 0
    assert doc["extra"]["scale_names"] == 2000
    assert 0 < doc["extra"]["scale_rss_mb"] < 300
    assert "ratio" in done.stdout
