"""seqgen-proxy in front of real servers: relaying, validation, the cap, chaining, concurrency."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from itertools import pairwise

import msgspec
import pytest
import zmq

from seqgen_common.limits import MAX_FRAME_BYTES, MAX_VALUE
from tests.conftest import Cluster, Proc, ServerProc, ask, numbers, request, tcp, wait_until
from tests.integration.test_hostile import fuzz_public, idle_connections, rss_kb

TIMEOUT_S = "0.5"
"""--timeout for the proxies under test: failover stays quick."""


def two_servers(cluster: Cluster) -> tuple[ServerProc, ServerProc]:
    return cluster.server(1, 2), cluster.server(2, 2)


def proxy_for(cluster: Cluster, *servers: ServerProc | Proc, extra: list[str] | None = None) -> Proc:
    hosts = [s.bind for s in servers]
    return cluster.proxy(hosts, extra=["--timeout", TIMEOUT_S, *(extra or [])])


@dataclass
class Outcome:
    """What one load client saw."""

    count: int
    replies: list[list[object]] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    unanswered: int = 0
    extra: list[list[bytes]] = field(default_factory=list)

    def values(self) -> list[int]:
        return [int(str(v)) for reply in self.replies if reply[0] is None for v in reply[1:]]


def load_client(endpoint: str, name: str, out: Outcome, stop: threading.Event,
                rounds: int | None = None, reply_timeout_s: float = 10.0,
                extra_wait_s: float = 0.5) -> None:
    """Lock-step requests on a DEALER (so a stray extra reply would be seen) until stopped."""
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    body = msgspec.json.encode([name, "0", out.count])
    try:
        done = 0
        while not stop.is_set() and (rounds is None or done < rounds):
            started = time.monotonic()
            sock.send_multipart([b"", body])
            if not sock.poll(int(reply_timeout_s * 1000)):
                out.unanswered += 1
                return
            frames = sock.recv_multipart()
            out.latencies_s.append(time.monotonic() - started)
            assert len(frames) == 2 and frames[0] == b"", frames
            out.replies.append(msgspec.json.decode(frames[1]))
            done += 1
        if sock.poll(int(extra_wait_s * 1000)):
            out.extra.append(sock.recv_multipart())
    finally:
        sock.close()


def run_clients(endpoint: str, counts: list[int], *, rounds: int | None = None,
                stop: threading.Event | None = None, name: str = "load",
                extra_wait_s: float = 0.5) -> tuple[list[Outcome], list[threading.Thread]]:
    stop = stop or threading.Event()
    outcomes = [Outcome(count) for count in counts]
    threads = [
        threading.Thread(target=load_client, args=(endpoint, name, out, stop),
                         kwargs={"rounds": rounds, "extra_wait_s": extra_wait_s}, daemon=True)
        for out in outcomes
    ]
    for thread in threads:
        thread.start()
    return outcomes, threads


def check_outcomes(outcomes: list[Outcome], step: int = 2) -> list[int]:
    """Every client got exactly its own replies, successful; all numbers unique. The numbers."""
    everything: list[int] = []
    for out in outcomes:
        assert out.unanswered == 0, f"client with count {out.count} lost a request"
        assert out.extra == [], f"client with count {out.count} got a stray reply {out.extra}"
        assert out.replies, "client got no reply at all"
        for reply in out.replies:
            assert reply[0] is None, reply
            values = [int(str(v)) for v in reply[1:]]
            assert len(values) == out.count, (out.count, reply)
            assert all(b - a == step for a, b in pairwise(values)), values  # one server's batch
        everything += out.values()
    assert len(everything) == len(set(everything)), "a number was issued twice"
    return everything


# ---- relaying ---------------------------------------------------------------------


def test_relays_round_robin_to_both_servers(cluster: Cluster) -> None:
    odd, even = two_servers(cluster)
    proxy = proxy_for(cluster, odd, even)
    got = [numbers(proxy.bind, "invoice", last=0)[0] for _ in range(6)]
    assert {v % 2 for v in got} == {0, 1}, got  # both servers answered
    assert len(set(got)) == 6
    batch = numbers(proxy.bind, "invoice", count=7)  # a batch passes through
    assert len(batch) == 7
    assert all(b - a == 2 for a, b in pairwise(batch))


def test_dealer_clients_with_and_without_delimiter(cluster: Cluster) -> None:
    server = cluster.server()
    proxy = proxy_for(cluster, server)
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(proxy.bind)
        sock.send_multipart([b"", b'["d","0"]'])
        assert sock.poll(5000)
        assert sock.recv_multipart() == [b"", b'[null,"1"]']
        sock.send_multipart([b'["d","0",2]'])
        assert sock.poll(5000)
        assert sock.recv_multipart() == [b'[null,"2","3"]']
    finally:
        sock.close()


INVALID = [
    ([b"not json"], "BAD_REQUEST"),
    ([b"[]"], "BAD_REQUEST"),
    ([b'{"type":"ping"}'], "BAD_REQUEST"),  # a control request goes nowhere
    ([b'{"type":"raise_floor","name":"x","value":99}'], "BAD_REQUEST"),
    ([b'["x","0",1,1]'], "BAD_REQUEST"),
    ([b'["x","0"]', b'["x","0"]'], "BAD_REQUEST"),  # two body frames
    ([b'["","0"]'], "BAD_NAME"),
    ([b'["' + b"n" * 201 + b'","0"]'], "BAD_NAME"),
    ([b'["a\\u0001","0"]'], "BAD_NAME"),
    ([b'["x",5]'], "BAD_LAST"),
    ([b'["x","9223372036854775808"]'], "BAD_LAST"),
    ([b'["x","0",0]'], "BAD_COUNT"),
    ([b'["x","0",1001]'], "BAD_COUNT"),
]


def test_invalid_requests_are_answered_by_the_proxy_itself(cluster: Cluster) -> None:
    # No backend exists at all: the precise answer can only come from the proxy.
    proxy = cluster.proxy([tcp(), tcp()], extra=["--timeout", TIMEOUT_S])
    for frames, code in INVALID:
        reply = request(proxy.bind, *frames)
        assert reply is not None and len(reply) == 1, frames
        decoded = msgspec.json.decode(reply[0])
        assert decoded[0] == code, (frames, decoded)
        assert isinstance(decoded[1], str) and decoded[1]
        assert len(decoded) == 2


def test_valid_request_without_backends_is_unavailable_quickly(cluster: Cluster) -> None:
    proxy = cluster.proxy([tcp(), tcp()], extra=["--timeout", TIMEOUT_S])
    started = time.monotonic()
    reply = ask(proxy.bind, ["x", "0"])
    assert reply[0] == "UNAVAILABLE", reply
    assert time.monotonic() - started < 3.0


def test_oversize_frame_is_refused_and_proxy_keeps_serving(cluster: Cluster) -> None:
    server = cluster.server()
    proxy = proxy_for(cluster, server)
    big = b'["' + b"x" * MAX_FRAME_BYTES + b'","0"]'
    assert request(proxy.bind, big, timeout_s=1.0) is None
    assert numbers(proxy.bind, "after") == [1]
    assert proxy.alive()


# ---- the last the proxy forwards: capped, and carried --------------------------------


def test_a_huge_last_through_the_proxy_moves_nothing(cluster: Cluster) -> None:
    odd, even = two_servers(cluster)
    proxy = proxy_for(cluster, odd, even)
    huge = 10**15
    # The proxy has relayed nothing for this name: last is capped to 0.
    first = [numbers(proxy.bind, "cap", last=MAX_VALUE)[0] for _ in range(2)]
    assert sorted(first) == [1, 2]
    # The same request sent straight to a server does catch up.
    pushed = numbers(odd.bind, "cap", last=huge)[0]
    assert huge < pushed < huge + 10
    # Once the proxy has relayed a number, it caps last there: the other server catches up
    # to the highest number really issued, and not one step further.
    through = [numbers(proxy.bind, "cap", last=MAX_VALUE)[0] for _ in range(4)]
    assert max(through) < pushed + 20, through
    assert any(v % 2 == 0 and v > pushed for v in through), through  # even server caught up
    assert numbers(even.bind, "cap")[0] < pushed + 20


def test_a_name_the_proxy_forgot_is_capped_to_zero(cluster: Cluster) -> None:
    odd, even = cluster.server(1, 2, drift=10), cluster.server(2, 2, drift=10)
    # Remember one name only; round-robin from the first host: odd, even, odd, even.
    proxy = proxy_for(cluster, odd, even, extra=["--max-names", "1"])
    assert numbers(odd.bind, "a", last=1000) == [1001]  # pushed directly
    assert numbers(proxy.bind, "a") == [1003]  # odd: the proxy now caps "a" at 1003
    assert numbers(proxy.bind, "b") == [2]  # even: "b" evicts "a"
    assert numbers(proxy.bind, "c") == [1]  # odd: "c" evicts "b"
    # even: "a" is forgotten, so last is capped to 0 and the even server does not catch up
    # (had the proxy remembered 1003, it would have answered 1004).
    assert numbers(proxy.bind, "a", last=MAX_VALUE) == [2]


def test_stateless_callers_through_the_proxy_get_numbers_close_to_the_highest(
        cluster: Cluster) -> None:
    """The issue's reproduction: server 1 jumped, then callers that carry nothing ("0")."""
    drift = 10
    odd, even = cluster.server(1, 2, drift=drift), cluster.server(2, 2, drift=drift)
    proxy = proxy_for(cluster, odd, even)
    assert numbers(odd.bind, "close", last=100_000) == [100_001]  # straight to server 1
    got = [numbers(proxy.bind, "close", last=0)[0] for _ in range(8)]
    # Round-robin: at most one request reaches server 2 before the proxy has relayed a
    # number of server 1; from then on it carries last for every caller.
    first_high = next(i for i, v in enumerate(got) if v > 100_000)
    assert first_high <= 1, got
    highest = got[first_high]
    for value in got[first_high + 1:]:
        assert value > highest - drift, got  # within drift of the highest relayed so far
        highest = max(highest, value)
    assert {v % 2 for v in got[first_high:]} == {0, 1}, got  # both servers answered
    assert numbers(even.bind, "close")[0] > 100_000  # server 2 itself caught up


