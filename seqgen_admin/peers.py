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
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import httpx
import msgspec

from seqgen_admin.cluster import Node
from seqgen_admin.tls import describe_error
from seqgen_admin.witness import Seen, WitnessStore
from seqgen_common.errors import SeqgenError, Unavailable

__all__ = [
    "PAGE",
    "PeerError",
    "PeerPoller",
    "PeerReader",
    "PeerView",
    "WitnessPageWire",
    "failure",
    "http_client",
]

log = logging.getLogger(__name__)

PAGE: Final = 1000
"""Sequences (and witnessed names) per page when a peer is read in full."""
CHANGES_PAGE: Final = 5000
"""Changed names per /changes page."""


class PeerError(Unavailable):
    """A peer did not answer, or answered with an error or something unreadable."""


# ---- what peers send (decoded with msgspec: a page may hold thousands of names) -------


class _Wire(msgspec.Struct, forbid_unknown_fields=False):
    pass


class _ChangeWire(_Wire):
    name: str
    current: str
    jumped: bool = False


class _ChangesWire(_Wire):
    version: str
    instance: int
    instances: int
    epoch: str
    fenced: bool
    seq: int
    resync: bool
    more: bool
    items: list[_ChangeWire]


class _SequenceWire(_Wire):
    name: str
    current: str


class _PageWire(_Wire):
    """A page of a listing: ``next_cursor`` is null on the last one."""

    next_cursor: str | None


class _SequencesWire(_PageWire):
    items: list[_SequenceWire]


class _WitnessItemWire(_Wire):
    name: str
    value: str
    rate: float


class WitnessPageWire(_PageWire):
    instance: int
    items: list[_WitnessItemWire]
    interval_s: float
    stale_s: float | None


_W = TypeVar("_W", bound=_Wire)
_Paged = TypeVar("_Paged", bound=_PageWire)


