"""The admin's connections: a header timeout, a cap per client address, idle ones evicted.

uvicorn times out a keep-alive connection only after it has answered a request
on it: a connection that never sends a whole request head (idle from the start,
or slowloris: a byte now and then) stays open for ever, and enough of them take
every slot of ``limit_concurrency``, so health checks and the peers' witness
polls get 503 (issue 22). ``guarded_protocol`` returns uvicorn's h11 protocol
with these guards, pure asyncio, no change to the app:

* **Header timeout.** From the moment a connection opens, and from the first
  byte after each answer, a request (head and body) must arrive within
  ``header_timeout_s``; else the connection is closed. While a request is
  being answered nothing is timed here (a recovery may take long); after the
  answer uvicorn's own keep-alive timeout applies.
* **Idle connections make room.** A connection is *idle* while it has no
  request being answered (nothing sent yet, half a request head, or kept alive
  after an answer). When ``max_idle`` connections are idle, a new connection
  closes the one idle the longest: a client that sends its request at once is
  served however many idle connections an attacker opens.
* **Connections per client address.** An address holding ``max_per_client``
  connections: its new one closes that address's longest idle one, or, when
  all of them are being answered, gets ``503`` and is closed before any of its
  bytes is read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from uvicorn.protocols.http.h11_impl import H11Protocol

from seqgen_admin.tls import NO_CLIENT_CERTIFICATE

__all__ = ["REFUSAL", "ConnectionCollector", "ConnectionLimits", "guarded_protocol"]

log = logging.getLogger(__name__)

_BODY: Final = b'{"detail":"too many connections from this address"}'
REFUSAL: Final = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                  b"connection: close\r\nretry-after: 1\r\ncontent-length: "
                  + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY)
"""The answer to a connection over the cap (written at once, then closed)."""


class _Guarded(Protocol):
    address: str | None

    def evict(self) -> None: ...


@dataclass
class ConnectionLimits:
    header_timeout_s: float
    max_per_client: int
    max_idle: int
    """Idle connections kept at once, in all (the longest idle is closed for a new one)."""
    open: dict[str, int] = field(default_factory=dict)
    """Open connections per client address."""
    idle: OrderedDict[_Guarded, None] = field(default_factory=OrderedDict)
    """Idle connections, the longest idle first."""
    refused: int = 0
    """Connections refused over the cap since start."""
    evicted: int = 0
    """Idle connections closed to make room since start."""
    timed_out: int = 0
    """Connections closed by the header timeout since start."""
    no_certificate: int = 0
    """TLS connections without a client certificate, answered 403 (mutual TLS)."""

    def oldest_idle(self, address: str | None = None) -> _Guarded | None:
        for conn in self.idle:
            if address is None or conn.address == address:
                return conn
        return None


class ConnectionCollector(Collector):
    """The guards' figures as ``seqgen_admin_connections_*`` metrics."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self._limits = limits

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        limits = self._limits
        return [
            GaugeMetricFamily("seqgen_admin_connections_open", "HTTP connections open now.",
                              value=sum(list(limits.open.values()))),
            GaugeMetricFamily("seqgen_admin_connections_idle", "Open HTTP connections with no "
                              "request being answered.", value=len(limits.idle)),
            CounterMetricFamily("seqgen_admin_connections_refused", "Connections refused (503): "
                                "their address held --max-connections-per-client being answered.",
                                value=limits.refused),
            CounterMetricFamily("seqgen_admin_connections_evicted", "Idle connections closed to "
                                "make room for new ones.", value=limits.evicted),
            CounterMetricFamily("seqgen_admin_connections_timed_out", "Connections closed by "
                                "--header-timeout.", value=limits.timed_out),
            CounterMetricFamily("seqgen_admin_connections_without_certificate", "TLS "
                                "connections without a client certificate, answered 403 "
                                "(--tls-client-ca).", value=limits.no_certificate),
        ]