# ---- concurrency -----------------------------------------------------------------------


def test_sixteen_concurrent_clients_each_get_their_own_replies(cluster: Cluster) -> None:
    odd, even = two_servers(cluster)
    proxy = proxy_for(cluster, odd, even)
    outcomes, threads = run_clients(proxy.bind, [1 + 3 * i for i in range(16)], rounds=25)
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    values = check_outcomes(outcomes)
    assert {v % 2 for v in values} == {0, 1}  # both servers used
    assert sum(len(out.replies) for out in outcomes) == 16 * 25


def test_back_pressure_loses_nothing(cluster: Cluster) -> None:
    odd, even = two_servers(cluster)
    proxy = proxy_for(cluster, odd, even, extra=["--max-in-flight", "2"])
    outcomes, threads = run_clients(proxy.bind, [1 + i for i in range(8)], rounds=20)
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    check_outcomes(outcomes)
    assert sum(len(out.replies) for out in outcomes) == 8 * 20


@pytest.mark.parametrize("coalesce", ["--no-coalesce", "--coalesce"])
def test_requests_are_in_flight_concurrently(cluster: Cluster, coalesce: str) -> None:
    """A frozen backend holds only its own requests: later ones to the other backend pass."""
    frozen, alive = two_servers(cluster)
    # Without hedging, which would move the frozen server's requests on after tens of ms
    # (test_proxy_hedging.py): here the point is the requests' concurrency in the relay.
    proxy = cluster.proxy([frozen.bind, alive.bind], extra=["--timeout", "3", coalesce, "--no-hedge"])
    frozen.stop()
    outcomes, threads = run_clients(proxy.bind, [1, 2, 3, 4], rounds=1, extra_wait_s=0.0)
    for thread in threads:
        thread.join(30)
    frozen.cont()
    check_outcomes(outcomes)
    fast = [out for out in outcomes if out.latencies_s[0] < 1.5]
    slow = [out for out in outcomes if out.latencies_s[0] >= 2.5]  # waited the 3 s timeout
    latencies = [out.latencies_s for out in outcomes]
    if coalesce == "--no-coalesce":
        # Round-robin sends two of the four to the frozen server. Relaying one at a time, the
        # first request stuck there would hold up every later one: at most one could be fast.
        assert len(fast) == 2 and len(slow) == 2, latencies
    else:
        # One job of the name per backend: the frozen server holds the job sent to it, the
        # rest go (together) to the other server.
        assert len(fast) >= 2 and 1 <= len(slow) <= 2 and len(fast) + len(slow) == 4, latencies
    assert all(v % 2 == 0 for out in outcomes for v in out.values())


