"""benchmarks.lostdisk as a smoke run (issue 22): one short lost-disk cycle of three
peered servers under load, every acknowledgement checked. It asserts the output's shape
and the recovery rule's claim: a name repeated after a recovery is one that no surviving
host saw. A control run that unfences instead of recovering shows that the check finds
repeats, of names the survivors saw. The measured sizes go to benchmarks/README.md from
the full run, not from here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run_quick(tmp_path: Path, *extra: str) -> tuple[str, dict[str, Any]]:
    out = tmp_path / "lostdisk.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.lostdisk", "--quick", "--json", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(out.read_text())
    assert isinstance(summary, dict)
    return done.stdout, summary


def test_after_a_recovery_only_names_no_survivor_saw_repeat(tmp_path: Path) -> None:
    stdout, summary = run_quick(tmp_path)
    assert "| cycle | lost |" in stdout and "total:" in stdout
    assert summary["instances"] == 3 and summary["witness_interval_s"] == 1
    assert summary["cycles"] == 1 and len(summary["per_cycle"]) == 1
    (cycle,) = summary["per_cycle"]
    assert cycle["lost"] == 1 and cycle["acks_per_s"] > 0, cycle
    assert cycle["raised"] > 0, cycle  # the peers' records and values were used
    assert cycle["names_checked"] > 100, cycle  # the lost server's names, asked again
    assert summary["acknowledged"] > 1000
    for repeated in cycle["repeated"]:
        assert repeated["numbers"] >= 1
        assert repeated["first_used_before_loss_s"] >= 0
    # The rule's claim: what a surviving host held or witnessed is floored above.
    assert [r for r in cycle["repeated"] if r["seen_by_survivor"]] == []
    assert summary["repeats_of_hot_names"] == 0
    assert len(cycle["repeated"]) <= cycle["unseen"], cycle


def test_the_check_finds_repeats_when_the_server_is_unfenced_instead(tmp_path: Path) -> None:
    _, summary = run_quick(tmp_path, "--unfence")
    assert summary["control_unfence"] is True
    (cycle,) = summary["per_cycle"]
    assert cycle["raised"] == 0
    assert summary["names_repeated"] > 100, summary  # the empty store starts every name again
    assert summary["repeated_seen_by_survivor"] > 100, summary
