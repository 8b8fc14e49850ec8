"""Talking to the other servers' admins (``--peer URL``) over HTTP, with the admin token.

``PeerPoller`` polls one peer every witness interval: ``GET /changes`` gives
what the peer's server says of itself (instance, instances, version, fenced;
the cluster view) and the names whose value changed since the last poll, which
go into the witness record (seqgen_admin.witness). A new consumer, or a peer
whose server restarted (another epoch), is read in full once through
``GET /sequences``; from then on only changes travel. Values are recorded
before a page is acknowledged, so a page lost on the way is sent again.

``PeerReader`` reads what recovery needs from a peer: every sequence
(``GET /sequences``) and the record of one instance (``GET /witness/{instance}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import httpx
import msgspec

from seqgen_admin.cluster import Node
from seqgen_admin.derive import read_answer
from seqgen_admin.follow import Follower
from seqgen_admin.messages import Changes, Ready, WitnessPage
from seqgen_admin.tls import describe_error
from seqgen_admin.witness import Seen, WitnessStore
from seqgen_common.control import SequencePage
from seqgen_common.errors import SeqgenError, Unavailable
from seqgen_common.limits import MAX_VALUE

__all__ = [
    "MAX_ANSWER_BYTES",
    "PAGE",
    "PEER_TIMEOUT_S",
    "PeerError",
    "PeerPoller",
    "PeerReader",
    "PeerView",
    "failure",
    "http_client",
    "peer_value",
]

log = logging.getLogger(__name__)

PAGE: Final = 1000
"""Sequences (and witnessed names) per page when a peer is read in full."""
CHANGES_PAGE: Final = 5000
"""Changed names per /changes page."""
MAX_BEHIND: Final = 10_000
"""Names below the record kept per peer (the conflict says "at least" beyond)."""
PEER_TIMEOUT_S: Final = 5.0
"""How long one call to a peer's admin may take in all, its whole answer read (a peer waits
up to its own control timeout for its server)."""
MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
"""The largest answer read from a peer (a full page of changes is under 5 MiB)."""


class PeerError(Unavailable):
    """A peer did not answer, or answered with an error or something unreadable."""


_M = TypeVar("_M", bound=msgspec.Struct)
_Paged = TypeVar("_Paged", SequencePage, WitnessPage)
"""A page of a listing: ``next_cursor`` is null on the last one."""


def http_client(token: str | None, timeout_s: float, tls: ssl.SSLContext) -> httpx.AsyncClient:
    """The client for every call to peers: the admin token when one is set, https:// peers
    verified with ``tls`` (seqgen_admin.tls.client_context), no proxies from the environment."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(headers=headers, timeout=timeout_s, trust_env=False, verify=tls)


CLOSED_TLS: Final = (
    "(an admin with --tls-client-ca closes the connection this way when the client certificate "
    "is expired or signed by a CA other than its --tls-client-ca)")
CLOSED_PLAIN: Final = "(does the peer serve https://? Then its URL is https://...)"


def failure(url: str, exc: httpx.HTTPError) -> str:
    """Why a call to a peer got no answer, in words (TLS failures explained)."""
    reason = describe_error(exc)
    if reason is None and isinstance(exc, httpx.RemoteProtocolError):
        reason = f"{exc} " + (CLOSED_TLS if url.startswith("https://") else CLOSED_PLAIN)
    return f"{url}: {reason or f'{type(exc).__name__}: {exc}'.rstrip(': ')}"


async def _get(http: httpx.AsyncClient, url: str, params: dict[str, Any], kind: type[_M],
               timeout_s: float = PEER_TIMEOUT_S) -> _M:
    """One GET to a peer: its whole answer within ``timeout_s`` and ``MAX_ANSWER_BYTES``, read
    as the message ``kind`` (its values checked by ``peer_value``)."""
    try:
        async with asyncio.timeout(timeout_s):
            status, content = await _read(http, url, params)
    except TimeoutError as exc:
        raise PeerError(f"{url}: no complete answer within {timeout_s:g} s") from exc
    except httpx.HTTPError as exc:
        raise PeerError(failure(url, exc)) from exc
    if status != 200:
        try:
            detail = msgspec.json.decode(content, type=dict[str, Any]).get("detail", "")
        except (msgspec.DecodeError, ValueError):
            detail = ""
        raise PeerError(f"{url}: HTTP {status} {str(detail)[:500]}".rstrip())
    try:
        return read_answer(content, kind, peer_value)
    except PeerError:
        raise
    except (msgspec.DecodeError, ValueError) as exc:
        raise PeerError(f"{url}: unreadable answer: {exc}") from exc