# ---- chaining and process life -----------------------------------------------------------


def test_proxy_to_proxy_chaining(cluster: Cluster) -> None:
    odd, even = two_servers(cluster)
    inner = proxy_for(cluster, odd, even)
    outer = cluster.proxy([inner.bind], extra=["--timeout", "2"])
    got = [numbers(outer.bind, "chain")[0] for _ in range(4)]
    assert {v % 2 for v in got} == {0, 1}
    assert len(set(got)) == 4
    assert len(numbers(outer.bind, "chain", count=50)) == 50
    assert ask(outer.bind, ["chain", "x"])[0] == "BAD_LAST"
    # Both proxies cap: a huge last through the chain moves nothing.
    assert numbers(outer.bind, "chain2", last=MAX_VALUE)[0] <= 2
    outcomes, threads = run_clients(outer.bind, [1 + i for i in range(6)], rounds=10)
    for thread in threads:
        thread.join(60)
    check_outcomes(outcomes)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_signal(cluster: Cluster, sig: signal.Signals) -> None:
    server = cluster.server()
    proxy = proxy_for(cluster, server)
    assert numbers(proxy.bind, "s") == [1]
    started = time.monotonic()
    proxy.signal(sig)
    assert proxy.wait(10) == 0
    assert time.monotonic() - started < 5
    assert "stopped" in proxy.log()


