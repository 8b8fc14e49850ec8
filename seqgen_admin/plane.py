"""The operator's plane of one admin: its peers, its witness record and what its own server
says of itself, started and stopped with the app.

Without ``--peer`` there is nothing to poll and no witness record (the file
is not even created); ``/cluster`` then shows this server alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Final

import httpx

from seqgen_admin.cluster import THIS_SERVER, Node, conflicts
from seqgen_admin.config import AdminConfig
from seqgen_admin.control_client import ControlClient
from seqgen_admin.follow import FollowCounts, Follower
from seqgen_admin.peers import MAX_BEHIND, PEER_TIMEOUT_S, PeerPoller, PeerView, http_client
from seqgen_admin.resize_prep import Preparations
from seqgen_admin.tls import client_context
from seqgen_admin.witness import WitnessStore
from seqgen_common.control import Pong
from seqgen_common.errors import SeqgenError, Unavailable

QUIET_S: Final = 120.0
"""The longest a resize step pauses the polling of the peers (a coordinator that died)."""

__all__ = ["PEER_TIMEOUT_S", "ClusterState", "Plane", "backwards"]

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class ClusterState:
    own: Pong | None
    """This server, as it last answered (None: it never did)."""
    own_reachable: bool
    peers: list[PeerView]
    conflicts: list[str]
    follow: FollowCounts | None
    """What following the peers did (None: off, or no peers)."""
    behind: int = 0
    """Names that serving peers hold below what this host witnessed them issue."""


class Plane:
    def __init__(self, config: AdminConfig) -> None:
        self.config = config
        self.witness: WitnessStore | None = None
        self._http: httpx.AsyncClient | None = None
        self.pollers: list[PeerPoller] = []
        self.follower: Follower | None = None
        self._own: Pong | None = None
        self._own_reachable = False
        self._control: ControlClient | None = None
        self._own_task: asyncio.Task[None] | None = None
        self.recovering = asyncio.Lock()
        self.resizing = asyncio.Lock()
        self.resize_prep = Preparations()
        """What step ``prepare`` of a resize read (seqgen_admin.resize_prep)."""
        self._quiet_until = 0.0
        """Until then (monotonic) the peers are not polled: a resize is under way."""
        """Held while POST /recover runs (one at a time)."""

    @property
    def http(self) -> httpx.AsyncClient:
        """The client for calls to peers (while the plane runs)."""
        if self._http is None:
            raise Unavailable("the admin is not running")
        return self._http

    async def start(self, control: ControlClient) -> None:
        """Open the witness record (StartupError when it cannot be used) and start polling."""
        self._control = control
        self._http = http_client(self.config.token, PEER_TIMEOUT_S, client_context(self.config.tls))
        if self.config.peers:
            self.witness = await asyncio.to_thread(WitnessStore.open, self.config.witness_file)
            log.info("witness record %s; peers %s every %gs", self.config.witness_file,
                     ", ".join(self.config.peers), self.config.witness_interval_s)
        if self.config.peers and self.config.follow_peers:
            self.follower = Follower(control, self.config.follow_max_names)
        self.pollers = [PeerPoller(self._http, url, self.config.witness_interval_s, self.witness,
                                   follower=self.follower, paused=self.quiet_now)
                        for url in self.config.peers]
        for poller in self.pollers:
            poller.start()
        self._own_task = asyncio.get_running_loop().create_task(self._watch_own(), name="own server")

    def quiet(self, step: str) -> None:
        """Pause polling the peers (witness and following) from a resize's first step, for
        at most QUIET_S; ``end`` (or ``abort``) resumes it. The peers' change feeds keep
        every change for the witness meanwhile; it catches up afterwards."""
        self._quiet_until = 0.0 if step in ("end", "abort") else time.monotonic() + QUIET_S

    def quiet_now(self) -> bool:
        return time.monotonic() < self._quiet_until

    async def stop(self) -> None:
        if self._own_task is not None:
            self._own_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._own_task
        for poller in self.pollers:
            await poller.stop()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self.witness is not None:
            self.witness.close()

    async def _watch_own(self) -> None:
        while True:
            await self.refresh_own()
            await asyncio.sleep(self.config.witness_interval_s)

    async def refresh_own(self) -> None:
        """Ask this server who it is (for the cluster view)."""
        if self._control is None:
            return
        try:
            self._own = await self._control.ping()
            self._own_reachable = True
        except SeqgenError:
            self._own_reachable = False

    async def witnessed_names(self, instance: int) -> int:
        """How many names of ``instance`` this host witnessed (0 without a record)."""
        if self.witness is None:
            return 0
        return await asyncio.to_thread(self.witness.count, instance)

    def backwards_seen(self) -> list[tuple[int, str]]:
        """The peers this admin saw go backwards: (instance, conflict), for ``/changes``."""
        return [(view.instance, problem) for view in (poller.view for poller in self.pollers)
                if view.instance is not None and (problem := backwards(view)) is not None]

    def state(self) -> ClusterState:
        own = self._own
        own_node = Node(THIS_SERVER, own.instance, own.instances) if own is not None else None
        peers = [poller.view for poller in self.pollers]
        nodes = [node for node in (view.node() for view in peers) if node is not None]
        found = conflicts(own_node, nodes) + [problem for problem in map(backwards, peers)
                                              if problem is not None]
        if own is not None:  # what the peers' admins saw of this server
            found += [f"{view.url} reports: {conflict}" for view in peers if view.reachable
                      for instance, conflict in view.reports if instance == own.instance]
        follow = self.follower.counts if self.follower is not None else None
        return ClusterState(own, self._own_reachable, peers, found, follow,
                            sum(len(view.behind) for view in peers if view.fenced is False))


def backwards(view: PeerView) -> str | None:
    """The conflict of a serving peer whose server holds names below what was witnessed."""
    if not view.behind or view.fenced is not False:
        return None
    name, (value, recorded) = next(iter(view.behind.items()))
    more = "at least " if len(view.behind) >= MAX_BEHIND else ""
    return (f"{view.url} (instance {view.instance}) went backwards: {more}{len(view.behind)} "
            f"name(s) below what this host witnessed it issue (e.g. {name!r} at {value}, "
            f"witnessed {recorded}): it can issue those numbers again; POST /fence on it, then "
            "POST /recover (docs/operations.md)")
