"""The load of the lost-disk benchmark (issue 22), every acknowledgement logged and checked.

About ``rate`` numbers a second over a fixed set of ``names`` names, ``hot`` of them hot,
and ``new_per_s`` brand-new names a second, each taking the place of an old one in the set:

- **long-lived clients**: threads, each with one ``seqgen_client.Client`` over every server
  for the whole run (it carries each name's ``last`` and fails over); 5 numbers per call,
  mostly of hot names;
- **one-shot clients**: a new REQ socket per call to a random server, ``last`` "0" (they
  carry nothing), trying the next server when one does not answer; 2 numbers per call;
- **new names**: one a ``1 / new_per_s`` seconds, first asked from one random server by a
  one-shot client (3 numbers), then part of the set that every client picks from.

Every number acknowledged is checked against every number acknowledged before for its
name: one seen twice is a repeat (``Acks.repeats``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import msgspec

from benchmarks.daemons import rpc
from seqgen_client import Client
from seqgen_common.errors import SeqgenError

__all__ = ["Acks", "Load", "Repeat", "ask"]

ONE_SHOT_TIMEOUT_S: Final = 0.3
LONG_COUNT: Final = 5
ONE_SHOT_COUNT: Final = 2
NEW_COUNT: Final = 3
HOT_SHARE: Final = 0.8
"""The share of a long-lived client's calls that are for hot names (one-shot clients: 0.2)."""


@dataclass(frozen=True, slots=True)
class Repeat:
    name: str
    value: int
    at: float
    """time.monotonic() of the second acknowledgement."""


@dataclass
class Acks:
    """Every number acknowledged, per name, and the repeats among them."""

    numbers: dict[str, set[int]] = field(default_factory=dict)
    first_used: dict[str, float] = field(default_factory=dict)
    """time.monotonic() of each name's first acknowledgement (any server)."""
    repeats: list[Repeat] = field(default_factory=list)
    total: int = 0
    requests: int = 0
    failed: int = 0
    """Calls that got no number (no server answered in time, or every one refused)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, name: str, got: list[int]) -> None:
        now = time.monotonic()
        with self.lock:
            known = self.numbers.setdefault(name, set())
            self.first_used.setdefault(name, now)
            for value in got:
                if value in known:
                    self.repeats.append(Repeat(name, value, now))
                known.add(value)
            self.total += len(got)
            self.requests += 1

    def fail(self) -> None:
        with self.lock:
            self.failed += 1

    def counts(self) -> tuple[int, int, int]:
        """(numbers, requests, failed calls) so far."""
        with self.lock:
            return self.total, self.requests, self.failed


def ask(endpoint: str, name: str, last: int, count: int,
        timeout_s: float = ONE_SHOT_TIMEOUT_S) -> list[int] | None:
    """One one-shot request: its numbers, or None (no reply in time, or an error reply)."""
    reply = rpc(endpoint, msgspec.json.encode([name, str(last), count]), timeout_s)
    if reply is None:
        return None
    decoded = msgspec.json.decode(reply)
    if not isinstance(decoded, list) or not decoded or decoded[0] is not None:
        return None
    return [int(v) for v in decoded[1:]]


class _Pacer:
    """Calls ``period_s`` apart on average; a late caller catches up by at most 0.1 s."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self.next_at = time.monotonic()

    def wait(self, stop: threading.Event) -> bool:
        """False once stopped."""
        self.next_at = max(self.next_at + self.period_s, time.monotonic() - 0.1)
        return not stop.wait(max(self.next_at - time.monotonic(), 0.0))


class Load:
    """The load's threads (``start``/``stop``) over the servers at ``endpoints``."""

    def __init__(self, endpoints: list[str], *, rate: float, names: int, hot: int,
                 new_per_s: float, long_lived: int = 2, one_shot: int = 2) -> None:
        self.endpoints = endpoints
        self.acks = Acks()
        self.hot = [f"hot/{i}" for i in range(hot)]
        self.pool = [f"name/{i:04d}" for i in range(names - hot)]
        self._new = 0
        self._random = random.Random(22)
        self._pool_lock = threading.Lock()
        self._stop = threading.Event()
        # Half of the numbers from long-lived clients, half from one-shot ones.
        long_period = long_lived * LONG_COUNT / (rate / 2)
        short_period = one_shot * ONE_SHOT_COUNT / (rate / 2)
        long_fn: Callable[[float], None] = self._long_lived
        short_fn: Callable[[float], None] = self._one_shot
        new_fn: Callable[[float], None] = self._new_names
        targets = ([(long_fn, long_period)] * long_lived + [(short_fn, short_period)] * one_shot
                   + [(new_fn, 1 / new_per_s)])
        self._threads = [threading.Thread(target=fn, args=(period,), daemon=True)
                         for fn, period in targets]

    def seed(self) -> None:
        """Every name of the set once, from a random server, before the load starts."""
        for name in self.hot + self.pool:
            self._one_shot_call(name, 1)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _pick(self, hot_share: float) -> str:
        with self._pool_lock:
            if self._random.random() < hot_share:
                return self._random.choice(self.hot)
            return self._random.choice(self.pool)

    def _one_shot_call(self, name: str, count: int) -> None:
        start = self._random.randrange(len(self.endpoints))
        for k in range(len(self.endpoints)):
            got = ask(self.endpoints[(start + k) % len(self.endpoints)], name, 0, count)
            if got:
                self.acks.note(name, got)
                return
        self.acks.fail()

    def _long_lived(self, period_s: float) -> None:
        pacer = _Pacer(period_s)
        with Client(self.endpoints, timeout_s=0.3, deadline_s=3.0) as client:
            while pacer.wait(self._stop):
                name = self._pick(HOT_SHARE)
                try:
                    got = client.next_many(name, LONG_COUNT)
                except SeqgenError:
                    self.acks.fail()
                    continue
                self.acks.note(name, got)

    def _one_shot(self, period_s: float) -> None:
        pacer = _Pacer(period_s)
        while pacer.wait(self._stop):
            self._one_shot_call(self._pick(1 - HOT_SHARE), ONE_SHOT_COUNT)

    def _new_names(self, period_s: float) -> None:
        pacer = _Pacer(period_s)
        while pacer.wait(self._stop):
            name = f"new/{self._new:06d}"
            self._new += 1
            self._one_shot_call(name, NEW_COUNT)
            with self._pool_lock:  # it takes the place of an old name in the set
                self.pool[self._random.randrange(len(self.pool))] = name
