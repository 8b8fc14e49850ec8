"""The admin's connections: a header timeout and a cap per client address.

uvicorn times out a keep-alive connection only after it has answered a request
on it: a connection that never sends a whole request head (idle from the start,
or slowloris: a byte now and then) stays open for ever, and enough of them take
every slot of ``limit_concurrency``, so health checks and the peers' witness
polls get 503 (issue 22). ``guarded_protocol`` returns uvicorn's h11 protocol
with two guards, pure asyncio, no change to the app:

* **Header timeout.** From the moment a connection opens, and from the first
  byte after each answer, a request's head (and body) must arrive within
  ``header_timeout_s``; else the connection is closed. While a request is
  being answered nothing is timed here (a recovery may take long); after the
  answer uvicorn's own keep-alive timeout applies.
* **Connections per client address.** An address that holds
  ``max_per_client`` connections gets ``503`` and a close on the next one,
  before any of its bytes is read.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Final

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ConnectionLimits", "guarded_protocol"]

log = logging.getLogger(__name__)

_BODY: Final = b'{"detail":"too many connections from this address"}'
REFUSAL: Final = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                  b"connection: close\r\nretry-after: 1\r\ncontent-length: "
                  + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY)
"""The answer to a connection over the cap (written at once, then closed)."""


@dataclass
class ConnectionLimits:
    header_timeout_s: float
    max_per_client: int
    open: dict[str, int] = field(default_factory=dict)
    """Open connections per client address."""
    refused: int = 0
    """Connections refused over the cap since start."""
    timed_out: int = 0
    """Connections closed by the header timeout since start."""


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with ``limits`` (pass it as ``uvicorn.Config(http=...)``)."""

    class Guarded(H11Protocol):
        _address: str | None = None
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            peer: Any = transport.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
            held = limits.open.get(address, 0)
            if held >= limits.max_per_client:
                limits.refused += 1
                if limits.refused == 1 or limits.refused % 1000 == 0:
                    log.warning("%s holds %d connections (--max-connections-per-client): "
                                "refusing more (%d refused since start)", address, held,
                                limits.refused)
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(REFUSAL)
                transport.close()
                return
            limits.open[address] = held + 1
            self._address = address
            super().connection_made(transport)  # type: ignore[arg-type]
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._address is None:
                return
            if self._timer is None and self._waiting():
                self._arm()
            super().data_received(data)

        def on_response_complete(self) -> None:
            self._disarm()  # uvicorn's keep-alive timeout takes over until the next byte
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            address = self._address
            if address is None:
                return  # refused: uvicorn never saw it
            self._address = None
            self._disarm()
            left = limits.open.get(address, 1) - 1
            if left > 0:
                limits.open[address] = left
            else:
                limits.open.pop(address, None)
            super().connection_lost(exc)

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
            if self._waiting() and not self.transport.is_closing():
                limits.timed_out += 1
                log.debug("%s: no whole request within %gs: closed", self._address,
                          limits.header_timeout_s)
                self.transport.close()

    return Guarded
