"""The nemesis suite's resize run: grow 2 -> 3 and shrink 3 -> 2 while clients run and a fault hits.

    s1 10.231.0.11   supervisord (etc/deploy/seqgen-host.conf): server 1 + admin
    s2 10.231.0.12   ... server 2
    s3 10.231.0.13   the host that comes and goes: started fenced for a grow, retired by a shrink
    c1 10.231.0.21   supervisord (etc/deploy/seqgen-proxy.conf): proxy p1; the clients; two
                     observers (tests.nemesis.agent): one for readiness, one that sends the
                     POST /resize while the test injects the fault

Each episode is the operator's procedure of docs/operations.md ("Change the number of
servers"), with the templates' environment (``SEQGEN_INSTANCE``, ``SEQGEN_INSTANCES``,
``SEQGEN_PEERS``): supervisord is restarted with the new environment where the procedure
restarts a program. A fault of tests/nemesis/nemeses.py starts at a random moment after the
``POST /resize`` was sent; when the request fails, it is sent again once what was down is back
(every admin answers ``/readyz``), as an operator would, until it answers 200.

The clients (and the proxy) list all three servers throughout: the proxy template names three,
and a server that is not there, fenced or retired is skipped by clients and proxies alike.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import msgspec

from tests.nemesis.agent import AgentConfig
from tests.nemesis.cluster import (
    ADMIN_TOKEN,
    CLIENT_HOSTS,
    PORT,
    READY_TIMEOUT_S,
    SERVER_HOSTS,
    Agent,
    Cluster,
    WorkerSpec,
    base_env,
    node_missing,
    public,
)
from tests.nemesis.hosts import VENV, SupervisedHost
from tests.nemesis.nemeses import CrashPrograms, Isolate, Loss, Nemesis
from tests.nemesis.render import render_proxy
from tests.tls_support import Pki

log = logging.getLogger(__name__)

HOSTS = SERVER_HOSTS | {"c1": CLIENT_HOSTS["c1"]}
STAYING = ("s1", "s2")
NEW = "s3"
FENCED = ["UNAVAILABLE", "fenced"]
RESIZE_TIMEOUT_S = 60.0
"""How long the observer waits for one POST /resize (one blocked by a partition finishes
once TCP gets through again after healing)."""
MAX_ATTEMPTS = 8
RETRY_PAUSE_S = 1.0
"""Between two requests that failed: the operator reads the answer and sends it again."""
BEFORE_S = 2.0
AFTER_S = 3.0
FAULT_DELAY_S = (0.0, 0.4)
"""When the fault starts after the request was sent: a resize took 0.2 to 1.0 s here, so the
fault falls before, within or (rarely) after its steps."""
LABELS_TWO = ("s1", "s2", "p1", "admin-s1", "admin-s2")
LABELS_THREE = (*LABELS_TWO, "s3", "admin-s3")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def workers() -> tuple[WorkerSpec, ...]:
    """On c1: a sync Client straight to the servers, an AsyncClient through the proxy, and the
    Node.js client's two forms, one each way (where Node.js is installed)."""
    python = (WorkerSpec("c1", "sync", "direct", 2), WorkerSpec("c1", "async", "proxies", 4))
    if node_missing() is not None:
        log.warning("the resize run has no Node.js clients: %s", node_missing())
        return python
    return (*python, WorkerSpec("c1", "node-promise", "direct", 4),
            WorkerSpec("c1", "node-callback", "proxies", 2))


@dataclass(frozen=True)
class Attempt:
    admin: str
    status: int | None
    body: object
    error: str | None
    t0: float
    t1: float

    def __str__(self) -> str:
        said = self.error if self.status is None else f"{self.status} {self.body}"
        return f"{self.admin} {self.t1 - self.t0:.2f} s: {said}"[:600]


@dataclass(frozen=True)
class Fault:
    make: Callable[[], Nemesis]
    during_s: float
    """How long it lasts once started (0: it heals by itself, as supervisord restarts)."""


