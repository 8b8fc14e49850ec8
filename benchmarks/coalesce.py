"""Which coalescing options the seqgen under test has (issue 13; planned, maybe absent).

The client side has ``Client(..., coalesce=...)`` and ``AsyncClient(...,
coalesce=...)``; the proxy has ``seqgen-proxy --no-coalesce``. Scenarios
that compare coalescing on against off need them and print "n/a (not
implemented)" without them.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["Coalescing", "detect"]


@dataclass(frozen=True)
class Coalescing:
    client: bool
    """Client and AsyncClient both take ``coalesce``."""
    proxy: bool
    """seqgen-proxy has ``--no-coalesce``."""

    def describe(self) -> str:
        def word(present: bool) -> str:
            return "present" if present else "absent (not implemented)"

        return (f"Client/AsyncClient coalesce=: {word(self.client)}; "
                f"seqgen-proxy --no-coalesce: {word(self.proxy)}")


def detect() -> Coalescing:
    from seqgen_client import AsyncClient, Client  # noqa: PLC0415

    client = all("coalesce" in inspect.signature(cls).parameters for cls in (Client, AsyncClient))
    helped = subprocess.run([sys.executable, "-m", "seqgen_proxy", "--help"],
                            capture_output=True, text=True, timeout=60, check=False)
    return Coalescing(client=client, proxy="--no-coalesce" in helped.stdout)