def http_client(token: str | None, timeout_s: float, tls: ssl.SSLContext) -> httpx.AsyncClient:
    """The client for every call to peers: the admin token when one is set, https:// peers
    verified with ``tls`` (seqgen_admin.tls.client_context), no proxies from the environment."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(headers=headers, timeout=timeout_s, trust_env=False, verify=tls)


CLOSED_TLS: Final = (
    "(an admin with --tls-client-ca closes the connection this way when the client certificate "
    "is missing, expired or signed by a CA other than its --tls-client-ca)")
CLOSED_PLAIN: Final = "(does the peer serve https://? Then its URL is https://...)"


def failure(url: str, exc: httpx.HTTPError) -> str:
    """Why a call to a peer got no answer, in words (TLS failures explained)."""
    reason = describe_error(exc)
    if reason is None and isinstance(exc, httpx.RemoteProtocolError):
        reason = f"{exc} " + (CLOSED_TLS if url.startswith("https://") else CLOSED_PLAIN)
    return f"{url}: {reason or f'{type(exc).__name__}: {exc}'.rstrip(': ')}"


async def _get(http: httpx.AsyncClient, url: str, params: dict[str, Any], kind: type[_W]) -> _W:
    try:
        response = await http.get(url, params=params)
    except httpx.HTTPError as exc:
        raise PeerError(failure(url, exc)) from exc
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", "")
        except ValueError:
            detail = ""
        raise PeerError(f"{url}: HTTP {response.status_code} {detail}".rstrip())
    try:
        return msgspec.json.decode(response.content, type=kind)
    except (msgspec.DecodeError, ValueError) as exc:
        raise PeerError(f"{url}: unreadable answer: {exc}") from exc


def _value(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise PeerError(f"not a value: {text!r}")
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

    async def sequences(self) -> AsyncIterator[list[tuple[str, int]]]:
        """Every sequence of the peer's server with its current value, page by page."""
        async for page in self._pages("sequences", _SequencesWire):
            yield [(item.name, _value(item.current)) for item in page.items]

    async def witnessed(self, instance: int) -> AsyncIterator[WitnessPageWire]:
        """The peer's witness record of ``instance``, page by page."""
        async for page in self._pages(f"witness/{instance}", WitnessPageWire):
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
    """Polls one peer every ``interval_s``: its view, and its changes into the witness record."""

    def __init__(self, http: httpx.AsyncClient, url: str, interval_s: float,
                 witness: WitnessStore | None, clock: Callable[[], float] = time.time) -> None:
        self.view = PeerView(url)
        self._http = http
        self._reader = PeerReader(http, url)
        self._interval_s = interval_s
        self._witness = witness
        self._clock = clock
        self._consumer = secrets.token_hex(12)
        """This admin process as a consumer of the peer's change feed."""
        self._epoch: str | None = None
        self._ack = 0
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
            await self.poll()
            await asyncio.sleep(max(self._interval_s - (loop.time() - started), 0.0))

    async def poll(self) -> None:
        """One round: drain the peer's changes (or resync); never raises."""
        view = self.view
        try:
            while True:
                sent_at = self._clock()
                page = await _get(self._http, f"{view.url}/changes", {
                    "consumer": self._consumer, "epoch": self._epoch or "", "ack": self._ack,
                    "limit": CHANGES_PAGE}, _ChangesWire)
                self._saw(page)
                if page.resync or page.epoch != self._epoch:
                    await self._resync(page, sent_at)
                    continue
                await self._record(page, sent_at)
                self._ack = page.seq
                if not page.more:
                    return
        except (PeerError, SeqgenError) as exc:
            if view.reachable or view.error is None:
                log.warning("peer %s: %s", view.url, exc)
            view.reachable = False
            view.error = str(exc)
            if view.instance is not None:
                await self._lost(view.instance, self._clock())
        except Exception as exc:
            log.exception("peer %s: unexpected error", view.url)
            view.reachable = False
            view.error = f"unexpected error: {exc}"

    def _saw(self, page: _ChangesWire) -> None:
        view = self.view
        if not view.reachable:
            log.info("peer %s answers: instance %d of %d%s", view.url, page.instance,
                     page.instances, " (fenced)" if page.fenced else "")
        view.reachable = True
        view.error = None
        view.instance = page.instance
        view.instances = page.instances
        view.version = page.version
        view.fenced = page.fenced
        view.last_seen = self._clock()

    async def _resync(self, page: _ChangesWire, sent_at: float) -> None:
        """Read every sequence of the peer (the feed carries what changes meanwhile)."""
        if self._epoch is not None and page.epoch != self._epoch:
            log.info("peer %s restarted (a new epoch): reading it in full", self.view.url)
            await self._lost(page.instance, sent_at)
        async for items in self._reader.sequences():
            await self._store(page.instance, [Seen(name, value, False) for name, value in items])
        if page.fenced:
            await self._lost(page.instance, sent_at)
        else:
            await self._store(page.instance, [], confirmed_at=sent_at)
        self._epoch = page.epoch
        self._ack = page.seq

    async def _record(self, page: _ChangesWire, sent_at: float) -> None:
        sample = not page.fenced
        seen = [Seen(item.name, _value(item.current), sample and not item.jumped)
                for item in page.items]
        if page.fenced:
            await self._store(page.instance, seen, lost_at=sent_at)
        else:
            await self._store(page.instance, seen, confirmed_at=None if page.more else sent_at)

    async def _store(self, instance: int, seen: list[Seen], *, confirmed_at: float | None = None,
                     lost_at: float | None = None) -> None:
        if self._witness is None:
            return
        await asyncio.to_thread(self._witness.record, instance, seen, self._clock(),
                                confirmed_at=confirmed_at, lost_at=lost_at)

    async def _lost(self, instance: int, at: float) -> None:
        if self._witness is not None:
            try:
                await asyncio.to_thread(self._witness.lost, instance, at)
            except SeqgenError as exc:
                log.error("%s", exc)
