"""seqgen client library: numbers from seqgen servers or proxies, with failover.

    from seqgen_client import Client, AsyncClient, SeqgenError, Unavailable

    with Client(["tcp://10.0.0.11:6410", "tcp://10.0.0.12:6410"]) as seq:
        n = seq.next("invoice")             # -> int
        ns = seq.next_many("invoice", 50)   # -> list[int]

    async with AsyncClient([...]) as seq:
        n = await seq.next("invoice")

Needs only pyzmq and msgspec (and seqgen_common). The exceptions are those of
``seqgen_common.errors``, re-exported here.
"""

from __future__ import annotations

from seqgen_client.async_client import AsyncClient
from seqgen_client.client import Client
from seqgen_common import __version__
from seqgen_common.errors import (
    AuthError,
    ErrorCode,
    ExhaustedError,
    InternalError,
    RequestError,
    SeqgenError,
    Unavailable,
)

__all__ = [
    "AsyncClient",
    "AuthError",
    "Client",
    "ErrorCode",
    "ExhaustedError",
    "InternalError",
    "RequestError",
    "SeqgenError",
    "Unavailable",
    "__version__",
]