def test_bad_flags_exit_2_with_a_message() -> None:
    result = subprocess.run([sys.executable, "-m", "seqgen_proxy"], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "--host" in result.stderr


def test_unbindable_address_exits_1(cluster: Cluster) -> None:
    server = cluster.server()
    proc = cluster.command([sys.executable, "-m", "seqgen_proxy", "--bind", server.bind,
                            "--host", tcp()], kind="proxy")
    assert proc.wait(15) == 1
    assert "cannot bind" in proc.log()


def test_start_log_names_the_configuration(cluster: Cluster) -> None:
    server = cluster.server()
    proxy = proxy_for(cluster, server)
    wait_until(lambda: server.bind in proxy.log(), 5, "start log line", proxy)


def test_proxy_survives_hostile_input(cluster: Cluster) -> None:
    odd, even = two_servers(cluster)
    proxy = proxy_for(cluster, odd, even)
    before = numbers(odd.bind, "victim", count=3)
    rss_before = rss_kb(proxy)
    idle = idle_connections(proxy.bind, 200)
    try:
        for seed in range(2):
            assert fuzz_public(proxy.bind, seed) > 300  # every request got one good reply
    finally:
        for sock in idle:
            sock.close()
    assert proxy.alive()
    assert numbers(odd.bind, "victim") == [before[-1] + 2]  # nothing pushed the numbers on
    assert rss_kb(proxy) - rss_before < 64 * 1024, "memory grew by more than 64 MiB"
    assert "Traceback" not in proxy.log()
