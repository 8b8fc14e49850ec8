"""Overload: exactly one reply per request at any depth in flight, and explicit shedding.

A DEALER keeps thousands of requests in flight (each for a new 200-byte name, so
most need a store write) against a real server, directly and through a real
proxy, reading and sending at once as an asyncio or event-loop client would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgspec
import pytest
import zmq

from seqgen_common.control import GetStatus, Status, decode_control_reply, encode_control
from tests.conftest import Cluster, ServerProc, ask, request, wait_until

PAD = "x" * 190


@dataclass
class Burst:
    sent: int = 0
    replies: dict[int, bytes] = field(default_factory=dict)
    duplicates: int = 0
    seconds: float = 0.0

    def codes(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for reply in self.replies.values():
            head = msgspec.json.decode(reply)[0] or "OK"
            counted[head] = counted.get(head, 0) + 1
        return counted

    def numbers(self, names: int) -> set[tuple[int, int]]:
        """(name, number) of every success; a set, so a repeat would shrink it."""
        found = set()
        for key, reply in self.replies.items():
            head, *values = msgspec.json.decode(reply)
            if head is None:
                found.update((key % names, int(v)) for v in values)
        return found


def burst(endpoint: str, total: int, in_flight: int, *, names: int = 1000, rcvhwm: int = 100_000,
          pause_reading_s: float = 0.0, quiet_s: float = 15.0) -> Burst:
    """Send ``total`` requests for ``names`` names keeping ``in_flight`` outstanding.

    Gives up only after ``quiet_s`` without any reply. With ``pause_reading_s`` the
    client sends everything first and reads nothing for that long (a slow reader).
    """
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.RCVHWM, rcvhwm)
    sock.connect(endpoint)
    result = Burst()
    started = time.monotonic()
    heard = started
    paused_until = started + pause_reading_s
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    try:
        while len(result.replies) < total and time.monotonic() - heard < quiet_s:
            while result.sent < total and result.sent - len(result.replies) < in_flight:
                body = b'["%s-%d","0"]' % (PAD.encode(), result.sent % names)
                try:
                    sock.send_multipart([result.sent.to_bytes(4, "big"), b"", body], zmq.NOBLOCK)
                except zmq.Again:
                    break
                result.sent += 1
            if time.monotonic() < paused_until:
                time.sleep(0.01)
                heard = time.monotonic()
                continue
            if not poller.poll(50):
                continue
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                heard = time.monotonic()
                key = int.from_bytes(frames[0], "big")
                if key in result.replies:
                    result.duplicates += 1
                result.replies[key] = frames[-1]
    finally:
        sock.close(0)
        ctx.term()
    result.seconds = time.monotonic() - started
    return result


def status(server: ServerProc) -> Status:
    reply = request(server.control, encode_control(GetStatus()))
    assert reply is not None
    answer = decode_control_reply(reply[0])
    assert isinstance(answer, Status)
    return answer


def test_20000_in_flight_from_one_dealer_all_answered(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    result = burst(server.bind, 20_000, 20_000)
    assert result.sent == 20_000
    assert len(result.replies) == 20_000, f"{20_000 - len(result.replies)} requests got no reply"
    assert result.duplicates == 0
    assert result.codes() == {"OK": 20_000}
    assert len(result.numbers(1000)) == 20_000  # no (name, number) twice
    counters = status(server).counters
    assert counters.numbers_issued == 20_000  # counted when handed to the socket
    assert counters.replies_undelivered == 0


def test_a_client_that_stops_reading_for_a_while_loses_nothing(cluster: Cluster) -> None:
    """More replies than a connection's queue holds: the rest wait in the server's outbox."""
    server = cluster.server(1, 1)
    result = burst(server.bind, 25_000, 25_000, rcvhwm=100, pause_reading_s=1.0)
    assert len(result.replies) == 25_000, f"{25_000 - len(result.replies)} requests got no reply"
    assert result.codes() == {"OK": 25_000}
    assert result.duplicates == 0
    assert status(server).counters.numbers_issued == 25_000


@pytest.mark.parametrize("max_in_flight", [1000, 5000])
def test_a_burst_through_a_proxy_is_answered_and_the_busy_server_stays_up(
    cluster: Cluster, max_in_flight: int
) -> None:
    server = cluster.server(1, 1)
    proxy = cluster.proxy([server.bind], extra=["--max-in-flight", str(max_in_flight),
                                                 "--max-queued", "20000"])
    result = burst(proxy.bind, 20_000, 20_000)  # type: ignore[attr-defined]
    assert len(result.replies) == 20_000, f"{20_000 - len(result.replies)} requests got no reply"
    assert result.duplicates == 0
    refused = {r for r in result.replies.values() if not r.startswith(b"[null")}
    warnings = [line for line in proxy.log().splitlines() if "WARNING" in line]
    assert result.codes() == {"OK": 20_000}, (refused, warnings)
    assert len(result.numbers(1000)) == 20_000
    assert "marked down" not in proxy.log()


def test_a_proxy_sheds_what_it_cannot_hold_explicitly(cluster: Cluster) -> None:
    """A frozen server, 2 in flight and 3 waiting at most: the rest get UNAVAILABLE at once."""
    server = cluster.server(1, 1)
    proxy = cluster.proxy([server.bind], extra=["--max-in-flight", "2", "--max-queued", "3",
                                                 "--timeout", "5"])
    server.stop()
    try:
        started = time.monotonic()
        result = burst(proxy.bind, 10, 10, quiet_s=2.0)  # type: ignore[attr-defined]
        shed = {k: v for k, v in result.replies.items() if b"overloaded" in v}
        assert len(shed) == 5, result.replies
        assert all(v.startswith(b'["UNAVAILABLE","overloaded') for v in shed.values())
        assert time.monotonic() - started < 5  # not after a timeout: at once
    finally:
        server.cont()
    # Once the server is back and the proxy's queue drained, requests are served again.
    wait_until(lambda: ask(proxy.bind, ["after", "0"])[0] is None,  # type: ignore[attr-defined]
               10, "the proxy serving again")


def test_a_server_sheds_requests_that_would_wait_for_the_disk(cluster: Cluster) -> None:
    """--max-disk-waits 0: a request that needs a store write is refused, not queued."""
    server = cluster.server(1, 1, extra=["--max-disk-waits", "0"])
    reply = ask(server.bind, ["new-name", "0"])
    assert reply[0] == "UNAVAILABLE" and str(reply[1]).startswith("overloaded"), reply
    # The shed request asked for the reservation it needed: soon the name is served.
    deadline = time.monotonic() + 10
    while (reply := ask(server.bind, ["new-name", "0"]))[0] is not None:
        assert time.monotonic() < deadline, reply
        time.sleep(0.01)
    assert reply[1:] == ["1"]  # nothing was issued by the shed requests
    counters = status(server).counters
    assert counters.requests["UNAVAILABLE"] >= 1
    assert counters.numbers_issued == 1
