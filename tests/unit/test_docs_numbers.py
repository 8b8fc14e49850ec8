"""Measured figures live in one place, so two documents cannot quote them differently.

benchmarks/README.md holds every result of the benchmarks (throughput, CPU per
request, ratios to a floor, speed-ups) and how long its runs take. Any other
Markdown file of the project links there; it never restates such a figure.
(Figures of other measurements, such as docs/admin.md's table of the operator's
plane or docs/reliability.md's fault runs, are each quoted in one document only.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.markdown import ROOT

SOURCE = ROOT / "benchmarks" / "README.md"
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "var", "build", "dist", ".pytest_cache"}

RESULT = re.compile(
    r"\d[\d,.]*\s?µs|\d[\d,.]*(?:\u00d7|x faster)"                  # CPU per request, 5.6 times
    r"|\d[\d,.]*\s?(?:numbers|requests|calls)?/s\b"                   # 41,049/s, 9,364 calls/s
    r"|about \d[\d,.]*\s+(?:\w+\s+){0,2}(?:numbers|requests|calls) (?:per|a) second"
    r"|about \d[\d,.]*\s+times the"                                   # about 6 times the ...
    r"|\d\.\d+ of (?:what|libzmq|`zmq\.proxy`|its floor)"             # 0.8 of zmq.proxy
)
"""A benchmark result, as the documents write them."""

RUN_TIME = re.compile(r"\d[\d,.]*\s?(?:s|min|minutes?|seconds?)\b")
BENCHMARK_RUN = re.compile(r"benchmarks\.(?:bench|peers)\b")


def documents() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.md")
                  if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts) and p != SOURCE)


def test_the_patterns_catch_what_the_issue_found() -> None:
    """The restatements issue 29 found would fail here (so an empty match proves something)."""
    caught = ["relays about 45,000 pipelined requests per second without coalescing",
              "(0.8 of what libzmq's own `zmq.proxy` device does",
              "| 18.5 µs/request, 41,049/s |", "64 concurrent awaits get about 6 times the numbers",
              "AsyncClient made 5.6\u00d7 its own"]
    assert all(RESULT.search(text) for text in caught)
    assert RUN_TIME.search("`.venv/bin/python -m benchmarks.bench` (about 5 minutes; `--quick` 30 s")
    settings = ("`--timeout` (default 1 s), every 0.25 s, 10 \u00d7 drift, up to 10 times the drift, "
                "each 40 calls per second")
    assert not RESULT.search(settings)


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_restates_a_benchmark_result(path: Path) -> None:
    problems = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for match in RESULT.finditer(line):
            problems.append(f"line {number}: {match.group(0)!r}")
        if BENCHMARK_RUN.search(line) and (run := RUN_TIME.search(line)):
            problems.append(f"line {number}: how long a benchmark runs, {run.group(0)!r}")
    assert not problems, (
        f"{path.relative_to(ROOT)} quotes measured figures that belong to "
        f"benchmarks/README.md only (link to it instead):\n  " + "\n  ".join(problems))


def test_the_source_has_the_results_the_others_link_to() -> None:
    text = SOURCE.read_text(encoding="utf-8")
    assert "## Results" in text and RESULT.search(text)
    assert RUN_TIME.search(next(line for line in text.splitlines() if "benchmarks.bench --quick" in line))
