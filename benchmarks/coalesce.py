"""Which coalescing options the seqgen under test has (coalescing came with issue 13).

The client side has ``Client(..., coalesce=...)`` and ``AsyncClient(...,
coalesce=...)``; the proxy has ``seqgen-proxy --no-coalesce``. Both are
implemented; they are still looked for, so the benchmarks also run against a
tree from before issue 13, where scenarios that compare coalescing on against
off print "n/a (not implemented)".
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
