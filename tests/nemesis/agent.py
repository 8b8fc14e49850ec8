"""The observer on a client host: readiness by real requests, and the servers' values.

    python -m tests.nemesis.agent '<AgentConfig as JSON>'

reads one JSON command per line on standard input and answers each with one
JSON line on standard output:

- ``{"op": "ready", "timeout_s": 60, "peered": false, "only": null}``: until every public
  endpoint (servers and proxies) has handed out a number and every admin
  answered ``/readyz`` with 200 (with ``peered``, also until its ``/cluster``
  shows every other admin reachable); with ``only`` (labels), just those, and
  ``peered`` counts only the admins among them. Answer: ``{"ok", "elapsed_s", "failing"}``.
- ``{"op": "converge", "name": "busy", "drift": 100, "timeout_s": 30}``: poll
  each admin's ``GET /sequences/{name}`` until all answer and their current
  values lie within ``drift`` of each other. Answer: ``{"ok", "t_all_up",
  "t_converged", "first_spread", "max_spread", "polls"}`` (times are
  time.monotonic, the clock of every namespace).
- ``{"op": "stateless", "endpoints": [...], "name": "n", "calls": 50, "client": true}``:
  calls made as callers that carry nothing make them: each a new ``Client(endpoints)``
  (``client``), else a fresh REQ socket to the first endpoint with ``last`` "0".
  Answer: ``{"calls": [[t0, t1, value or null], ...]}``.
- ``{"op": "close", "behind": URI, "ahead": URI, "name": "n", "drift": 100, "timeout_s": 20}``:
  stateless requests to both servers in turn until the one behind hands out a number
  within ``drift`` of the latest from the one ahead. Answer: ``{"ok", "t_close",
  "behind", "ahead", "rounds"}``.

- ``{"op": "reply", "endpoint": URI, "name": "n"}``: one request (``last`` "0") on a
  fresh socket. Answer: ``{"reply": the decoded reply, or null when none came in time}``.
- ``{"op": "http", "method": "POST", "url": URL, "body": {...}, "token": "t", "timeout_s": 30}``:
  one request to an admin (``token``: sent as the bearer token). Answer: ``{"status": the
  HTTP status or null, "body": the decoded JSON or the text, "error": the exception when
  no answer came, "t0", "t1"}`` (time.monotonic, before and after).

It runs in a client host's namespace because the suite's addresses exist only there.
"""

from __future__ import annotations

import ssl
import sys
import time

import httpx
import msgspec
import zmq

from seqgen_client import Client
from seqgen_common.errors import SeqgenError

ATTEMPT_TIMEOUT_S = 0.5
POLL_INTERVAL_S = 0.1


class AgentConfig(msgspec.Struct, frozen=True):
    publics: dict[str, str]
    """label -> ZeroMQ endpoint of a server or proxy"""
    admins: dict[str, str]
    """label -> base URL of an admin (https://, mutual TLS)"""
    tls: dict[str, str] | None = None
    """ca, cert, key: the files the agent verifies https:// admins with and presents to them
    (None: the admins speak plain HTTP)"""
    probe_name: str = "probe"


class Ready(msgspec.Struct):
    op: str
    timeout_s: float = 60.0
    peered: bool = False
    """Also wait until every admin's /cluster shows every peer reachable (over mutual TLS)."""
    only: list[str] | None = None
    """The labels (publics and admins) to wait for; None: all of them."""


class Reply(msgspec.Struct):
    op: str
    endpoint: str
    name: str


class Http(msgspec.Struct):
    op: str
    url: str
    method: str = "GET"
    body: dict[str, object] | None = None
    token: str | None = None
    timeout_s: float = 5.0


class Converge(msgspec.Struct):
    op: str
    name: str
    drift: int
    timeout_s: float = 30.0


class Stateless(msgspec.Struct):
    op: str
    endpoints: list[str]
    name: str
    calls: int
    client: bool = False


class Close(msgspec.Struct):
    op: str
    behind: str
    ahead: str
    name: str
    drift: int
    timeout_s: float = 20.0


def reply(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, name: str) -> object:
    """One request (``last`` "0") on a fresh REQ socket; the decoded reply, None when none came
    in time."""
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(msgspec.json.encode([name, "0"]))
        if not sock.poll(int(ATTEMPT_TIMEOUT_S * 1000)):
            return None
        return msgspec.json.decode(sock.recv())
    finally:
        sock.close()


def number(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, name: str) -> int | None:
    """One request (``last`` "0") on a fresh REQ socket; its number, None when none came in time."""
    answer = reply(ctx, endpoint, name)
    ok = isinstance(answer, list) and len(answer) == 2 and answer[0] is None
    return int(answer[1]) if ok else None  # type: ignore[index]


