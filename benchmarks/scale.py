"""Memory and restart time of a server holding many names (not a race: no floor)."""

from __future__ import annotations

import time

import msgspec

from benchmarks.daemons import daemons, rpc, server_counters
from benchmarks.procstat import rss_mb

__all__ = ["scale"]


def scale(names: int) -> dict[str, float]:
    """RSS and time until it answers of a server started on a store of ``names`` sequences."""
    from seqgen_server.store import Store  # noqa: PLC0415 - only this figure needs the server's store

    with daemons() as group:
        data = group.tmp / "scale"
        store = Store.open(data, 1, 1)
        chunk = 100_000
        for begin in range(0, names, chunk):
            end = min(begin + chunk, names)
            store.write_marks((f"customer-{i:08d}", 1000 + i) for i in range(begin, end))
        store.close()
        began = time.perf_counter()
        server = group.seqgen_server(1, 1, data)
        restart_s = time.perf_counter() - began
        for i in range(0, names, max(names // 1000, 1)):  # touch a sample of them
            reply = rpc(server.bind, msgspec.json.encode([f"customer-{i:08d}", "0"]), 5)
            if reply is None or not reply.startswith(b"[null"):
                raise RuntimeError(f"scale: customer-{i:08d}: {reply!r}")
        assert server.control is not None
        server_counters(server.control)  # answers its control socket too
        return {"scale_names": names, "scale_rss_mb": rss_mb(server.pid), "scale_restart_s": restart_s}
