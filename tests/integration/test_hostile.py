"""Hostile input at the public and control sockets of real processes.

Every answered request gets a well-formed reply, no process dies, memory stays
bounded and numbering is untouched afterwards.
"""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest
import zmq

from tests.conftest import Cluster, Proc, numbers

ERROR_CODES = {"BAD_REQUEST", "BAD_NAME", "BAD_LAST", "BAD_COUNT", "EXHAUSTED", "UNAVAILABLE", "INTERNAL"}


def rss_kb(proc: Proc) -> int:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def hostile_frames(rng: random.Random) -> list[list[bytes]]:
    """Bodies (each a list of frames after the delimiter) that a server must survive."""
    deep = b"[" * 100_000 + b"]" * 100_000
    cases: list[list[bytes]] = [
        [b""], [b"\x00" * 100], [b"\xff\xfe\xfd"], [b"\xef\xbb\xbf[\"a\",\"0\"]"],
        [b"[" * 60_000], [deep[:60_000]], [b'{"a":' * 10_000],
        [b'["a","' + b"9" * 60_000 + b'"]'], [b'["a","0",' + b"9" * 60_000 + b"]"],
        [b'["a","0",1e308]'], [b'["a","0",-0]'], [b'["a","-0"]'], [b"[NaN]"], [b"null"], [b"1"],
        [b'["a","0"]', b'["b","0"]'], [b'["a","0"]', b""], [b"", b""],
        [b'["\\ud800","0"]'], [b'["a\\u0000b","0"]'], [b'["' + "\u2028".encode() * 60 + b'","0"]'],
    ]
    for _ in range(150):
        cases.append([rng.randbytes(rng.randrange(0, 300))])
    for _ in range(150):
        items = [rng.choice([None, True, 1.5, -1, 10**30, "x", "", "0", "18446744073709551616", [], {}])
                 for _ in range(rng.randrange(0, 5))]
        cases.append([msgspec.json.encode(items)])
    return cases


def check_reply(frames: list[bytes]) -> None:
    assert len(frames) == 1, frames
    reply = msgspec.json.decode(frames[0])
    assert isinstance(reply, list) and len(reply) >= 2
    if reply[0] is None:
        assert all(isinstance(v, str) and v.isdigit() for v in reply[1:])
    else:
        assert reply[0] in ERROR_CODES and isinstance(reply[1], str) and len(reply) == 2


def fuzz_public(endpoint: str, seed: int) -> int:
    """Throw hostile input at a public endpoint; returns how many replies were checked."""
    ctx = zmq.Context.instance()
    rng = random.Random(seed)
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoint)
    answered = 0
    try:
        for body in hostile_frames(rng):
            dealer.send_multipart([b"", *body])
            assert dealer.poll(5000), f"no reply to {body!r:.80}"
            frames = dealer.recv_multipart()
            assert frames[0] == b""
            check_reply(frames[1:])
            answered += 1
        # Abandoned requests: sent, never read.
        for _ in range(50):
            req = ctx.socket(zmq.REQ)
            req.setsockopt(zmq.LINGER, 0)
            req.connect(endpoint)
            req.send(b'["abandoned","0"]')
            req.close()
        # A frame over 64 KiB drops that connection only.
        big = ctx.socket(zmq.REQ)
        big.setsockopt(zmq.LINGER, 0)
        big.connect(endpoint)
        big.send(b"x" * 70_000)
        assert not big.poll(300)
        big.close()
    finally:
        dealer.close()
    return answered


def idle_connections(endpoint: str, count: int) -> list[zmq.Socket[bytes]]:
    ctx = zmq.Context.instance()
    socks = []
    for _ in range(count):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        socks.append(s)
    return socks


def test_server_survives_hostile_public_input(cluster: Cluster) -> None:
    s = cluster.server(1, 2)
    before = numbers(s.bind, "victim", count=3)
    rss_before = rss_kb(s)
    idle = idle_connections(s.bind, 300)
    try:
        for seed in range(3):
            assert fuzz_public(s.bind, seed) > 300
        assert numbers(s.bind, "victim") == [before[-1] + 2]  # numbering untouched
    finally:
        for sock in idle:
            sock.close()
    assert s.alive()
    assert rss_kb(s) - rss_before < 64 * 1024, "memory grew by more than 64 MiB"


@pytest.mark.parametrize("seed", [1, 2])
def test_control_socket_survives_hostile_input(cluster: Cluster, seed: int) -> None:
    s = cluster.server()
    numbers(s.bind, "c")
    rng = random.Random(seed)
    ctx = zmq.Context.instance()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(s.control)
    bodies = [frames[0] for frames in hostile_frames(rng) if len(frames) == 1]
    bodies += [
        b'{"type":"raise_floor","name":"c","value":-1}',
        b'{"type":"raise_floor","name":"c","value":9223372036854775808}',
        b'{"type":"raise_floor","name":"","value":5}',
        b'{"type":"list_sequences","limit":0}',
        b'{"type":"list_sequences","limit":100000}',
        b'{"type":"list_sequences","cursor":5}',
        b'{"type":"get_sequence","name":"' + b"x" * 60_000 + b'"}',
    ]
    try:
        for body in bodies:
            dealer.send_multipart([b"", body])
            assert dealer.poll(5000)
            frames = dealer.recv_multipart()
            reply = msgspec.json.decode(frames[1])
            assert reply["type"] == "error", (body[:80], reply)
    finally:
        dealer.close()
    assert s.ping()
    assert numbers(s.bind, "c") == [2]  # no floor moved, nothing issued