@dataclass
class ResizeEpisode:
    kind: Literal["grow", "shrink"]
    fault: str
    coordinator: str
    target: int
    previous: int
    fault_delay_s: float
    attempts: list[Attempt] = field(default_factory=list)
    t_before: float = 0.0
    """The "before" window starts: the cluster is ready with every admin peered."""
    t_restart: float = 0.0
    """The servers restart with the new count (after the "after" window)."""
    t_end: float = 0.0
    """Every server restarted and ready."""
    views: dict[str, dict[str, object]] = field(default_factory=dict)
    """Each admin's /cluster at the end (the retired one's right after the resize)."""
    retired_reply: object = None
    """A shrink: the retired server's reply to a request."""
    restarted_early: list[str] = field(default_factory=list)
    """Hosts restarted with the new count before the request was sent again (bring_back)."""
    marks: list[tuple[str, float]] = field(default_factory=list)
    """(step, time.monotonic) as the episode went: where its time goes."""

    def mark(self, step: str) -> None:
        self.marks.append((step, time.monotonic()))

    def timeline(self) -> str:
        start = self.marks[0][1] if self.marks else 0.0
        return ", ".join(f"{step} {t - start:.1f}" for step, t in self.marks)

    @property
    def t_first(self) -> float:
        return self.attempts[0].t0

    @property
    def t_done(self) -> float:
        return self.attempts[-1].t1

    @property
    def label(self) -> str:
        return f"{self.kind} {self.previous}->{self.target} under {self.fault} (via {self.coordinator})"


PLAN: tuple[tuple[Literal["grow", "shrink"], str, str, Fault], ...] = (
    ("grow", "kill-9-programs s2", "s1", Fault(lambda: CrashPrograms("kill-9-programs", ("s2",)), 0.0)),
    ("shrink", "isolate s2", "s1", Fault(lambda: Isolate("isolate", ("s2",)), 3.0)),
    ("grow", "kill-9-programs s1", "s1", Fault(lambda: CrashPrograms("kill-9-programs", ("s1",)), 0.0)),
    ("shrink", "loss-30% s1", "s1", Fault(lambda: Loss("loss-30%", ("s1",), percent=30), 3.0)),
)
"""Grow, shrink, grow, shrink: a peer's server and admin killed, the partition of a server host
that stays, the coordinating admin (and its server) killed, a lossy link to the coordinator."""


