"""benchmarks.closeness as a smoke run (issue 24): a 3 s outage of one server, stateless
callers straight to two servers and through proxies. It asserts that the scenario runs
and that the returned server comes close at all; the measured times go to the README
from the full run (30 s), not from here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_closeness_scenario_runs(tmp_path: Path) -> None:
    out = tmp_path / "closeness.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.closeness", "--quick", "--only", "direct-2,proxies-2",
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| configuration |" in done.stdout
    outcomes = {o["config"]: o for o in json.loads(out.read_text())}
    assert set(outcomes) == {"direct-2", "proxies-2"}
    for o in outcomes.values():
        assert o["calls"] > 100 and o["process_calls"] > 0, o
        assert o["returned_calls"] > 0, o  # the stopped server answered again
        assert o["time_to_close_s"] is not None, o  # ... and came within drift
    # Through proxies every caller carries the highest relayed number: no step back beyond
    # drift x instances, whatever the timing.
    proxied = outcomes["proxies-2"]
    assert proxied["largest_step_back"] <= proxied["step_back_target"], proxied
