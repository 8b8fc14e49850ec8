"""Per-episode results: the windows before, during and after each fault, and the catch-up."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

from tests.nemesis.checker import Stats, stats
from tests.nemesis.cluster import INSTANCES, SERVER_HOSTS
from tests.nemesis.records import CallRecord
from tests.nemesis.scenario import Episode


@dataclass(frozen=True)
class CatchUp:
    server: str
    lag_at_heal: int
    """How far its highest number was below the others' highest when the fault healed."""
    first_behind: int
    """How far (in numbers) its first number after healing was below the others' highest."""
    requests: int | None
    """Its own acknowledged requests after healing until one came within drift; None: never."""


@dataclass(frozen=True)
class Row:
    episode: Episode
    judged: tuple[str, ...]
    """The clients the goals apply to (not those on a host cut off from the network)."""
    before: Stats
    during: Stats
    after: Stats
    per_client: dict[str, tuple[Stats, Stats, Stats]]
    duplicates: int
    """Numbers acknowledged during the fault that were acknowledged twice in the whole run."""
    catch_ups: tuple[CatchUp, ...]
    back_in_use: dict[str, dict[str, float | None]]
    """Per healed server, per client: seconds after healing until its first number from that
    server (None: none until the end of the run)."""


def residue(server: str) -> int:
    """The residue mod INSTANCES of the numbers ``server`` (instance k) issues."""
    return (list(SERVER_HOSTS).index(server) + 1) % INSTANCES


class Timeline:
    """The histories indexed once, so that many windows and catch-ups are cheap to ask for."""

    def __init__(self, histories: Mapping[str, Sequence[CallRecord]]) -> None:
        self.by_start = {label: sorted(calls, key=lambda c: c.t0) for label, calls in histories.items()}
        self._starts = {label: [c.t0 for c in calls] for label, calls in self.by_start.items()}
        acked = [(c, c.value) for calls in histories.values() for c in calls if c.value is not None]
        self._own: dict[int, list[CallRecord]] = {}
        """residue -> its acknowledged calls by end time"""
        self._others: dict[int, tuple[list[float], list[int]]] = {}
        """residue -> (end times, highest number so far) of every other server's calls"""
        for r in range(INSTANCES):
            self._own[r] = sorted((c for c, v in acked if v % INSTANCES == r), key=lambda c: c.t1)
            others = sorted((c.t1, v) for c, v in acked if v % INSTANCES != r)
            self._others[r] = ([t1 for t1, _ in others], list(accumulate((v for _, v in others), max)))

    def window(self, label: str, lo: float, hi: float) -> list[CallRecord]:
        """``label``'s calls that started in [lo, hi)."""
        starts = self._starts[label]
        return self.by_start[label][bisect_left(starts, lo):bisect_left(starts, hi)]

    def _highest_other(self, r: int, before: float) -> int:
        """The highest number another server had issued in a call that ended before ``before``."""
        ends, highest = self._others[r]
        known = bisect_left(ends, before)
        return highest[known - 1] if known else 0

    def catch_up(self, server: str, since: float, drift: int) -> CatchUp | None:
        """After ``since``: how many of ``server``'s own requests came before its numbers were
        again within ``drift`` of the highest number the others had issued when each was sent."""
        r = residue(server)
        own = self._own[r]
        own_before = max((c.value or 0 for c in own if c.t1 < since), default=0)
        lag = self._highest_other(r, since) - own_before
        mine = [c for c in own if c.t0 >= since]
        if not mine:
            return None
        first_behind: int | None = None
        for count, call in enumerate(mine, start=1):
            assert call.value is not None
            behind = self._highest_other(r, call.t0) - call.value
            if first_behind is None:
                first_behind = behind
            if behind <= drift:
                return CatchUp(server, lag, first_behind, count)
        return CatchUp(server, lag, first_behind or 0, None)

    def back_in_use(self, server: str, since: float) -> dict[str, float | None]:
        """Per client: how long after ``since`` it first got a number from ``server``."""
        r = residue(server)
        return {
            label: next((c.t1 - since for c in calls[bisect_left(self._starts[label], since):]
                         if c.value is not None and c.value % INSTANCES == r), None)
            for label, calls in self.by_start.items()
        }