class ResizeCluster(Cluster):
    """Cluster's hosts, templates and clients; s3 joins and leaves by POST /resize."""

    def __init__(self, root: Path, tag: str, rate_per_worker_s: float, max_duration_s: float) -> None:
        super().__init__(root, tag, rate_per_worker_s, max_duration_s)
        self.resizer: Agent | None = None
        self.instances = 2

    def proxy_endpoints(self, near: str) -> list[str]:
        return [public(self.address("c1"))]

    def start(self) -> None:
        self.net.build(HOSTS)
        pki = Pki(self.root / "pki")  # the admin plane runs over mutual TLS, as deployed
        for k, host in enumerate(SERVER_HOSTS, start=1):
            env = self.host_env(k, 2, STAYING) if host in STAYING else self.host_env(k, 3, SERVER_HOSTS)
            self.servers[host] = self.server_host(pki, host, env)
        servers = [self.address(h) for h in SERVER_HOSTS]
        self.proxies["c1"] = SupervisedHost(self.net, "c1", self.root / "c1",
                                            render_proxy(VENV, getpass.getuser(), servers), base_env())
        for host in (*STAYING, "c1"):
            (self.servers | self.proxies)[host].start()
        observer = pki.host("observer")
        config = AgentConfig(
            publics={h: public(self.address(h)) for h in SERVER_HOSTS} | {"p1": public(self.address("c1"))},
            admins={f"admin-{h}": self.admin_url(h) for h in SERVER_HOSTS},
            tls={"ca": str(pki.ca), "cert": str(observer.cert), "key": str(observer.key)})
        argv = self.net.exec_argv("c1", [sys.executable, "-m", "tests.nemesis.agent",
                                         msgspec.json.encode(config).decode()])
        self.agent = Agent(argv, self.root / "agent.log")
        self.resizer = Agent(argv, self.root / "resizer.log")
        self.wait_ready("cluster start", peered=True, only=LABELS_TWO)
        for spec in workers():
            self._start_worker(spec)
        self._wait_workers_serving()
        self.started_at = time.monotonic()

    def close(self) -> None:
        if self.resizer is not None:
            try:
                self.resizer.stop()
            except Exception as exc:  # teardown goes on
                log.warning("resizer: %r", exc)
        super().close()

    # ---- the operator's steps ------------------------------------------------------------

    def stop_host(self, host: str) -> None:
        """supervisord stopped (SIGTERM: as ``supervisorctl shutdown``), with the admin killed
        at once: its graceful stop waits for the open (TLS) connections of its peers and
        observers until supervisord's stopwaitsecs (10 s) and then SIGKILL, every time here
        (docs/reliability.md); the admin keeps nothing that a kill loses (the suite kills it in
        kill-9-programs anyway). The server, stopped after it, still stops cleanly."""
        supervised = self.servers[host]
        if supervised.proc is None or supervised.proc.poll() is not None:
            return
        admins = [pid for pid in self.net.pids(host) if b"seqgen-admin" in _cmdline(pid)]
        supervised.proc.send_signal(signal.SIGTERM)
        for pid in admins:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            supervised.proc.wait(30)
        finally:
            supervised.stop()  # closes its output (kills what did not stop)

    def restart(self, host: str, env: dict[str, str]) -> None:
        """supervisord (and so the server and the admin) started again with ``env``."""
        self.stop_host(host)
        supervised = self.servers[host]
        supervised.env = env
        supervised.start()

    def create_fenced_store(self, host: str, instance: int, instances: int) -> None:
        """As the template says for an empty data directory: the server started once by hand
        with --fenced (the fence is kept in the store), stopped once it answers "fenced"."""
        assert self.agent is not None
        data = self.root / host / "data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir()
        argv = self.net.exec_argv(host, [
            str(VENV / "bin" / "seqgen-server"), "--fenced", "--data", str(data), "--instance",
            str(instance), "--instances", str(instances), "--bind", f"tcp://0.0.0.0:{PORT}",
            "--control", "tcp://127.0.0.1:6412"])
        with open(self.root / host / "by-hand.log", "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while self.agent.ask({"op": "reply", "endpoint": public(self.address(host)),
                                  "name": "probe"}, 30)["reply"] != FENCED:
                assert proc.poll() is None, f"the fenced server exited {proc.returncode}"
                assert time.monotonic() < deadline, "the server started by hand never answered"
        finally:
            proc.terminate()
            proc.wait(20)

    def view(self, host: str) -> dict[str, object]:
        assert self.agent is not None
        answer = self.agent.ask({"op": "http", "url": f"{self.admin_url(host)}/cluster"}, 30)
        assert answer["status"] == 200, answer
        body = answer["body"]
        assert isinstance(body, dict)
        return body

    def post_resize(self, admin: str, target: int) -> Attempt:
        assert self.resizer is not None
        answer = self.resizer.ask({"op": "http", "method": "POST", "url": f"{self.admin_url(admin)}/resize",
                                   "body": {"instances": target}, "token": ADMIN_TOKEN,
                                   "timeout_s": RESIZE_TIMEOUT_S}, RESIZE_TIMEOUT_S + 30)
        return Attempt(admin, answer["status"], answer["body"], answer["error"],  # type: ignore[arg-type]
                       answer["t0"], answer["t1"])  # type: ignore[arg-type]

    def resize_under(self, episode: ResizeEpisode, fault: Fault) -> None:
        """POST /resize with the fault starting ``episode.fault_delay_s`` after it was sent;
        then the same request again until it answers 200."""
        box: list[Attempt] = []
        sender = threading.Thread(target=lambda: box.append(
            self.post_resize(episode.coordinator, episode.target)), daemon=True)
        sender.start()
        nemesis = fault.make()
        time.sleep(episode.fault_delay_s)  # the fault's random moment within the request
        try:
            nemesis.start(self)
            time.sleep(fault.during_s)  # the fault lasts; clients and the resize go on
        finally:
            nemesis.heal(self)
        sender.join(RESIZE_TIMEOUT_S + 60)
        assert box, "the observer never answered the POST /resize"
        episode.attempts.append(box[0])
        while episode.attempts[-1].status != 200 and len(episode.attempts) < MAX_ATTEMPTS:
            log.warning("resize attempt failed: %s", episode.attempts[-1])
            self.bring_back(episode)
            time.sleep(RETRY_PAUSE_S)  # the operator reads the answer before sending it again
            episode.attempts.append(self.post_resize(episode.coordinator, episode.target))

    def running(self) -> list[str]:
        """The server hosts whose supervisord runs."""
        return [h for h, s in self.servers.items() if s.proc is not None and s.proc.poll() is None]

    def refuses_old_count(self, host: str) -> bool:
        """Its server does not run and its last words are the refusal of the old --instances
        (the resize finished on its store: docs/operations.md)."""
        status = self.servers[host].ctl("status", "seqgen-server").stdout
        if "RUNNING" in status:
            return False
        logs = sorted((self.root / host / "log").glob("seqgen-server-stdout*.log"),
                      key=lambda path: path.stat().st_mtime)
        return bool(logs) and b"Start it with --instances" in logs[-1].read_bytes()[-600:]

    def bring_back(self, episode: ResizeEpisode) -> None:
        """What an operator does before sending the request again: wait until every admin
        answers /readyz; a server that refuses to start with the old count (it was killed
        after the resize finished on its store) is restarted with the new one, as its log says."""
        assert self.agent is not None
        admins = [f"admin-{h}" for h in self.running()]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.agent.ask({"op": "ready", "timeout_s": 2.0, "only": admins}, 60)["ok"]:
            for k, host in enumerate(SERVER_HOSTS, start=1):
                if host in self.running() and self.refuses_old_count(host):
                    log.warning("%s refuses its old count: restarted with %d", host, episode.target)
                    episode.restarted_early.append(host)
                    self.restart(host, self.host_env(k, episode.target, SERVER_HOSTS))
            if time.monotonic() > deadline:
                raise AssertionError(f"{episode.label}: admins {admins} not back\n{self.logs()}")

    def grow(self, episode: ResizeEpisode, fault: Fault) -> None:
        # 1. The new host: its store fenced by hand, then supervisord, its admin peered with all.
        episode.mark("start")
        self.create_fenced_store(NEW, 3, 3)
        episode.mark("fenced store")
        self.restart(NEW, self.host_env(3, 3, SERVER_HOSTS))
        # 1b. The new admin added to the others' SEQGEN_PEERS; each host restarted in turn.
        for k, host in enumerate(STAYING, start=1):
            self.restart(host, self.host_env(k, 2, SERVER_HOSTS))
            self.wait_ready(f"{host} peered with {NEW}", only=[host, f"admin-{host}", "p1"])
            episode.mark(f"{host} restarted")
        self.wait_ready("every admin peered", peered=True, only=(*LABELS_TWO, "admin-s3"))
        episode.mark("all peered")
        self._resize(episode, fault)
        # 3. SEQGEN_INSTANCES=3 for the servers that stay; each restarted in turn, first one
        # that refuses its old count (killed after the resize finished on its store).
        for host in sorted(STAYING, key=lambda h: not self.refuses_old_count(h)):
            self.restart(host, self.host_env(STAYING.index(host) + 1, 3, SERVER_HOSTS))
            self.wait_ready(f"{host} restarted with 3", only=[host, f"admin-{host}", "p1"])
            episode.mark(f"{host} restarted")
        self.wait_ready("three servers", peered=True, only=LABELS_THREE)
        episode.views = {h: self.view(h) for h in SERVER_HOSTS}
        episode.t_end = time.monotonic()
        episode.mark("end")

    def shrink(self, episode: ResizeEpisode, fault: Fault) -> None:
        episode.mark("start")
        self._resize(episode, fault)
        assert self.agent is not None
        self.wait_ready("the retired admin", only=[f"admin-{NEW}"])
        episode.views[NEW] = self.view(NEW)
        episode.retired_reply = self.agent.ask(
            {"op": "reply", "endpoint": public(self.address(NEW)), "name": "busy"}, 30)["reply"]
        # SEQGEN_INSTANCES=2 and the retired admin out of SEQGEN_PEERS; the retired host stopped.
        for host in sorted(STAYING, key=lambda h: not self.refuses_old_count(h)):
            self.restart(host, self.host_env(STAYING.index(host) + 1, 2, STAYING))
            self.wait_ready(f"{host} restarted with 2", only=[host, f"admin-{host}", "p1"])
            episode.mark(f"{host} restarted")
        self.stop_host(NEW)
        shutil.rmtree(self.root / NEW / "data", ignore_errors=True)  # "keep it or delete it"
        self.wait_ready("two servers", peered=True, only=LABELS_TWO)
        episode.views |= {h: self.view(h) for h in STAYING}
        episode.t_end = time.monotonic()
        episode.mark("end")

    def _resize(self, episode: ResizeEpisode, fault: Fault) -> None:
        episode.t_before = time.monotonic()
        time.sleep(BEFORE_S)  # the "before" window: the cluster serves, the clients run
        episode.mark("before")
        self.resize_under(episode, fault)
        episode.mark("resized")
        if episode.attempts[-1].status != 200:
            raise AssertionError(f"{episode.label}: no request finished the resize: "
                                 f"{[str(a) for a in episode.attempts]}\n{self.logs()}")
        self.instances = episode.target
        rest = episode.t_done + AFTER_S - time.monotonic()
        if rest > 0:
            time.sleep(rest)  # the "after" window, before the servers restart
        episode.t_restart = time.monotonic()


def run_plan(cluster: ResizeCluster, seed: int) -> list[ResizeEpisode]:
    rng = random.Random(seed)
    episodes = []
    for kind, label, coordinator, fault in PLAN:
        previous = cluster.instances
        episode = ResizeEpisode(kind, label, coordinator, previous + (1 if kind == "grow" else -1),
                                previous, rng.uniform(*FAULT_DELAY_S))
        log.info("resize episode: %s", episode.label)
        (cluster.grow if kind == "grow" else cluster.shrink)(episode, fault)
        episodes.append(episode)
    return episodes
