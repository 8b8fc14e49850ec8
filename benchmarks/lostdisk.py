"""Lost disks under load (issue 22): what the recovery margin leaves uncovered, measured.

    .venv/bin/python -m benchmarks.lostdisk [--cycles 6] [--cycle 10] [--rate 4000] [--json FILE]
    .venv/bin/python -m benchmarks.lostdisk --quick        # smoke run: 1 short cycle

Three servers, each with its admin, the admins peered (``--witness-interval 1``), and the
load of ``benchmarks.lostload`` on all three: about ``--rate`` numbers a second over
1,000 names, 10 of them hot, 10 brand-new names a second, from long-lived and one-shot
clients, every acknowledgement checked. Then, ``--cycles`` times, one server after the
other (instance 1, 2, 3, 1, ...) loses its disk while serving: its store is destroyed,
the process killed, restarted empty and ``--fenced``, and ``POST /recover`` of its admin
raises its floors from its peers' records; it serves again and the load goes on.

After each recovery every name the lost server ever acknowledged is asked for again from
it, with no history (a one-shot client), as many numbers as it had issued of that name: a
number acknowledged before is a repeat, as is any the load itself gets again. Per cycle:
numbers acknowledged per second, names and numbers repeated, and for each repeated name
how long before the loss it was first used and whether a surviving host had seen it
(its server held it, or its witness record of the lost server had it) when the recovery
began. The rule (docs/operations.md, "The recovery margin") claims that only names that
no surviving host saw can repeat.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import httpx
import msgspec

from benchmarks.closeness import free_url
from benchmarks.daemons import Daemon, Daemons, daemons
from benchmarks.lostload import Acks, Load, ask

__all__ = ["Cycle", "RepeatedName", "main"]

INSTANCES: Final = 3
TOKEN: Final = "lostdisk"
INTERVAL_S: Final = 1.0
NAMES: Final = 1000
HOT: Final = 10
NEW_PER_S: Final = 10.0
PAGE: Final = 1000
MAX_COUNT: Final = 1000


@dataclass(frozen=True, slots=True)
class RepeatedName:
    name: str
    numbers: int
    """Numbers of the name acknowledged twice."""
    first_used_before_loss_s: float
    """From the name's first acknowledgement (any server) to the loss."""
    seen_by_survivor: bool
    """A surviving host held the name or had witnessed the lost server issue it, when the
    recovery began."""


@dataclass(frozen=True, slots=True)
class Cycle:
    lost: int
    """The instance that lost its disk."""
    load_s: float
    acks_per_s: float
    requests_per_s: float
    failed_calls: int
    recover_s: float
    raised: int
    margin: str
    names_checked: int
    """Names the lost server had acknowledged, asked for again after the recovery."""
    survivors_knew: int
    """Names the surviving hosts held or had witnessed of the lost server."""
    unseen: int
    """Names checked that no surviving host held or had witnessed: the uncovered part."""
    repeated: list[RepeatedName]

    @property
    def numbers_repeated(self) -> int:
        return sum(r.numbers for r in self.repeated)


def _pages(http: httpx.Client, path: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": PAGE} | ({"cursor": cursor} if cursor else {})
        response = http.get(path, params=params)
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def survivors_know(urls: list[str], lost: int) -> set[str]:
    """Names the hosts at ``urls`` hold, or witnessed instance ``lost`` issue."""
    known: set[str] = set()
    for url in urls:
        with httpx.Client(base_url=url, timeout=30) as http:
            known.update(str(i["name"]) for i in _pages(http, "/sequences"))
            known.update(str(i["name"]) for i in _pages(http, f"/witness/{lost}"))
    return known


def recover(url: str, path: str = "/recover") -> tuple[float, dict[str, object]]:
    """POST /recover (again while a peer cannot give its part yet: 503); its time and answer.
    ``path`` "/unfence": the careless operator's control run."""
    began = time.monotonic()
    deadline = began + 60
    with httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        while True:
            response = http.post(path)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # between real attempts only
    if response.status_code != 200:
        raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text}")
    return time.monotonic() - began, response.json()


