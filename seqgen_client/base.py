"""What the blocking and the asyncio client share: their options and per-name memory."""

from __future__ import annotations

import random
from collections.abc import Iterable

from seqgen_client.failover import Rotation
from seqgen_client.lastseen import LastSeen
from seqgen_client.options import (
    DEFAULT_BACKOFF_S,
    DEFAULT_DEADLINE_S,
    DEFAULT_MAX_BACKOFF_S,
    DEFAULT_TIMEOUT_S,
    ClientOptions,
)
from seqgen_common.curve import KeySource

__all__ = ["ClientBase"]


class ClientBase:
    """Validated options, the endpoint rotation and the highest number seen per name.

    ``endpoints`` is one ZeroMQ URI or several (servers or proxies), used
    round-robin. ``timeout_s`` bounds one attempt on one endpoint,
    ``deadline_s`` a whole call; an endpoint that failed is skipped for
    ``backoff_s`` (doubling per failure up to ``max_backoff_s``) before it is
    probed again. Sockets are opened on first use.

    ``server_public_key`` turns on CURVE: the servers' (or proxies') public
    key, as a certificate file (``NAME.key``) or z85 text; ``client_secret_key``
    is this client's key pair (``NAME.key_secret``, or a z85 secret key), else
    an ephemeral pair is made (only servers accepting any client take it).

    ``prefetch`` > 1 makes ``next`` fetch that many numbers per round trip and
    hand them out one by one from a per-name buffer; numbers still buffered
    when the process ends are skipped.
    """

    def __init__(
        self,
        endpoints: str | Iterable[str],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        deadline_s: float = DEFAULT_DEADLINE_S,
        backoff_s: float = DEFAULT_BACKOFF_S,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        server_public_key: KeySource | None = None,
        client_secret_key: KeySource | None = None,
        prefetch: int = 1,
    ) -> None:
        self.options = ClientOptions.build(
            endpoints,
            timeout_s=timeout_s,
            deadline_s=deadline_s,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            server_public_key=server_public_key,
            client_secret_key=client_secret_key,
            prefetch=prefetch,
        )
        opts = self.options
        self._prefetch = opts.prefetch
        self._endpoints = opts.endpoints
        self._first_timeout_s = min(opts.timeout_s, opts.deadline_s)
        """The first attempt of a call may not outlast the call's deadline."""
        self._rotation = Rotation(
            len(opts.endpoints), opts.backoff_s, opts.max_backoff_s,
            start=random.randrange(len(opts.endpoints)),
        )
        self._last = LastSeen()
        self._closed = False
        self._setup()

    def _setup(self) -> None:
        """The subclass's own state (sockets are opened on first use)."""

    @property
    def endpoints(self) -> tuple[str, ...]:
        return self._endpoints

    def last(self, name: str) -> int:
        """The highest number this client has received for ``name`` (0 when none).

        With prefetch this counts numbers received but still buffered.
        """
        return self._last.get(name)
