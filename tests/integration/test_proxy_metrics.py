"""seqgen-proxy --metrics: /metrics read over HTTP from a running proxy moves with real requests."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import httpx
import pytest

from seqgen_common.limits import MAX_VALUE
from tests.conftest import Cluster, Proc, ask, free_port, request, wait_until
from tests.integration.test_proxy_scripted import Client, ScriptedBackend
from tests.unit.test_admin_metrics import Samples, samples_of


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    return samples_of(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name].get(tuple(sorted(labels.items())), 0.0)


def metrics_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_counters_move_with_real_requests_and_a_dead_backend_shows_down(cluster: Cluster) -> None:
    one, two = cluster.server(1, 2), cluster.server(2, 2)
    url = metrics_url()
    proxy = cluster.proxy([one.bind, two.bind], extra=["--timeout", "0.5", "--metrics", url])
    before = scrape(url)
    assert value(before, "seqgen_proxy_backend_up", backend=one.bind) == 1
    assert value(before, "seqgen_proxy_backend_up", backend=two.bind) == 1
    assert value(before, "seqgen_proxy_requests_total", outcome="OK") == 0
    assert list(before["seqgen_proxy_info"].values()) == [1]

    for _ in range(3):
        assert ask(proxy.bind, ["m", "0", 2])[0] is None
    assert ask(proxy.bind, ["m", str(MAX_VALUE - 5)])[0] is None  # capped by the proxy
    assert ask(proxy.bind, ["m", "0", 0])[0] == "BAD_COUNT"
    after = scrape(url)
    assert value(after, "seqgen_proxy_requests_total", outcome="OK") == 4
    assert value(after, "seqgen_proxy_requests_total", outcome="BAD_COUNT") == 1
    assert value(after, "seqgen_proxy_numbers_relayed_total") == 7
    assert value(after, "seqgen_proxy_caps_applied_total") == 1
    assert value(after, "seqgen_proxy_cap_names") == 1
    answered = sum(after["seqgen_proxy_backend_latency_seconds_count"].values())
    assert answered == 4  # one attempt per forwarded request; BAD_COUNT never left the proxy
    assert value(after, "seqgen_proxy_in_flight") == 0
    assert value(after, "process_open_fds") > 0

    two.kill()

    def two_down() -> bool:
        ask(proxy.bind, ["m", "0"])  # requests find it gone (a probe or a send that fails)
        return value(scrape(url), "seqgen_proxy_backend_up", backend=two.bind) == 0

    wait_until(two_down, 15, "the killed backend shown down", proxy)
    down = scrape(url)
    assert value(down, "seqgen_proxy_backend_up", backend=one.bind) == 1
    assert value(down, "seqgen_proxy_backend_marked_down_total", backend=two.bind) == 1
    assert value(down, "seqgen_proxy_backend_marked_down_total", backend=one.bind) == 0


@pytest.fixture
def scripted() -> Iterator[ScriptedBackend]:
    backend = ScriptedBackend()
    try:
        yield backend
    finally:
        backend.close()


def start_held_proxy(cluster: Cluster, backend: ScriptedBackend, url: str) -> Proc:
    """A proxy with room for 1 request in flight and 4 waiting, at most 2 of them for one name
    (half of --max-queued), before a backend the test holds."""
    proxy = cluster.proxy([backend.bind], wait=False, extra=[
        "--timeout", "20", "--max-in-flight", "1", "--max-queued", "4", "--metrics", url])
    envelope, body = backend.receive(10)
    assert body == b"[]"  # the start-up probe
    backend.send(envelope, b'["BAD_REQUEST","probe"]')
    wait_until(lambda: request(proxy.bind, b"[]", timeout_s=0.5) is not None, 15,
               "seqgen-proxy", proxy)
    return proxy


def test_in_flight_queued_shed_and_coalesced_while_a_backend_holds_a_request(
    cluster: Cluster, scripted: ScriptedBackend
) -> None:
    url = metrics_url()
    proxy = start_held_proxy(cluster, scripted, url)
    clients = [Client(proxy.bind) for _ in range(4)]
    try:
        clients[0].send(b'["n","0"]')
        envelope, body = scripted.receive_request()  # held: the test answers it later
        for client in clients[1:3]:
            client.send(b'["n","0"]')
        wait_until(lambda: value(scrape(url), "seqgen_proxy_queued") == 2, 10, "2 queued", proxy)
        clients[3].send(b'["n","0"]')
        shed_reply = clients[3].reply()  # beyond its name's 2 waiting: answered at once
        assert shed_reply.startswith(b'["UNAVAILABLE","overloaded')
        held = scrape(url)
        assert value(held, "seqgen_proxy_in_flight") == 1
        assert value(held, "seqgen_proxy_queued") == 2
        assert value(held, "seqgen_proxy_backend_in_flight", backend=scripted.bind) == 1
        assert value(held, "seqgen_proxy_shed_total") == 1
        assert value(held, "seqgen_proxy_requests_total", outcome="UNAVAILABLE") == 1

        scripted.send(envelope, b'[null,"1"]')
        assert clients[0].reply() == b'[null,"1"]'
        envelope, body = scripted.receive_request()
        assert body == b'["n","0",2]'  # the two waiting requests leave as one
        scripted.send(envelope, b'[null,"2","3"]')
        assert {clients[1].reply(), clients[2].reply()} == {b'[null,"2"]', b'[null,"3"]'}
        done = scrape(url)
        assert value(done, "seqgen_proxy_coalesced_requests_total") == 2
        assert value(done, "seqgen_proxy_coalesced_jobs_total") == 1
        assert value(done, "seqgen_proxy_coalesced_numbers_total") == 2
        assert value(done, "seqgen_proxy_in_flight") == 0
        assert value(done, "seqgen_proxy_queued") == 0
        assert value(done, "seqgen_proxy_requests_total", outcome="OK") == 3
        assert value(done, "seqgen_proxy_numbers_relayed_total") == 3
    finally:
        for client in clients:
            client.close()
    proxy.signal(signal.SIGTERM)
    assert proxy.wait() == 0  # the exporter stops with the proxy


def test_an_address_in_use_is_a_startup_error(cluster: Cluster) -> None:
    server = cluster.server()
    url = metrics_url()
    cluster.proxy([server.bind], extra=["--metrics", url])
    second = cluster.proxy([server.bind], extra=["--metrics", url], wait=False)
    assert second.wait() == 1
    assert "cannot serve --metrics" in second.log()