def probe(server: Daemon, instance: int, acks: Acks) -> list[str]:
    """Ask ``server`` (just recovered) again for every name instance ``instance`` had
    acknowledged, with no history, up to the highest number it had acknowledged; every
    number goes through ``acks`` (which counts the repeats). The names asked."""
    with acks.lock:
        issued = {name: max(v for v in values if v % INSTANCES == instance % INSTANCES)
                  for name, values in acks.numbers.items()
                  if any(v % INSTANCES == instance % INSTANCES for v in values)}
    for name, highest in sorted(issued.items()):
        got = ask(server.bind, name, 0, 1, timeout_s=5.0)
        if got is None:
            raise RuntimeError(f"the recovered server did not answer for {name}")
        acks.note(name, got)
        while got[-1] < highest:
            got = ask(server.bind, name, 0, min((highest - got[-1]) // INSTANCES, MAX_COUNT),
                      timeout_s=5.0)
            if got is None:
                raise RuntimeError(f"the recovered server did not answer for {name}")
            acks.note(name, got)
    return sorted(issued)


def start_cluster(group: Daemons) -> tuple[list[Daemon], list[str]]:
    servers = [group.seqgen_server(k, INSTANCES) for k in range(1, INSTANCES + 1)]
    urls = [free_url() for _ in servers]
    for server, url in zip(servers, urls, strict=True):
        assert server.control is not None
        group.seqgen_admin(server.control, url, [u for u in urls if u != url], "--token", TOKEN,
                           "--witness-interval", str(INTERVAL_S))
    return servers, urls


def wait_witnessing(urls: list[str], timeout_s: float = 60) -> None:
    """Until every admin has a record of every other instance (its first read is done)."""
    deadline = time.monotonic() + timeout_s
    for k, url in enumerate(urls, 1):
        for other in range(1, INSTANCES + 1):
            while other != k:
                response = httpx.get(f"{url}/witness/{other}", params={"limit": 1}, timeout=10)
                if response.status_code == 200 and response.json()["items"]:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} has no record of instance {other}")
                time.sleep(0.1)  # between real requests only


def lose_disk(group: Daemons, servers: list[Daemon], index: int) -> tuple[Daemon, float]:
    """Destroy instance index+1's store while it serves, kill it, restart it empty and
    fenced on the same endpoints; (the new server, the moment of the loss)."""
    old = servers[index]
    assert old.data is not None and old.control is not None
    shutil.rmtree(old.data)
    os.kill(old.pid, signal.SIGKILL)
    lost_at = time.monotonic()
    old.proc.wait()
    new = group.seqgen_server(index + 1, INSTANCES, old.data, bind=old.bind, control=old.control,
                              extra=("--fenced",))
    return new, lost_at


def run(cycles: int, cycle_s: float, warmup_s: float, rate: float, *, unfence: bool = False,
        ) -> tuple[list[Cycle], Acks, float]:
    with daemons() as group:
        servers, urls = start_cluster(group)
        load = Load([s.bind for s in servers], rate=rate, names=NAMES, hot=HOT, new_per_s=NEW_PER_S)
        load.seed()
        wait_witnessing(urls)
        load.start()
        began = time.monotonic()
        time.sleep(warmup_s)  # the warm-up's length, not a wait for anything
        results: list[Cycle] = []
        losses: list[tuple[int, float, set[str]]] = []
        try:
            for c in range(cycles):
                index = c % INSTANCES
                start, (n0, r0, f0) = time.monotonic(), load.acks.counts()
                time.sleep(cycle_s)  # the load's length before the loss
                n1, r1, f1 = load.acks.counts()
                servers[index], lost_at = lose_disk(group, servers, index)
                known = survivors_know([u for i, u in enumerate(urls) if i != index], index + 1)
                recover_s, answer = recover(urls[index], "/unfence" if unfence else "/recover")
                checked = probe(servers[index], index + 1, load.acks)
                losses.append((index + 1, lost_at, known))
                results.append(Cycle(index + 1, lost_at - start, (n1 - n0) / (lost_at - start),
                                     (r1 - r0) / (lost_at - start), f1 - f0, recover_s,
                                     int(str(answer.get("raised", 0))),
                                     str(answer.get("margin", "none: unfenced")), len(checked),
                                     len(known), sum(name not in known for name in checked), []))
                print(f"  cycle {c + 1}: instance {index + 1} lost and recovered", file=sys.stderr,
                      flush=True)
        finally:
            load.stop()
        elapsed = time.monotonic() - began
    return attribute(results, losses, load.acks), load.acks, elapsed


def attribute(results: list[Cycle], losses: list[tuple[int, float, set[str]]],
              acks: Acks) -> list[Cycle]:
    """Each repeat goes to the last loss before it of the instance that issued its number."""
    per_cycle: list[dict[str, int]] = [{} for _ in results]
    for repeat in acks.repeats:
        for c in range(len(losses) - 1, -1, -1):
            lost, lost_at, _ = losses[c]
            if lost_at < repeat.at and repeat.value % INSTANCES == lost % INSTANCES:
                per_cycle[c][repeat.name] = per_cycle[c].get(repeat.name, 0) + 1
                break
    out = []
    for cycle, (_, lost_at, known), names in zip(results, losses, per_cycle, strict=True):
        repeated = [RepeatedName(name, n, lost_at - acks.first_used[name], name in known)
                    for name, n in sorted(names.items())]
        out.append(Cycle(**{**{f: getattr(cycle, f) for f in cycle.__dataclass_fields__},
                            "repeated": repeated}))
    return out


