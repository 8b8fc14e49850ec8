"""Per-episode results: the windows before, during and after each fault, and the catch-up."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

from tests.nemesis.checker import Stats, in_window, stats
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


def catch_up(histories: Mapping[str, Sequence[CallRecord]], server: str, since: float,
             drift: int) -> CatchUp | None:
    """After ``since``: how many of ``server``'s own requests came before its numbers were again
    within ``drift`` of the highest number the other servers had issued when each was sent."""
    own = residue(server)
    others = sorted((c.t1, c.value) for calls in histories.values() for c in calls
                    if c.value is not None and c.value % INSTANCES != own)
    ends = [t1 for t1, _ in others]
    highest_by_end = list(accumulate((v for _, v in others), max))
    mine = sorted((c for calls in histories.values() for c in calls
                   if c.value is not None and c.value % INSTANCES == own and c.t0 >= since),
                  key=lambda c: c.t1)
    if not mine:
        return None
    own_before = max((c.value for calls in histories.values() for c in calls
                      if c.value is not None and c.value % INSTANCES == own and c.t1 < since), default=0)
    known = bisect_left(ends, since)
    lag = (highest_by_end[known - 1] if known else 0) - own_before
    first_behind: int | None = None
    for count, call in enumerate(mine, start=1):
        known = bisect_left(ends, call.t0)  # other servers' calls that ended before this began
        highest = highest_by_end[known - 1] if known else 0
        assert call.value is not None
        behind = highest - call.value
        if first_behind is None:
            first_behind = behind
        if behind <= drift:
            return CatchUp(server, lag, first_behind, count)
    return CatchUp(server, lag, first_behind or 0, None)


def back_in_use(histories: Mapping[str, Sequence[CallRecord]], server: str,
                since: float) -> dict[str, float | None]:
    """Per client: how long after ``since`` it first got a number from ``server``."""
    own = residue(server)
    return {
        label: min((c.t1 - since for c in calls
                    if c.value is not None and c.value % INSTANCES == own and c.t0 >= since),
                   default=None)
        for label, calls in histories.items()
    }


def analyse(episodes: Sequence[Episode], histories: Mapping[str, Sequence[CallRecord]],
            host_of: Mapping[str, str], twice: set[int], drift: int) -> list[Row]:
    rows = []
    for ep in episodes:
        judged = tuple(label for label in histories if host_of[label] not in ep.nemesis.isolated_clients)
        windows = ((ep.t_start - ep.before_s, ep.t_start), (ep.t_start, ep.t_heal),
                   (ep.t_heal, ep.t_heal + ep.after_s))
        per_client = {
            label: tuple(stats(in_window(histories[label], lo, hi)) for lo, hi in windows)
            for label in histories
        }
        merged = [stats(c for label in judged for c in in_window(histories[label], lo, hi))
                  for lo, hi in windows]
        during_values = {c.value for calls in histories.values()
                         for c in in_window(calls, ep.t_start, ep.t_heal) if c.value is not None}
        servers = [t for t in ep.nemesis.targets if t in SERVER_HOSTS and ep.nemesis.faulty_servers]
        catch_ups = tuple(cu for s in servers if (cu := catch_up(histories, s, ep.t_heal, drift)))
        back = {s: back_in_use(histories, s, ep.t_heal) for s in servers}
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
        "| lag at heal → own requests to catch up | back in use after (s) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
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
            f"| {catch} | {back or '-'} |"
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
