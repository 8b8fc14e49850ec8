"""A real seqgen-proxy against a scripted backend: a ROUTER socket in the test.

A real server never answers twice, with a made-up id, or with garbage, and one
cannot hold a real server's reply at an exact moment. A backend played by the
test over a real socket can, so these tests pin down what the proxy forwards
(the capped request, byte for byte) and what it does with replies that must
never reach a client. Everything else is tested against real servers.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator

import pytest
import zmq

from tests.conftest import Cluster, Proc, request, tcp, wait_until


class ScriptedBackend:
    """A ROUTER that the proxy connects to as a host; the test decides every reply."""

    def __init__(self) -> None:
        self.bind = tcp()
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(self.bind)

    def receive(self, timeout_s: float = 5.0) -> tuple[list[bytes], bytes]:
        """The next forwarded message as (envelope, body); fails when none comes."""
        assert self.sock.poll(int(timeout_s * 1000)), "the proxy forwarded nothing"
        frames = self.sock.recv_multipart()
        # [proxy identity, request id, empty delimiter, body]
        assert len(frames) == 4 and frames[2] == b"" and len(frames[1]) > 0, frames
        return frames[:3], frames[3]

    def receive_request(self, timeout_s: float = 5.0) -> tuple[list[bytes], bytes]:
        """Like receive, answering the proxy's probes (``[]``) on the way."""
        while True:
            envelope, body = self.receive(timeout_s)
            if body != b"[]":
                return envelope, body
            self.send(envelope, b'["BAD_REQUEST","probe"]')

    def send(self, envelope: list[bytes], body: bytes) -> None:
        self.sock.send_multipart([*envelope, body])

    def quiet(self, timeout_s: float) -> bool:
        """Nothing but probes arrives within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not self.sock.poll(int(left * 1000) + 1):
                return True
            envelope, body = self.receive()
            if body != b"[]":
                return False
            self.send(envelope, b'["BAD_REQUEST","probe"]')
        return True

    def close(self) -> None:
        self.sock.close()


def probed_back(*hosts: ScriptedBackend) -> None:
    """Answer the probes of hosts the proxy marked down until it took them back."""
    for host in hosts:
        assert host.quiet(0.6)  # the proxy probes every 0.25 s: at least one is answered


@pytest.fixture
def backends() -> Iterator[list[ScriptedBackend]]:
    made = [ScriptedBackend(), ScriptedBackend()]
    try:
        yield made
    finally:
        for backend in made:
            backend.close()


class Client:
    """A DEALER client: send now, look at the replies later (no thread needed)."""

    def __init__(self, endpoint: str) -> None:
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send(self, body: bytes) -> None:
        self.sock.send_multipart([b"", body])

    def reply(self, timeout_s: float = 5.0) -> bytes:
        assert self.sock.poll(int(timeout_s * 1000)), "no reply"
        frames = self.sock.recv_multipart()
        assert len(frames) == 2 and frames[0] == b"", frames
        return frames[1]

    def nothing_more(self, timeout_s: float = 0.5) -> bool:
        return not self.sock.poll(int(timeout_s * 1000))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client_factory() -> Iterator[list[Client]]:
    made: list[Client] = []
    try:
        yield made
    finally:
        for client in made:
            client.close()


def start_proxy(cluster: Cluster, hosts: list[ScriptedBackend], timeout_s: str = "0.5", *,
                hedge: bool = False) -> Proc:
    """A proxy whose start-up probes are answered, so every host starts healthy. Without
    hedging unless asked: these tests script each attempt, and a hedge is one more."""
    proxy = cluster.proxy([b.bind for b in hosts], wait=False,
                          extra=["--timeout", timeout_s, "--hedge" if hedge else "--no-hedge"])
    for backend in hosts:
        envelope, body = backend.receive(10)
        assert body == b"[]"  # a probe: it must not use a number
        backend.send(envelope, b'["BAD_REQUEST","probe"]')
    wait_until(lambda: request(proxy.bind, b"[]", timeout_s=0.5) is not None, 15,
               "seqgen-proxy", proxy)
    return proxy


def test_forwards_the_highest_relayed_last_and_drops_replies_that_match_nothing(
    cluster: Cluster, backends: list[ScriptedBackend], client_factory: list[Client]
) -> None:
    backend = backends[0]
    proxy = start_proxy(cluster, [backend])
    client = Client(proxy.bind)
    client_factory.append(client)
    client.send(b'["n", "0", 3]')
    envelope, body = backend.receive_request()
    assert body == b'["n", "0", 3]'  # nothing relayed yet: forwarded byte for byte
    proxy_id, request_id, _ = envelope
    # Replies that belong to no request in flight are dropped:
    backend.send([proxy_id, b"made-up-id", b""], b'[null,"1","2","3"]')
    backend.send([proxy_id, request_id], b'[null,"1","2","3"]')  # no delimiter
    backend.send([proxy_id, request_id, b"", b"extra"], b'[null,"1","2","3"]')
    backend.send(envelope, b'[null,"11","12","13"]')  # the real reply
    backend.send(envelope, b'[null,"21","22","23"]')  # a duplicate
    assert client.reply() == b'[null,"11","12","13"]'
    assert client.nothing_more()

    # The proxy relayed 13 for "n": a huge last is capped there (re-encoded).
    client.send(b'["n","9223372036854775807",2]')
    envelope, body = backend.receive_request()
    assert body == b'["n","13",2]'
    backend.send(envelope, b'[null,"14","15"]')
    assert client.reply() == b'[null,"14","15"]'
    client.send(b'["n","14"]')  # below what was relayed: carried up to it (15)
    envelope, body = backend.receive_request()
    assert body == b'["n","15"]'
    backend.send(envelope, b'[null,"16"]')
    assert client.reply() == b'[null,"16"]'
    client.send(b'["n","0"]')  # a caller that carries nothing: the proxy carries 16
    envelope, body = backend.receive_request()
    assert body == b'["n","16"]'
    backend.send(envelope, b'[null,"17"]')
    assert client.reply() == b'[null,"17"]'
    client.send(b'["other","500"]')  # a name never relayed: capped to 0
    envelope, body = backend.receive_request()
    assert body == b'["other","0"]'


def test_a_late_reply_after_the_retry_reaches_nobody(
    cluster: Cluster, backends: list[ScriptedBackend], client_factory: list[Client]
) -> None:
    slow, fast = backends
    proxy = start_proxy(cluster, [slow, fast])
    client = Client(proxy.bind)
    client_factory.append(client)
    client.send(b'["late","0"]')
    slow_envelope, body = slow.receive_request()  # round-robin: the first host first
    # ...which does not answer within the 0.5 s timeout: the request goes to the next host.
    fast_envelope, retried = fast.receive_request()
    assert retried == body
    assert fast_envelope[1] != slow_envelope[1]  # a fresh id for every attempt
    fast.send(fast_envelope, b'[null,"2"]')
    slow.send(slow_envelope, b'[null,"1"]')  # too late
    assert client.reply() == b'[null,"2"]'
    assert client.nothing_more(1.0)
    assert "did not answer within" in proxy.log()


def hedge_totals(proxy: Proc) -> str:
    assert proxy.term() == 0
    found = re.search(r"\d+ hedges \(\d+ won, \d+ late answers, \d+ numbers skipped\)", proxy.log())
    assert found is not None, proxy.log()[-2000:]
    return found.group(0)


@pytest.mark.parametrize("winner", ["hedge", "first"])
def test_a_hedged_request_is_answered_once_and_the_other_answer_reaches_nobody(
    cluster: Cluster, backends: list[ScriptedBackend], client_factory: list[Client], winner: str,
) -> None:
    first, second = backends
    proxy = start_proxy(cluster, [first, second], timeout_s="5", hedge=True)
    client = Client(proxy.bind)
    client_factory.append(client)
    client.send(b'["h","0",2]')
    started = time.monotonic()
    first_envelope, body = first.receive_request()  # round-robin: the first host first
    # No answer within the hedge delay (50 ms until latencies are known): the same request
    # goes to the other host too, long before the 5 s timeout.
    second_envelope, hedged = second.receive_request(2.0)
    assert time.monotonic() - started < 1.0
    assert hedged == body and second_envelope[1] != first_envelope[1]
    if winner == "hedge":
        second.send(second_envelope, b'[null,"2","4"]')
        assert client.reply() == b'[null,"2","4"]'
        first.send(first_envelope, b'[null,"1","3"]')  # too late
        expected = "1 hedges (1 won, 1 late answers, 2 numbers skipped)"
    else:
        first.send(first_envelope, b'[null,"1","3"]')
        assert client.reply() == b'[null,"1","3"]'
        second.send(second_envelope, b'[null,"2","4"]')  # too late
        expected = "1 hedges (0 won, 1 late answers, 2 numbers skipped)"
    assert client.nothing_more(1.0)  # one answer per request, never two
    assert hedge_totals(proxy) == expected


def test_internal_and_malformed_replies_are_retried_elsewhere(
    cluster: Cluster, backends: list[ScriptedBackend], client_factory: list[Client]
) -> None:
    first, second = backends
    proxy = start_proxy(cluster, [first, second], timeout_s="5")
    client = Client(proxy.bind)
    client_factory.append(client)
    # Round-robin starts at the first host, and a retry takes the next: first, then second.
    client.send(b'["i","0"]')
    envelope, _ = first.receive_request()
    first.send(envelope, b'["INTERNAL","disk full"]')  # nothing issued: try the other host
    envelope, _ = second.receive_request()
    second.send(envelope, b'[null,"8"]')
    assert client.reply() == b'[null,"8"]'
    # A host that cannot serve is left to its probes for a while: let both answer one.
    probed_back(first, second)

    # When every host fails, the client gets the last failure.
    client.send(b'["i","0"]')
    envelope, _ = first.receive_request()
    first.send(envelope, b"garbage")
    envelope, _ = second.receive_request()
    second.send(envelope, b'["UNAVAILABLE","no server behind this proxy"]')
    assert client.reply() == b'["UNAVAILABLE","no server behind this proxy"]'
    probed_back(first, second)
    client.send(b'["i","0"]')
    envelope, _ = first.receive_request()
    first.send(envelope, b'["INTERNAL","disk full"]')
    envelope, _ = second.receive_request()
    second.send(envelope, b"garbage")
    assert client.reply() == b'["INTERNAL","a backend sent a malformed reply"]'
    probed_back(first, second)

    # EXHAUSTED would be the same on every host: it is not retried.
    client.send(b'["i","0"]')
    envelope, _ = first.receive_request()
    first.send(envelope, b'["EXHAUSTED","no more"]')
    assert client.reply() == b'["EXHAUSTED","no more"]'
    assert second.quiet(0.5)
    assert client.nothing_more()


def test_stopping_lets_requests_in_flight_finish_then_answers_the_rest(
    cluster: Cluster, backends: list[ScriptedBackend], client_factory: list[Client]
) -> None:
    backend = backends[0]
    proxy = start_proxy(cluster, [backend], timeout_s="1")
    answered, abandoned = Client(proxy.bind), Client(proxy.bind)
    client_factory += [answered, abandoned]
    answered.send(b'["a","0"]')
    envelope, body = backend.receive_request()
    assert body == b'["a","0"]'
    abandoned.send(b'["b","0"]')
    backend.receive_request()  # both requests are in flight now
    started = time.monotonic()
    proxy.signal(signal.SIGTERM)
    wait_until(lambda: "stopping: 2 request(s) in flight" in proxy.log(), 5, "stop noticed")
    backend.send(envelope, b'[null,"1"]')
    assert answered.reply() == b'[null,"1"]'  # finished after the stop signal
    assert abandoned.reply(5).startswith(b'["UNAVAILABLE",')  # bounded by one --timeout
    assert proxy.wait(10) == 0
    assert time.monotonic() - started < 4
