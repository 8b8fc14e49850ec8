"""A recovery that cannot be misled (issue 22): hostile and broken peers, with a fake peer admin.

Server 1 of 2 runs fenced, its admin peered with a fake admin (tests/integration/fake_peer.py)
that answers what the test sets: values and rates no cluster produces, answers that trickle,
endless pages, huge bodies. Each time the recovery refuses with the reason (never a 500,
never a floor at the top of the range) and the server stays fenced.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import Cluster, numbers, wait_until
from tests.integration.fake_peer import Behaviour, fake_peer
from tests.integration.operator_support import Host, free_admin_url, start_host, wait_witnessed

PEER_TIMEOUT_S = 5.0
"""seqgen_admin.peers.PEER_TIMEOUT_S: the most one call to a peer may take."""


@dataclass
class Fenced(Host):
    peer: Behaviour

    def fenced(self) -> bool:
        with self.http() as http:
            return bool(http.get("/status").json()["fenced"])


@pytest.fixture
def peer() -> Iterator[tuple[Behaviour, str]]:
    behaviour = Behaviour()
    with fake_peer(behaviour) as url:
        yield behaviour, url


def start(cluster: Cluster, peer: tuple[Behaviour, str], extra: Sequence[str] = ()) -> Fenced:
    behaviour, url = peer
    host = start_host(cluster, 1, 2, free_admin_url(), [url], fenced=True, admin_extra=extra)
    return Fenced(host.server, host.admin, host.witness, behaviour)


def refused(host: Fenced, body: dict[str, object], status: int, *words: str) -> str:
    with host.http() as http:
        response = http.post("/recover", json=body)
    assert response.status_code == status, response.text
    detail = str(response.json()["detail"])
    for word in words:
        assert word in detail, (word, detail)
    assert host.fenced()
    return detail


def test_values_and_rates_no_cluster_produces_are_refused(cluster: Cluster,
                                                          peer: tuple[Behaviour, str]) -> None:
    host = start(cluster, peer)
    b = host.peer
    b.sequences = {"x": "9223372036854775000"}
    refused(host, {}, 503, "implausible", "'x'", "top quarter")
    # Forced, the peer's part is left out; no other peer's record: never unfenced blind.
    refused(host, {"force": True}, 409, "blind", '"margin"')
    with host.http() as http:
        assert http.get("/sequences/x").status_code == 404  # no floor at the top of the range

    b.sequences = {"x": "99999999999999999999"}  # above 2**63 - 1
    refused(host, {}, 503, "not a value")
    wait_until(lambda: "not a value" in str(cluster_peer(host)["error"]), 15, "the poll's error")

    b.sequences = {}
    b.witnessed = {"y": ("100", 1e308)}
    refused(host, {}, 503, "implausible", "rate", '"margin"')
    refused(host, {"force": True}, 409, "blind")  # forced: that peer left out, none left
    b.witnessed = {"y": ("100", 0.0)}
    b.raw_witness_items = '[{"name": "y", "value": "100", "seen_at": "2026-01-01T00:00:00Z", ' \
                          '"rate": 1e999}]'  # infinity
    refused(host, {}, 503, "unreadable", "rate")
    # A given margin replaces the rates: the recovery goes on, above the record.
    b.raw_witness_items = None
    b.witnessed = {"y": ("100", 1e308)}
    with host.http() as http:
        response = http.post("/recover", json={"margin": "50"})
        assert response.status_code == 200, response.text
        assert http.get("/sequences/y").json()["current"] == "150"
    assert numbers(host.server.bind, "y") == [151]
    assert "Traceback" not in host.admin.proc.log()


def cluster_peer(host: Fenced) -> dict[str, object]:
    with host.http() as http:
        peers = http.get("/cluster").json()["peers"]
    assert isinstance(peers[0], dict)
    return peers[0]


def test_a_trickling_peer_cannot_hold_a_recovery(cluster: Cluster,
                                                 peer: tuple[Behaviour, str]) -> None:
    host = start(cluster, peer)
    host.peer.trickle_s = 0.5
    started = time.monotonic()
    detail = refused(host, {}, 503, "no complete answer within")
    assert time.monotonic() - started < PEER_TIMEOUT_S * 2 + 5, detail
    # An operator who gives up: the recovery must change nothing afterwards.
    with host.http() as http:
        assert http.put("/sequences/t/floor", json={"value": "5"}).status_code == 200
    with host.http(timeout_s=1.0) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/recover", json={"force": True, "margin": "7"})
    wait_until(lambda: "was given up" in host.admin.proc.log(), PEER_TIMEOUT_S * 4,
               "the recovery notices its operator left")
    assert host.fenced()
    with host.http() as http:
        assert http.get("/sequences/t").json()["current"] == "5"  # not raised by the margin


def test_endless_pages_end_at_the_recovery_deadline(cluster: Cluster,
                                                    peer: tuple[Behaviour, str]) -> None:
    host = start(cluster, peer, ["--recover-timeout", "2"])
    host.peer.endless = True
    host.peer.sequences = {"e": "5"}
    started = time.monotonic()
    refused(host, {"force": True, "margin": "5"}, 503, "did not finish within 2 s")
    assert time.monotonic() - started < 2 + PEER_TIMEOUT_S + 5
    with host.http() as http:
        assert http.get("/sequences/e").status_code == 404


def test_a_huge_answer_is_not_read(cluster: Cluster, peer: tuple[Behaviour, str]) -> None:
    host = start(cluster, peer)
    host.peer.huge_bytes = 40 * 1024 * 1024
    refused(host, {}, 503, "over 16777216 bytes")
    status = Path(f"/proc/{host.admin.proc.pid}/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
    assert rss_kb < 200 * 1024, rss_kb


def test_names_this_host_never_saw_the_peer_hold_are_refused(cluster: Cluster,
                                                              peer: tuple[Behaviour, str]) -> None:
    host = start(cluster, peer)
    host.peer.sequences = {"real": "5"}
    wait_witnessed(host, 2, "real", 5)  # this admin witnesses the fake peer's server
    host.peer.made_up = 5000
    refused(host, {}, 503, "made-up names", "this host witnessed 1")
    with host.http() as http:
        assert http.get("/sequences/made-up/000001").status_code == 404
    host.peer.made_up = 500  # within the slack (names made since the last poll)
    with host.http() as http:
        response = http.post("/recover", json={"margin": "10"})
        assert response.status_code == 200, response.text
        assert http.get("/sequences/real").json()["current"] == "15"