def catch_up(histories: Mapping[str, Sequence[CallRecord]], server: str, since: float,
             drift: int) -> CatchUp | None:
    return Timeline(histories).catch_up(server, since, drift)


def analyse(episodes: Sequence[Episode], histories: Mapping[str, Sequence[CallRecord]],
            host_of: Mapping[str, str], twice: set[int], drift: int) -> list[Row]:
    timeline = Timeline(histories)
    rows = []
    for ep in episodes:
        judged = tuple(label for label in histories if host_of[label] not in ep.nemesis.isolated_clients)
        windows = ((ep.t_start - ep.before_s, ep.t_start), (ep.t_start, ep.t_heal),
                   (ep.t_heal, ep.t_heal + ep.after_s))
        per_client = {
            label: tuple(stats(timeline.window(label, lo, hi)) for lo, hi in windows)
            for label in histories
        }
        merged = [stats(c for label in judged for c in timeline.window(label, lo, hi))
                  for lo, hi in windows]
        during_values = {c.value for label in histories
                         for c in timeline.window(label, ep.t_start, ep.t_heal) if c.value is not None}
        servers = [t for t in ep.nemesis.targets if t in SERVER_HOSTS and ep.nemesis.faulty_servers]
        catch_ups = tuple(cu for s in servers if (cu := timeline.catch_up(s, ep.t_heal, drift)))
        back = {s: timeline.back_in_use(s, ep.t_heal) for s in servers}
        rows.append(Row(ep, judged, merged[0], merged[1], merged[2],
                        per_client, len(during_values & twice), catch_ups, back))  # type: ignore[arg-type]
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.0f}"


def _slowest(per_client: Mapping[str, float | None], until_s: float) -> str:
    """The client that took longest to use a healed server again, and how long."""
    label, seconds = max(per_client.items(), key=lambda kv: math.inf if kv[1] is None else kv[1])
    return f"{f'> {until_s:.1f}' if seconds is None else f'{seconds:.1f}'} ({label})"


def table(rows: Sequence[Row], end: float) -> str:
    """The nemesis table: during each fault, over the clients the goals apply to; ``end`` is
    when the history ends."""
    lines = [
        "| # | fault | hosts | s | calls | failed | p50 ms | p99 ms | max ms | dup "
        "| lag at heal → own requests to catch up | all paths answer after (s) | back in use after (s) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for i, row in enumerate(rows, start=1):
        ep, d = row.episode, row.during
        catch = ", ".join(
            f"{c.server}: {c.lag_at_heal:,} → {c.requests if c.requests is not None else 'never'}"
            for c in row.catch_ups) or "-"
        back = ", ".join(f"{server}: {_slowest(per_client, end - ep.t_heal)}"
                         for server, per_client in row.back_in_use.items())
        lines.append(
            f"| {i} | {ep.nemesis.kind}{' (random)' if ep.phase == 'random' else ''} "
            f"| {'+'.join(ep.nemesis.targets)} | {ep.t_heal - ep.t_start:.1f} | {d.calls:,} "
            f"| {d.failed} | {_ms(d.p50_s)} | {_ms(d.p99_s)} | {_ms(d.max_s)} | {row.duplicates} "
            f"| {catch} | {ep.t_ready - ep.t_heal:.1f} | {back or '-'} |"
        )
    return "\n".join(lines)


def client_table(rows: Sequence[Row]) -> str:
    """Every client, before / during / after each fault: calls, failed, p50/p99/max in ms."""
    lines = ["| # | fault | client | before | during | after |", "|---:|---|---|---|---|---|"]

    def cell(s: Stats) -> str:
        return f"{s.calls} / {s.failed} / {_ms(s.p50_s)} / {_ms(s.p99_s)} / {_ms(s.max_s)}"

    for i, row in enumerate(rows, start=1):
        for label, (before, during, after) in row.per_client.items():
            mark = "" if label in row.judged else " (cut off)"
            lines.append(f"| {i} | {row.episode.label} | {label}{mark} | {cell(before)} "
                         f"| {cell(during)} | {cell(after)} |")
    return "\n".join(lines)
