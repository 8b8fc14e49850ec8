"""The nemesis suite's options, and the run that every check of the suite reads.

    pytest tests/nemesis                      # the bounded run (part of the default suite)
    pytest tests/nemesis --nemesis-soak       # the long run
    pytest tests/nemesis --nemesis-seed 42 --nemesis-report /tmp/nemesis.md

The options are registered here, so they are known when tests/nemesis is named
on the command line (pytest reads this file only then, or when it collects it).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nemesis import netns
from tests.nemesis.checker import duplicates, late_calls, order_violations
from tests.nemesis.cluster import DEADLINE_S, DRIFT, INSTANCES, Cluster
from tests.nemesis.outcome import NemesisRun, skip_reason
from tests.nemesis.report import analyse, client_table, table
from tests.nemesis.scenario import BOUNDED, SOAK, run_schedule

BOUNDED_TIMEOUT_S = 400
SOAK_TIMEOUT_S = 4 * 3600


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nemesis", "nemesis suite (tests/nemesis)")
    group.addoption("--nemesis-soak", action="store_true", default=False,
                    help="run the long nemesis schedule instead of the bounded one")
    group.addoption("--nemesis-seed", type=int, default=None,
                    help="seed of the random fault sequence (default: a new one, printed)")
    group.addoption("--nemesis-report", default=None, metavar="PATH",
                    help="write the nemesis tables (markdown) to PATH")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    timeout_s = SOAK_TIMEOUT_S if config.getoption("--nemesis-soak") else BOUNDED_TIMEOUT_S
    for item in items:
        if here in Path(str(item.path)).parents:
            # The first check also runs the shared schedule in its set-up.
            item.add_marker(pytest.mark.timeout(timeout_s))


@pytest.fixture(scope="module")
def nemesis_run(request: pytest.FixtureRequest) -> Iterator[NemesisRun]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    config = request.config
    schedule = SOAK if config.getoption("--nemesis-soak") else BOUNDED
    seed_option = config.getoption("--nemesis-seed")
    seed = seed_option if seed_option is not None else random.SystemRandom().randrange(10**6)
    netns.remove_leftovers()
    tag = f"{netns.PREFIX}{os.getpid()}"
    root = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir="/tmp"))
    cluster = Cluster(root, tag, schedule.rate_per_worker_s, schedule.max_duration_s)
    try:
        try:
            cluster.start()
        except subprocess.CalledProcessError as exc:
            if "Operation not permitted" in (exc.stderr or ""):
                pytest.skip(f"network namespaces are not permitted here: {exc.stderr.strip()}")
            raise
        episodes = run_schedule(cluster, schedule, seed)
        exits = cluster.stop_workers()
        histories = cluster.histories()
        host_of = {label: w.spec.host for label, w in cluster.workers.items()}
        twice = duplicates(histories)
        rows = analyse(episodes, histories, host_of, set(twice), DRIFT)
        end = max((c.t1 for calls in histories.values() for c in calls), default=0.0)
        tables = (f"seed {seed}\n\n{table(rows, end)}\n\n"
                  f"per client: calls / failed / p50 / p99 / max (ms)\n\n{client_table(rows)}\n")
        print(tables)
        report_path = config.getoption("--nemesis-report")
        if report_path:
            Path(report_path).write_text(tables)
        yield NemesisRun(
            seed=seed, schedule=schedule, episodes=episodes, histories=histories, host_of=host_of,
            twice=twice, violations=order_violations(histories, INSTANCES),
            late=late_calls(histories, DEADLINE_S + 1.0), exits=exits, rows=rows, tables=tables,
        )
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)
