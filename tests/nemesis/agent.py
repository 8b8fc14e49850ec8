"""The observer on a client host: readiness by real requests, and the servers' values.

    python -m tests.nemesis.agent '<AgentConfig as JSON>'

reads one JSON command per line on standard input and answers each with one
JSON line on standard output:

- ``{"op": "ready", "timeout_s": 60, "peered": false}``: until every public
  endpoint (servers and proxies) has handed out a number and every admin
  answered ``/readyz`` with 200 (with ``peered``, also until its ``/cluster``
  shows every other admin reachable). Answer: ``{"ok", "elapsed_s", "failing"}``.
- ``{"op": "converge", "name": "busy", "drift": 100, "timeout_s": 30}``: poll
  each admin's ``GET /sequences/{name}`` until all answer and their current
  values lie within ``drift`` of each other. Answer: ``{"ok", "t_all_up",
  "t_converged", "first_spread", "max_spread", "polls"}`` (times are
  time.monotonic, the clock of every namespace).

It runs in a client host's namespace because the suite's addresses exist only there.
"""

from __future__ import annotations

import ssl
import sys
import time

import httpx
import msgspec
import zmq

ATTEMPT_TIMEOUT_S = 0.5
POLL_INTERVAL_S = 0.1


class AgentConfig(msgspec.Struct, frozen=True):
    publics: dict[str, str]
    """label -> ZeroMQ endpoint of a server or proxy"""
    admins: dict[str, str]
    """label -> base URL of an admin (https://, mutual TLS)"""
    tls: dict[str, str]
    """ca, cert, key: the files the agent verifies the admins with and presents to them"""
    probe_name: str = "probe"


class Ready(msgspec.Struct):
    op: str
    timeout_s: float = 60.0
    peered: bool = False
    """Also wait until every admin's /cluster shows every peer reachable (over mutual TLS)."""


class Converge(msgspec.Struct):
    op: str
    name: str
    drift: int
    timeout_s: float = 30.0


def one_number(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, name: str) -> bool:
    """One request on a fresh REQ socket; True when it got a number in time."""
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(msgspec.json.encode([name, "0"]))
        if not sock.poll(int(ATTEMPT_TIMEOUT_S * 1000)):
            return False
        reply = msgspec.json.decode(sock.recv())
        return isinstance(reply, list) and len(reply) == 2 and reply[0] is None
    finally:
        sock.close()


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        tls = ssl.create_default_context(cafile=config.tls["ca"])
        tls.load_cert_chain(config.tls["cert"], config.tls["key"])
        self.http = httpx.Client(timeout=ATTEMPT_TIMEOUT_S, verify=tls)

    def _admin_ready(self, base: str, peered: bool) -> bool:
        try:
            if self.http.get(f"{base}/readyz").status_code != 200:
                return False
            if not peered:
                return True
            peers = self.http.get(f"{base}/cluster").json()["peers"]
            return len(peers) == len(self.config.admins) - 1 and all(p["reachable"] for p in peers)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return False

    def ready(self, cmd: Ready) -> dict[str, object]:
        started = time.monotonic()
        failing = set(self.config.publics) | set(self.config.admins)
        while failing:
            for label in sorted(failing):
                if label in self.config.publics:
                    ok = one_number(self.ctx, self.config.publics[label], self.config.probe_name)
                else:
                    ok = self._admin_ready(self.config.admins[label], cmd.peered)
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
            else:
                answer = {"error": f"unknown op {op!r}"}
            sys.stdout.write(msgspec.json.encode(answer).decode() + "\n")
            sys.stdout.flush()
    finally:
        agent.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
