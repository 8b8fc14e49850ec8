"""What one nemesis run produced, and whether this machine can make one."""

from __future__ import annotations

import os
from dataclasses import dataclass

from tests.nemesis import netns
from tests.nemesis.checker import OrderViolation
from tests.nemesis.records import CallRecord
from tests.nemesis.report import Row
from tests.nemesis.scenario import Episode, Schedule


def skip_reason() -> str | None:
    """Why the suite cannot run here, or None."""
    if os.geteuid() != 0:
        return "the nemesis suite needs root (network namespaces, nftables); CI runs as root"
    missing = netns.missing_tools()
    if missing:
        return (f"the nemesis suite needs {' and '.join(missing)} (packages iproute2, nftables); "
                "scripts/test installs them when run as root")
    return None


@dataclass
class NemesisRun:
    seed: int
    schedule: Schedule
    episodes: list[Episode]
    histories: dict[str, list[CallRecord]]
    host_of: dict[str, str]
    twice: dict[int, list[str]]
    violations: list[OrderViolation]
    late: list[tuple[str, float]]
    exits: dict[str, int | None]
    rows: list[Row]
    tables: str

    def context(self) -> str:
        return f"(seed {self.seed}; rerun with --nemesis-seed {self.seed})\n{self.tables}"
