"""A fake peer admin for the hostile-answer tests (issue 22): a small real HTTP server.

It answers ``/readyz``, ``/sequences``, ``/witness/{k}`` and ``/changes`` as a
peer admin would, from values the test sets, and can be made hostile: values
and rates no cluster produces, endless pages, huge bodies, answers that trickle.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.conftest import free_port


@dataclass
class Behaviour:
    """What the fake peer answers; the test changes it between requests."""

    instance: int = 2
    instances: int = 2
    sequences: dict[str, str] = field(default_factory=dict)
    """Its own server's values (strings, as on the wire: they may be out of range)."""
    made_up: int = 0
    """Names /sequences lists beyond ``sequences`` (never in /changes)."""
    witnessed: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Its record of the instance asked: name -> (value, rate)."""
    raw_witness_items: str | None = None
    """When set, the JSON text of the witness page's items (for numbers JSON cannot carry)."""
    stale_s: float | None = 0.1
    endless: bool = False
    """Every listing page has a next cursor."""
    huge_bytes: int = 0
    """When above 0, /sequences answers this many bytes of a JSON string."""
    trickle_s: float = 0.0
    """When above 0, every answer is sent one byte at a time, this long apart."""
    requests: list[str] = field(default_factory=list)


def _page(items: list[dict[str, object]], endless: bool, cursor: str | None) -> dict[str, object]:
    next_cursor = f"{cursor or ''}z" if endless else None
    return {"items": items, "next_cursor": next_cursor}


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        b = self.behaviour
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        b.requests.append(parts.path)
        cursor = query.get("cursor")
        if parts.path == "/readyz":
            body: object = {"status": "ready", "version": "0", "instance": b.instance,
                            "instances": b.instances}
        elif parts.path == "/sequences" and b.huge_bytes:
            self._send(b'{"items": [], "next_cursor": null, "pad": "' + b"x" * b.huge_bytes + b'"}')
            return
        elif parts.path == "/sequences":
            listed = {**b.sequences, **{f"made-up/{i:06d}": "7" for i in range(b.made_up)}}
            items = [] if cursor and not b.endless else [
                {"name": n, "current": v, "durable": v} for n, v in listed.items()]
            body = _page(items, b.endless, cursor)
        elif parts.path.startswith("/witness/"):
            items = [{"name": n, "value": v, "seen_at": "2026-01-01T00:00:00Z", "rate": r}
                     for n, (v, r) in b.witnessed.items()]
            page = _page(items, b.endless, cursor)
            page.update(instance=int(parts.path.rsplit("/", 1)[1]), interval_s=0.2,
                        confirmed_at=None, lost_at=None, stale_s=b.stale_s)
            text = json.dumps(page)
            if b.raw_witness_items is not None:
                text = text.replace(json.dumps(items), b.raw_witness_items)
            self._send(text.encode())
            return
        elif parts.path == "/changes":
            body = {"version": "0", "instance": b.instance, "instances": b.instances,
                    "epoch": "e1", "fenced": False, "seq": int(query.get("ack", 0)) + 1,
                    "resync": query.get("epoch") != "e1", "more": False,
                    "items": [{"name": n, "current": v, "jumped": False}
                              for n, v in b.sequences.items()]}
        else:
            self._send(b'{"detail": "not found"}', 404)
            return
        self._send(json.dumps(body).encode())

    def _send(self, data: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        pause = self.behaviour.trickle_s
        try:
            if pause > 0:
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(pause)
            else:
                self.wfile.write(data)
        except OSError:
            pass  # the admin gave up on us


@contextmanager
def fake_peer(behaviour: Behaviour) -> Iterator[str]:
    """Serve ``behaviour`` on a free loopback port; yields the peer's base URL."""
    handler = type("Handler", (_Handler,), {"behaviour": behaviour})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
