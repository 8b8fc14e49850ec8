"""The settings both clients share, validated once at construction.

Everything after the endpoints is keyword-only in the clients, so options can
be added (CURVE keys, prefetch, coalescing) without breaking any caller.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from seqgen_common.curve import CurveClient, KeySource, client_keys
from seqgen_common.endpoints import validate_zmq
from seqgen_common.limits import DEFAULT_PUBLIC_PORT, MAX_COUNT

__all__ = [
    "DEFAULT_BACKOFF_S",
    "DEFAULT_DEADLINE_S",
    "DEFAULT_ENDPOINT",
    "DEFAULT_MAX_BACKOFF_S",
    "DEFAULT_TIMEOUT_S",
    "ClientOptions",
]

DEFAULT_ENDPOINT = f"tcp://127.0.0.1:{DEFAULT_PUBLIC_PORT}"
DEFAULT_TIMEOUT_S = 1.0
DEFAULT_DEADLINE_S = 5.0
DEFAULT_BACKOFF_S = 1.0
DEFAULT_MAX_BACKOFF_S = 30.0


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    endpoints: tuple[str, ...]
    """ZeroMQ URIs of servers or proxies, tried round-robin."""
    timeout_s: float = DEFAULT_TIMEOUT_S
    """How long one attempt on one endpoint waits for its reply."""
    deadline_s: float = DEFAULT_DEADLINE_S
    """How long one call may take in all, failovers included."""
    backoff_s: float = DEFAULT_BACKOFF_S
    """How long a failed endpoint is skipped before it is probed again (doubles per failure)."""
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S
    """The longest back-off."""
    curve: CurveClient | None = None
    """CURVE keys for every connection; None: plain connections."""
    prefetch: int = 1
    """Numbers fetched per round trip by ``next`` (1: no prefetch)."""
    coalesce: bool = True
    """Concurrent ``next`` calls for one name share one round trip (seqgen_client.lanes)."""
    hedge: bool = True
    """A request unanswered within the hedge delay goes to the next healthy endpoint too
    (seqgen_common.hedging)."""

    @classmethod
    def build(
        cls,
        endpoints: str | Iterable[str],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        deadline_s: float = DEFAULT_DEADLINE_S,
        backoff_s: float = DEFAULT_BACKOFF_S,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        server_public_key: KeySource | None = None,
        client_secret_key: KeySource | None = None,
        prefetch: int = 1,
        coalesce: bool = True,
        hedge: bool = True,
    ) -> ClientOptions:
        """Validated options; ValueError or TypeError says what is wrong."""
        uris = (endpoints,) if isinstance(endpoints, str) else tuple(endpoints)
        if not uris:
            raise ValueError("at least one endpoint is needed")
        for uri in uris:
            if not isinstance(uri, str):
                raise TypeError(f"an endpoint must be a string, got {uri!r}")
            validate_zmq(uri)
        if len(set(uris)) != len(uris):
            raise ValueError("an endpoint is listed twice")
        backoff = _positive("backoff_s", backoff_s)
        max_backoff = _positive("max_backoff_s", max_backoff_s)
        if max_backoff < backoff:
            raise ValueError("max_backoff_s must not be less than backoff_s")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int):
            raise TypeError(f"prefetch must be an integer, got {prefetch!r}")
        if not 1 <= prefetch <= MAX_COUNT:
            raise ValueError(f"prefetch must be between 1 and {MAX_COUNT}, got {prefetch}")
        if not isinstance(coalesce, bool):
            raise TypeError(f"coalesce must be True or False, got {coalesce!r}")
        if not isinstance(hedge, bool):
            raise TypeError(f"hedge must be True or False, got {hedge!r}")
        return cls(
            endpoints=uris,
            timeout_s=_positive("timeout_s", timeout_s),
            deadline_s=_positive("deadline_s", deadline_s),
            backoff_s=backoff,
            max_backoff_s=max_backoff,
            curve=client_keys(server_public_key, client_secret_key),
            prefetch=prefetch,
            coalesce=coalesce,
            hedge=hedge,
        )
