"""Running the nemeses against the cluster: each one alone, then a random sequence.

Each episode: a quiet ``before`` window, the fault for ``during`` seconds, the
heal; then the observer measures how the servers' values for the busy name
come back within ``drift`` of each other, and every path must answer again
before the next episode (real requests). The waits here are the measurement
windows of the schedule, not readiness checks.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

from tests.nemesis.cluster import Cluster
from tests.nemesis.nemeses import Nemesis, alone, random_one

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    before_s: float
    during_s: float
    after_s: float
    random_episodes: int
    random_during_s: tuple[float, float]
    random_gap_s: tuple[float, float]
    rate_per_worker_s: float
    max_duration_s: float
    """A bound on the whole run: client processes stop by themselves after it."""


BOUNDED = Schedule(before_s=2.0, during_s=5.0, after_s=3.0, random_episodes=6,
                   random_during_s=(2.0, 5.0), random_gap_s=(1.0, 3.0),
                   rate_per_worker_s=40.0, max_duration_s=330.0)
SOAK = Schedule(before_s=3.0, during_s=15.0, after_s=5.0, random_episodes=60,
                random_during_s=(2.0, 15.0), random_gap_s=(1.0, 5.0),
                rate_per_worker_s=40.0, max_duration_s=3300.0)


@dataclass(frozen=True)
class Episode:
    phase: str
    """"alone" or "random"."""
    nemesis: Nemesis
    t_start: float
    t_heal: float
    before_s: float
    after_s: float
    converge: dict[str, object]
    t_ready: float
    """When every server, proxy and admin answered again after healing."""

    @property
    def label(self) -> str:
        return self.nemesis.label


def run_episode(cluster: Cluster, nemesis: Nemesis, phase: str, *, before_s: float,
                during_s: float, after_s: float) -> Episode:
    time.sleep(before_s)  # the "before" window: the cluster is healthy and the clients run
    t_start = time.monotonic()
    log.info("nemesis %s: start", nemesis.label)
    try:
        nemesis.start(cluster)
        time.sleep(during_s)  # the fault lasts; the clients keep calling
    finally:
        nemesis.heal(cluster)
    t_heal = time.monotonic()
    log.info("nemesis %s: healed after %.1f s", nemesis.label, t_heal - t_start)
    converge = cluster.converge()
    cluster.wait_ready(f"after {nemesis.label}")
    t_ready = time.monotonic()
    rest = t_heal + after_s - t_ready
    if rest > 0:
        time.sleep(rest)  # the "after" window is complete before the next episode begins
    return Episode(phase, nemesis, t_start, t_heal, before_s, after_s, converge, t_ready)


def run_schedule(cluster: Cluster, schedule: Schedule, seed: int) -> list[Episode]:
    rng = random.Random(seed)
    episodes = [
        run_episode(cluster, nemesis, "alone", before_s=schedule.before_s,
                    during_s=schedule.during_s, after_s=schedule.after_s)
        for nemesis in alone(rng)
    ]
    for _ in range(schedule.random_episodes):
        gap = rng.uniform(*schedule.random_gap_s)
        episodes.append(run_episode(cluster, random_one(rng), "random", before_s=gap / 2,
                                    during_s=rng.uniform(*schedule.random_during_s),
                                    after_s=gap / 2))
    return episodes