def one_number(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, name: str) -> bool:
    """One request on a fresh REQ socket; True when it got a number in time."""
    return number(ctx, endpoint, name) is not None


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        verify: ssl.SSLContext | bool = True
        if config.tls is not None:
            verify = ssl.create_default_context(cafile=config.tls["ca"])
            verify.load_cert_chain(config.tls["cert"], config.tls["key"])
        self.http = httpx.Client(timeout=ATTEMPT_TIMEOUT_S, verify=verify)

    def _admin_ready(self, base: str, peers_wanted: int | None) -> bool:
        """/readyz answers 200; with ``peers_wanted``, /cluster shows that many peers, all
        reachable."""
        try:
            if self.http.get(f"{base}/readyz").status_code != 200:
                return False
            if peers_wanted is None:
                return True
            peers = self.http.get(f"{base}/cluster").json()["peers"]
            return len(peers) == peers_wanted and all(p["reachable"] for p in peers)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return False

    def ready(self, cmd: Ready) -> dict[str, object]:
        started = time.monotonic()
        labels = set(self.config.publics) | set(self.config.admins)
        failing = labels if cmd.only is None else labels & set(cmd.only)
        unknown = set(cmd.only or ()) - labels
        if unknown:
            return {"ok": False, "elapsed_s": 0.0, "failing": sorted(unknown)}
        peers_wanted = len(failing & set(self.config.admins)) - 1 if cmd.peered else None
        while failing:
            for label in sorted(failing):
                if label in self.config.publics:
                    ok = one_number(self.ctx, self.config.publics[label], self.config.probe_name)
                else:
                    ok = self._admin_ready(self.config.admins[label], peers_wanted)
                if ok:
                    failing.discard(label)
            if not failing or time.monotonic() - started > cmd.timeout_s:
                break
            time.sleep(POLL_INTERVAL_S)  # between rounds of real requests
        return {"ok": not failing, "elapsed_s": time.monotonic() - started, "failing": sorted(failing)}

    def _current(self, base: str, name: str) -> int | None:
        try:
            answer = self.http.get(f"{base}/sequences/{name}")
        except httpx.HTTPError:
            return None
        if answer.status_code != 200:
            return None
        return int(answer.json()["current"])

    def converge(self, cmd: Converge) -> dict[str, object]:
        started = time.monotonic()
        t_all_up: float | None = None
        first_spread: int | None = None
        max_spread = 0
        polls = 0
        while time.monotonic() - started < cmd.timeout_s:
            polls += 1
            values = [self._current(base, cmd.name) for base in self.config.admins.values()]
            now = time.monotonic()
            present = [v for v in values if v is not None]
            if len(present) == len(values):
                if t_all_up is None:
                    t_all_up = now
                spread = max(present) - min(present)
                if first_spread is None:
                    first_spread = spread
                max_spread = max(max_spread, spread)
                if spread <= cmd.drift:
                    return {"ok": True, "t_all_up": t_all_up, "t_converged": now,
                            "first_spread": first_spread, "max_spread": max_spread, "polls": polls}
            time.sleep(POLL_INTERVAL_S)
        return {"ok": False, "t_all_up": t_all_up, "t_converged": None, "first_spread": first_spread,
                "max_spread": max_spread, "polls": polls}

    def stateless(self, cmd: Stateless) -> dict[str, object]:
        calls: list[tuple[float, float, int | None]] = []
        for _ in range(cmd.calls):
            t0 = time.monotonic()
            if cmd.client:
                try:
                    with Client(cmd.endpoints, timeout_s=ATTEMPT_TIMEOUT_S, deadline_s=3.0) as c:
                        value: int | None = c.next(cmd.name)
                except SeqgenError:
                    value = None
            else:
                value = number(self.ctx, cmd.endpoints[0], cmd.name)
            calls.append((t0, time.monotonic(), value))
        return {"calls": calls}

    def close_in(self, cmd: Close) -> dict[str, object]:
        started = time.monotonic()
        rounds = 0
        ahead = behind = None
        while time.monotonic() - started < cmd.timeout_s:
            rounds += 1
            ahead = number(self.ctx, cmd.ahead, cmd.name) or ahead
            behind = number(self.ctx, cmd.behind, cmd.name)
            if ahead is not None and behind is not None and behind >= ahead - cmd.drift:
                return {"ok": True, "t_close": time.monotonic(), "behind": behind, "ahead": ahead,
                        "rounds": rounds}
            time.sleep(0.02)  # between rounds of real requests
        return {"ok": False, "t_close": None, "behind": behind, "ahead": ahead, "rounds": rounds}

    def request(self, cmd: Http) -> dict[str, object]:
        headers = {"Connection": "close"}  # never a pooled connection to an admin that restarted
        if cmd.token is not None:
            headers["Authorization"] = f"Bearer {cmd.token}"
        t0 = time.monotonic()
        try:
            answer = self.http.request(cmd.method, cmd.url, json=cmd.body, headers=headers,
                                       timeout=cmd.timeout_s)
        except httpx.HTTPError as exc:
            return {"status": None, "body": None, "error": f"{type(exc).__name__}: {exc}",
                    "t0": t0, "t1": time.monotonic()}
        t1 = time.monotonic()
        try:
            body: object = answer.json()
        except ValueError:
            body = answer.text
        return {"status": answer.status_code, "body": body, "error": None, "t0": t0, "t1": t1}

    def close(self) -> None:
        self.http.close()
        self.ctx.destroy(linger=0)


def main(argv: list[str]) -> int:
    agent = Agent(msgspec.json.decode(argv[0], type=AgentConfig))
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            op = msgspec.json.decode(line, type=dict[str, object]).get("op")
            if op == "ready":
                answer = agent.ready(msgspec.json.decode(line, type=Ready))
            elif op == "converge":
                answer = agent.converge(msgspec.json.decode(line, type=Converge))
            elif op == "stateless":
                answer = agent.stateless(msgspec.json.decode(line, type=Stateless))
            elif op == "close":
                answer = agent.close_in(msgspec.json.decode(line, type=Close))
            elif op == "reply":
                cmd = msgspec.json.decode(line, type=Reply)
                answer = {"reply": reply(agent.ctx, cmd.endpoint, cmd.name)}
            elif op == "http":
                answer = agent.request(msgspec.json.decode(line, type=Http))
            else:
                answer = {"error": f"unknown op {op!r}"}
            sys.stdout.write(msgspec.json.encode(answer).decode() + "\n")
            sys.stdout.flush()
    finally:
        agent.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