async def _read(http: httpx.AsyncClient, url: str, params: dict[str, Any]) -> tuple[int, bytes]:
    """The status and body of a GET; PeerError when the body is over ``MAX_ANSWER_BYTES``."""
    too_big = PeerError(f"{url}: the answer is over {MAX_ANSWER_BYTES} bytes")
    async with http.stream("GET", url, params=params) as response:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
            raise too_big
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise too_big
        return response.status_code, bytes(body)


def peer_value(text: str) -> int:
    """A value a peer sent: decimal digits of 0..2**63 - 1, else PeerError."""
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > MAX_VALUE:
        raise PeerError(f"not a value from 0 to {MAX_VALUE}: {text[:40]!r}")
    return int(text)


@dataclass
class PeerView:
    """What this admin knows of one peer (the cluster view)."""

    url: str
    reachable: bool = False
    instance: int | None = None
    instances: int | None = None
    version: str | None = None
    fenced: bool | None = None
    last_seen: float | None = None
    """Unix time of the peer's last answer."""
    error: str | None = None
    """Why the last poll failed (None after a success)."""
    reports: list[tuple[int, str]] = field(default_factory=list)
    """Servers the peer's admin saw go backwards (instance, its conflict), as of the last poll."""
    behind: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Names the peer's server holds below what this host witnessed it issue: name ->
    (its value, the witnessed value); at most ``MAX_BEHIND`` of them."""

    def node(self) -> Node | None:
        """The peer as the conflict rule sees it (None unless it answered the last poll)."""
        if not self.reachable or self.instance is None or self.instances is None:
            return None
        return Node(self.url, self.instance, self.instances)


class PeerReader:
    """Reads a peer's admin: all its sequences, or its witness record of one instance."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self.url = url

    async def node(self) -> Node:
        """Who the peer's server says it is (``GET /readyz``)."""
        ready = await _get(self._http, f"{self.url}/readyz", {}, Ready)
        return Node(self.url, ready.instance, ready.instances)

    async def sequences(self) -> AsyncIterator[list[tuple[str, int]]]:
        """Every sequence of the peer's server with its current value, page by page."""
        async for page in self._pages("sequences", SequencePage):
            yield [(item.name, item.current) for item in page.items]

    async def changes(self, consumer: str, epoch: str | None, ack: int, limit: int,
                      ) -> Changes:
        """One page of the peer's server's change feed for ``consumer`` (``GET /changes``)."""
        return await _get(self._http, f"{self.url}/changes", {
            "consumer": consumer, "epoch": epoch or "", "ack": ack, "limit": limit}, Changes)

    async def witnessed(self, instance: int) -> AsyncIterator[WitnessPage]:
        """The peer's witness record of ``instance``, page by page."""
        async for page in self._pages(f"witness/{instance}", WitnessPage):
            yield page

    async def _pages(self, path: str, wire: type[_Paged]) -> AsyncIterator[_Paged]:
        """The pages of a listing of the peer's admin, following ``next_cursor``."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": PAGE}
            if cursor is not None:
                params["cursor"] = cursor
            page = await _get(self._http, f"{self.url}/{path}", params, wire)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class PeerPoller:
    """Polls one peer every ``interval_s``: its view, and its changes into the witness record
    (and, with a ``follower``, offered to it: seqgen_admin.follow)."""

    def __init__(self, http: httpx.AsyncClient, url: str, interval_s: float,
                 witness: WitnessStore | None, *, clock: Callable[[], float] = time.time,
                 follower: Follower | None = None,
                 paused: Callable[[], bool] | None = None) -> None:
        self.view = PeerView(url)
        self._paused = paused
        """While it says so, the rounds are skipped (a resize is under way)."""
        self._follower = follower
        self._http = http
        self._reader = PeerReader(http, url)
        self._interval_s = interval_s
        self._witness = witness
        self._clock = clock
        self._consumer = secrets.token_hex(12)
        """This admin process as a consumer of the peer's change feed."""
        self._epoch: str | None = None
        self._ack = 0
        self._drained_at: float | None = None
        """When the last poll that drained every change was sent: whatever changed since
        changed after it (the span over which rates are measured)."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"peer {self.view.url}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            if self._paused is None or not self._paused():
                await self.poll()
            await asyncio.sleep(max(self._interval_s - (loop.time() - started), 0.0))

    async def poll(self) -> None:
        """One round: drain the peer's changes (or resync), then follow them; never raises."""
        await self._drain()
        if self._follower is not None:
            await self._follower.follow()

    async def _drain(self) -> None:
        view = self.view
        try:
            while True:
                sent_at = self._clock()
                page = await _get(self._http, f"{view.url}/changes", {
                    "consumer": self._consumer, "epoch": self._epoch or "", "ack": self._ack,
                    "limit": CHANGES_PAGE}, Changes)
                unfenced = view.fenced is True and not page.fenced
                self._saw(page)
                # Unfenced: read it in full, to see at once any name that went backwards.
                if page.resync or page.epoch != self._epoch or unfenced:
                    await self._resync(page, sent_at)
                    continue
                await self._record(page, sent_at)
                self._ack = page.seq
                if not page.more:
                    return
        except (PeerError, SeqgenError) as exc:
            if view.reachable or view.error is None:
                log.warning("peer %s: %s", view.url, exc,
                            extra={"peer": view.url, "reachable": False, "error": str(exc)})
            view.reachable = False
            view.error = str(exc)
            if view.instance is not None:
                await self._lost(view.instance, self._clock())
        except Exception as exc:
            log.exception("peer %s: unexpected error", view.url)
            view.reachable = False
            view.error = f"unexpected error: {exc}"

    def _saw(self, page: Changes) -> None:
        view = self.view
        if not view.reachable:
            log.info("peer %s answers: instance %d of %d%s", view.url, page.instance,
                     page.instances, " (fenced)" if page.fenced else "",
                     extra={"peer": view.url, "reachable": True, "instance": page.instance,
                            "instances": page.instances, "fenced": page.fenced})
        view.reachable = True
        view.error = None
        view.instance = page.instance
        view.instances = page.instances
        view.version = page.version
        view.fenced = page.fenced
        view.last_seen = self._clock()
        view.reports = [(report.instance, report.conflict[:1000]) for report in page.backwards[:100]]

    async def _resync(self, page: Changes, sent_at: float) -> None:
        """Read every sequence of the peer (the feed carries what changes meanwhile)."""
        if self._epoch is not None and page.epoch != self._epoch:
            log.info("peer %s restarted (a new epoch): reading it in full", self.view.url)
            await self._lost(page.instance, sent_at)
        async for items in self._reader.sequences():
            seen = [Seen(name, value, False) for name, value in items]
            below = await self._store(page.instance, seen)
            if not page.fenced:
                self._note_behind(seen, below)
        if page.fenced:
            await self._lost(page.instance, sent_at)
        else:
            await self._store(page.instance, [], confirmed_at=sent_at)
        self._epoch = page.epoch
        self._ack = page.seq
        self._drained_at = sent_at

    async def _record(self, page: Changes, sent_at: float) -> None:
        sample = not page.fenced
        seen = [Seen(item.name, item.current, sample and not item.jumped)
                for item in page.items]
        if self._follower is not None:  # the feed only: a resync's full listing is not offered
            self._follower.offer((s.name, s.value) for s in seen)
        if page.fenced:
            await self._store(page.instance, seen, lost_at=sent_at)
        else:
            span_s = sent_at - self._drained_at if self._drained_at is not None else None
            below = await self._store(page.instance, seen,
                                      confirmed_at=None if page.more else sent_at, span_s=span_s)
            self._note_behind(seen, below)
            if not page.more:
                self._drained_at = sent_at

    async def _store(self, instance: int, seen: list[Seen], *, confirmed_at: float | None = None,
                     lost_at: float | None = None, span_s: float | None = None,
                     ) -> dict[str, int]:
        """Record ``seen``; the names below the record (name -> the recorded value)."""
        if self._witness is None:
            return {}
        return await asyncio.to_thread(self._witness.record, instance, seen, self._clock(),
                                       confirmed_at=confirmed_at, lost_at=lost_at, span_s=span_s)

    def _note_behind(self, seen: list[Seen], below: dict[str, int]) -> None:
        """Keep the names of the unfenced peer that went below the record (a conflict)."""
        behind = self.view.behind
        new: list[str] = []
        for item in seen:
            if item.name not in below:
                behind.pop(item.name, None)
            elif item.name in behind or len(behind) < MAX_BEHIND:
                if item.name not in behind:
                    new.append(item.name)
                behind[item.name] = (item.value, below[item.name])
        if new:
            value, recorded = behind[new[0]]
            log.warning("peer %s went BACKWARDS: %d more name(s) below what this host witnessed "
                        "it issue (%r at %d, witnessed %d): it may issue those numbers again; "
                        "POST /fence on it, then POST /recover", self.view.url, len(new), new[0],
                        value, recorded)

    async def _lost(self, instance: int, at: float) -> None:
        if self._witness is not None:
            try:
                await asyncio.to_thread(self._witness.lost, instance, at)
            except SeqgenError as exc:
                log.error("%s", exc)