def report(cycles: list[Cycle], acks: Acks, elapsed_s: float, rate: float, *,
           unfence: bool = False) -> dict[str, object]:
    repeated = [r for c in cycles for r in c.repeated]
    ages = [r.first_used_before_loss_s for r in repeated]
    return {
        "instances": INSTANCES, "witness_interval_s": INTERVAL_S, "names": NAMES, "hot": HOT,
        "new_names_per_s": NEW_PER_S, "target_rate": rate, "cycles": len(cycles),
        "control_unfence": unfence, "acknowledged": acks.total, "acks_per_s": acks.total / elapsed_s,
        "names_repeated": len(repeated), "numbers_repeated": sum(r.numbers for r in repeated),
        "most_numbers_per_name": max((r.numbers for r in repeated), default=0),
        "names_repeated_per_loss": [len(c.repeated) for c in cycles],
        "unseen_names_per_loss": [c.unseen for c in cycles],
        "first_used_before_loss_s": [min(ages, default=0.0), max(ages, default=0.0)],
        "repeated_seen_by_survivor": sum(r.seen_by_survivor for r in repeated),
        "repeats_of_hot_names": sum(r.name.startswith("hot/") for r in repeated),
        "per_cycle": [asdict(c) | {"numbers_repeated": c.numbers_repeated} for c in cycles],
    }


def table(cycles: list[Cycle]) -> str:
    lines = ["| cycle | lost | load | acks/s | requests/s | failed calls | recovery | raised | "
             "names checked | seen by no survivor | names repeated | numbers repeated | "
             "first used before the loss | seen by a survivor |", "|---" * 14 + "|"]
    for n, c in enumerate(cycles, 1):
        ages = sorted(r.first_used_before_loss_s for r in c.repeated)
        span = f"{ages[0]:.2f}..{ages[-1]:.2f} s" if ages else "—"
        lines.append(f"| {n} | {c.lost} | {c.load_s:.1f} s | {c.acks_per_s:,.0f} | "
                     f"{c.requests_per_s:,.0f} | {c.failed_calls} | {c.recover_s:.2f} s | "
                     f"{c.raised:,} | {c.names_checked:,} | {c.unseen} | {len(c.repeated)} | "
                     f"{c.numbers_repeated} | {span} | {sum(r.seen_by_survivor for r in c.repeated)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lostdisk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=6, metavar="N",
                        help="lost-disk cycles (default %(default)s)")
    parser.add_argument("--cycle", type=float, default=10.0, metavar="S",
                        help="seconds of load before each loss (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=5.0, metavar="S",
                        help="seconds of load before the first cycle (default %(default)s)")
    parser.add_argument("--rate", type=float, default=4000.0, metavar="N",
                        help="numbers acknowledged per second asked of the load (default "
                        "%(default)s; the table shows what the machine reached)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 cycle of 3 s after 2 s of warm-up")
    parser.add_argument("--unfence", action="store_true",
                        help="control run, the careless operator: POST /unfence instead of "
                        "/recover (the check must then find repeats, of names the survivors saw)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.cycles < 1 or args.cycle <= 0 or args.warmup < 0 or args.rate <= 0:
        parser.error("--cycles must be at least 1, --cycle and --rate positive, --warmup >= 0")
    cycles, cycle_s, warmup_s = (1, 3.0, 2.0) if args.quick else (args.cycles, args.cycle,
                                                                   args.warmup)
    results, acks, elapsed_s = run(cycles, cycle_s, warmup_s, args.rate, unfence=args.unfence)
    summary = report(results, acks, elapsed_s, args.rate, unfence=args.unfence)
    print(f"{INSTANCES} servers, admins peered (--witness-interval {INTERVAL_S:g}), {NAMES} names "
          f"({HOT} hot, {NEW_PER_S:g} new a second), {args.rate:g} numbers/s asked; "
          f"load average {os.getloadavg()[0]:.2f}"
          + ("; CONTROL RUN: unfenced, not recovered" if args.unfence else ""))
    print(table(results))
    for n, c in enumerate(results, 1):
        for r in c.repeated:
            print(f"  cycle {n}: {r.name}: {r.numbers} number(s) repeated, first used "
                  f"{r.first_used_before_loss_s:.2f} s before the loss, "
                  f"{'SEEN' if r.seen_by_survivor else 'seen by no'} surviving host")
    print(f"total: {summary['acknowledged']:,} numbers acknowledged ({summary['acks_per_s']:,.0f}/s), "
          f"{summary['names_repeated']} names repeated ({summary['numbers_repeated']} numbers, at "
          f"most {summary['most_numbers_per_name']} per name), "
          f"{summary['repeated_seen_by_survivor']} of them seen by a surviving host, "
          f"{summary['repeats_of_hot_names']} hot")
    if args.json:
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