def _answer(status: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer with a JSON ``detail``, after which the connection is closed."""
    body = json.dumps({"detail": detail}).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


def _has_certificate(transport: asyncio.BaseTransport) -> bool:
    ssl_object = transport.get_extra_info("ssl_object")
    return ssl_object is not None and ssl_object.getpeercert() is not None


def guarded_protocol(limits: ConnectionLimits, *,
                     client_certificate: bool = False) -> type[H11Protocol]:
    """uvicorn's h11 protocol with ``limits`` (pass it as ``uvicorn.Config(http=...)``).

    ``client_certificate``: mutual TLS (--tls-client-ca): a connection whose TLS handshake
    brought no client certificate is answered 403 with the reason and closed before uvicorn
    sees it (seqgen_admin.tls asks for the certificate as optional, so that the client is
    told why instead of seeing the handshake fail).
    """
    no_certificate = _answer("403 Forbidden", NO_CLIENT_CERTIFICATE)

    class Guarded(H11Protocol):
        address: str | None = None
        """The client's address while this connection is counted."""
        _accepted = False
        """Handed to uvicorn (not refused)."""
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            peer: Any = transport.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
            if client_certificate and not _has_certificate(transport):
                limits.no_certificate += 1
                if limits.no_certificate == 1 or limits.no_certificate % 1000 == 0:
                    log.warning("%s connected without a client certificate (mutual TLS): "
                                "answered 403 (%d since start)", address, limits.no_certificate)
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(no_certificate)
                transport.close()
                return
            if limits.open.get(address, 0) >= limits.max_per_client:
                victim = limits.oldest_idle(address)
                if victim is None:
                    self._refuse(transport, address)
                    return
                victim.evict()
            if len(limits.idle) >= limits.max_idle and (victim := limits.oldest_idle()) is not None:
                victim.evict()
            limits.open[address] = limits.open.get(address, 0) + 1
            self.address = address
            self._accepted = True
            super().connection_made(transport)  # type: ignore[arg-type]
            self._idle(True)

        def data_received(self, data: bytes) -> None:
            if self.address is None:
                return
            if self._timer is None and self._waiting():
                self._arm()
            super().data_received(data)
            if not self._waiting():
                self._idle(False)  # a whole request: being answered

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.address is not None and not self.transport.is_closing() and self._waiting():
                self._disarm()  # uvicorn's keep-alive timeout applies until the next byte
                limits.idle[self] = None

        def connection_lost(self, exc: Exception | None) -> None:
            if not self._accepted:
                return  # refused: uvicorn never saw it
            self._forget()
            super().connection_lost(exc)

        def evict(self) -> None:
            """Close this idle connection to make room for a new one."""
            limits.evicted += 1
            if limits.evicted == 1 or limits.evicted % 1000 == 0:
                log.warning("idle connections: closing the longest idle (%s) for a new one "
                            "(%d since start)", self.address, limits.evicted)
            self._forget()
            self.transport.close()

        def _forget(self) -> None:
            address, self.address = self.address, None
            self._disarm()
            limits.idle.pop(self, None)
            if address is None:
                return
            left = limits.open.get(address, 1) - 1
            if left > 0:
                limits.open[address] = left
            else:
                limits.open.pop(address, None)

        def _refuse(self, transport: asyncio.BaseTransport, address: str) -> None:
            limits.refused += 1
            if limits.refused == 1 or limits.refused % 1000 == 0:
                log.warning("%s holds %d connections being answered (--max-connections-per-"
                            "client): refusing more (%d refused since start)", address,
                            limits.open.get(address, 0), limits.refused)
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(REFUSAL)
            transport.close()

        def _idle(self, idle: bool) -> None:
            if idle:
                limits.idle[self] = None
                self._arm()
            else:
                limits.idle.pop(self, None)
                self._disarm()

        def _waiting(self) -> bool:
            """Whether a request's head or body is still to come (nothing being answered)."""
            cycle = self.cycle
            return cycle is None or cycle.response_complete or cycle.more_body

        def _arm(self) -> None:
            self._disarm()
            self._timer = self.loop.call_later(limits.header_timeout_s, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            if self.address is not None and self._waiting() and not self.transport.is_closing():
                limits.timed_out += 1
                log.debug("%s: no whole request within %gs: closed", self.address,
                          limits.header_timeout_s)
                self._forget()
                self.transport.close()

    return Guarded
