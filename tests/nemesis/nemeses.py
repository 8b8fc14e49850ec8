"""The faults: each one starts, lasts while the clients run, and heals completely.

At most one server host is faulty at a time, except in ``AllButOne``. Client
hosts cut off from the network are named in ``isolated_clients``: their own
clients cannot reach anything and are reported, not judged.
"""

from __future__ import annotations

import random
import signal
import threading
from dataclasses import dataclass, field

from tests.nemesis.cluster import CLIENT_HOSTS, SERVER_HOSTS, Cluster

FLAP_MIN_S = 0.2
FLAP_MAX_S = 2.0


@dataclass
class Nemesis:
    kind: str
    targets: tuple[str, ...]
    faulty_servers: int = 1
    isolated_clients: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.kind} {'+'.join(self.targets)}"

    def start(self, cluster: Cluster) -> None:
        raise NotImplementedError

    def heal(self, cluster: Cluster) -> None:
        raise NotImplementedError


@dataclass
class Isolate(Nemesis):
    """The hosts' cables pulled at the switch: every packet to or from them vanishes."""

    def start(self, cluster: Cluster) -> None:
        for host in self.targets:
            cluster.net.link(host, up=False)

    def heal(self, cluster: Cluster) -> None:
        for host in self.targets:
            cluster.net.link(host, up=True)


@dataclass
class OneWay(Nemesis):
    """targets = (client host, server host): the client host's packets to that server vanish
    in the switch; the server's packets to it, and everyone else's, still flow.

    Only proxy p1's host (c1, whose own clients talk to the proxies only) is used, so
    exactly one proxy loses one server while every other process still reaches it.
    """

    def start(self, cluster: Cluster) -> None:
        source, server = (cluster.address(host) for host in self.targets)
        cluster.net.switch_drop([f"ip saddr {source} ip daddr {server} drop"])

    def heal(self, cluster: Cluster) -> None:
        cluster.net.heal_switch()


@dataclass
class Loss(Nemesis):
    """Each frame into or out of the host's port on the switch is dropped with ``percent`` %
    probability (so a round trip loses about twice that)."""

    percent: int = 10

    def start(self, cluster: Cluster) -> None:
        rule = f"numgen random mod 100 < {self.percent} drop"
        host = self.targets[0]
        cluster.net.switch_drop([f'iifname "{host}" {rule}', f'oifname "{host}" {rule}'])

    def heal(self, cluster: Cluster) -> None:
        cluster.net.heal_switch()


@dataclass
class Flap(Nemesis):
    """The host's link goes down and up again, each state lasting 0.2 to 2 s at random."""

    rng: random.Random = field(default_factory=random.Random)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    flaps: int = 0

    def start(self, cluster: Cluster) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._flap, args=(cluster,), daemon=True)
        self._thread.start()

    def _flap(self, cluster: Cluster) -> None:
        up = True
        while not self._stop.is_set():
            up = not up
            cluster.net.link(self.targets[0], up=up)
            self.flaps += 1
            self._stop.wait(self.rng.uniform(FLAP_MIN_S, FLAP_MAX_S))

    def heal(self, cluster: Cluster) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        cluster.net.link(self.targets[0], up=True)


@dataclass
class Freeze(Nemesis):
    """SIGSTOP to every process of the host (supervisord, server, admin); SIGCONT heals."""

    def start(self, cluster: Cluster) -> None:
        cluster.net.signal_all(self.targets[0], signal.SIGSTOP)

    def heal(self, cluster: Cluster) -> None:
        cluster.net.signal_all(self.targets[0], signal.SIGCONT)


@dataclass
class CrashHost(Nemesis):
    """kill -9 of every process of the host; healing boots it: supervisord starts again."""

    def start(self, cluster: Cluster) -> None:
        cluster.servers[self.targets[0]].kill_all()

    def heal(self, cluster: Cluster) -> None:
        cluster.servers[self.targets[0]].start()


@dataclass
class CrashPrograms(Nemesis):
    """kill -9 of the server and the admin; supervisord (autorestart) starts them again."""

    def start(self, cluster: Cluster) -> None:
        cluster.servers[self.targets[0]].kill_programs()

    def heal(self, cluster: Cluster) -> None:
        """Nothing to do: supervisord restarts them (readiness is checked after healing)."""


def alone(rng: random.Random) -> list[Nemesis]:
    """Every fault once, on fixed hosts (the servers take turns)."""
    return [
        Isolate("isolate", ("s1",)),
        OneWay("one-way", ("c1", "s2")),
        Flap("flap", ("s3",), rng=random.Random(rng.random())),
        Loss("loss-10%", ("s1",), percent=10),
        Loss("loss-30%", ("s2",), percent=30),
        Freeze("sigstop", ("s3",)),
        CrashHost("kill-9-host", ("s1",)),
        CrashPrograms("kill-9-programs", ("s2",)),
        Isolate("isolate-proxy-host", ("c1",), faulty_servers=0, isolated_clients=("c1",)),
        Isolate("all-but-one", ("s1", "s2"), faulty_servers=2),
    ]


def random_one(rng: random.Random) -> Nemesis:
    """One fault of one host, drawn at random (never more than one server host)."""
    server = rng.choice(sorted(SERVER_HOSTS))
    choice = rng.randrange(9)
    if choice == 0:
        return Isolate("isolate", (server,))
    if choice == 1:
        return OneWay("one-way", ("c1", server))
    if choice == 2:
        return Flap("flap", (server,), rng=random.Random(rng.random()))
    if choice == 3:
        return Loss("loss-10%", (server,), percent=10)
    if choice == 4:
        return Loss("loss-30%", (server,), percent=30)
    if choice == 5:
        return Freeze("sigstop", (server,))
    if choice == 6:
        return CrashHost("kill-9-host", (server,))
    if choice == 7:
        return CrashPrograms("kill-9-programs", (server,))
    client = rng.choice(sorted(CLIENT_HOSTS))
    return Isolate("isolate-proxy-host", (client,), faulty_servers=0, isolated_clients=(client,))
