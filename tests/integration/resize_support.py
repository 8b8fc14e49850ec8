"""Clients under load during a resize: every acknowledged number recorded, and the checks."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from seqgen_client import Client
from seqgen_common.errors import SeqgenError
from tests.integration.operator_support import Host

DEADLINE_S = 5.0
"""The clients' deadline (their default)."""


@dataclass
class Load:
    """Client threads calling ``next`` in a loop on ``endpoints`` (each thread one client)."""

    groups: Sequence[Sequence[str]]
    names: Sequence[str] = ("orders", "invoices", "users")
    acked: list[tuple[str, int]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    slowest_s: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        for endpoints in self.groups:
            thread = threading.Thread(target=self._run, args=(list(endpoints),), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, endpoints: list[str]) -> None:
        client = Client(endpoints, deadline_s=DEADLINE_S)
        i = 0
        try:
            while not self._stop.is_set():
                name = self.names[i % len(self.names)]
                i += 1
                started = time.monotonic()
                try:
                    value = client.next(name)
                except SeqgenError as exc:
                    with self._lock:
                        self.failed.append(f"{exc.code}: {exc.message}")
                    continue
                finally:
                    took = time.monotonic() - started
                    self.slowest_s = max(self.slowest_s, took)
                with self._lock:
                    self.acked.append((name, value))
        finally:
            client.close()

    def wait_for(self, more: int, timeout_s: float = 30.0) -> None:
        """Until ``more`` numbers were acknowledged after this call (the load really runs)."""
        target = len(self.acked) + more
        deadline = time.monotonic() + timeout_s
        while len(self.acked) < target:
            assert time.monotonic() < deadline, f"the load is stuck: {self.failed[-3:]}"
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(DEADLINE_S + 5)

    def check(self) -> None:
        """No number twice per name; at least 99.9 % of calls succeeded; none past its
        deadline."""
        repeats = [item for item, times in Counter(self.acked).items() if times > 1]
        assert not repeats, f"numbers issued twice: {repeats[:10]}"
        calls = len(self.acked) + len(self.failed)
        assert len(self.failed) <= calls // 1000, f"{len(self.failed)} of {calls}: {self.failed[:3]}"
        assert self.slowest_s < DEADLINE_S + 1.0, self.slowest_s


def status(host: Host) -> dict[str, object]:
    with host.http() as http:
        body = http.get("/status").json()
    assert isinstance(body, dict)
    return body


def resize(host: Host, instances: int, timeout_s: float = 60.0) -> httpx.Response:
    with host.http(timeout_s) as http:
        return http.post("/resize", json={"instances": instances})
