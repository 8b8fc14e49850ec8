"""Peered servers and admins for the tests of the operator's plane (issue 14)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Cluster, ServerProc, free_port, wait_until
from tests.integration.admin_support import Admin, bearer, start_admin

TOKEN = "operator-token"
INTERVAL_S = 0.2
"""--witness-interval in these tests."""


@dataclass
class Host:
    """One server and its admin, as on one host of a deployment."""

    server: ServerProc
    admin: Admin
    witness: Path

    def http(self, timeout_s: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.admin.url, timeout=timeout_s, headers=bearer(TOKEN),
                            verify=self.admin.verify)


def free_admin_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def start_host(cluster: Cluster, instance: int, instances: int, url: str, peers: Sequence[str], *,
               data: Path | None = None, fenced: bool = False, interval_s: float = INTERVAL_S,
               token: str | None = TOKEN, server_extra: Sequence[str] = (),
               admin_extra: Sequence[str] = (), verify: ssl.SSLContext | bool = True) -> Host:
    """A server (instance of instances) and its admin on ``url``, peered with ``peers``."""
    extra = [*server_extra, "--fenced"] if fenced else list(server_extra)
    server = cluster.server(instance, instances, data=data, extra=extra)
    witness = cluster.root / f"witness-{url.rsplit(':', 1)[1]}.db"
    args = ["--witness-interval", str(interval_s), "--witness-file", str(witness), *admin_extra]
    for peer in peers:
        args += ["--peer", peer]
    admin = start_admin(cluster, server.control, token=token, extra=[*args, *admin_extra], url=url,
                        verify=verify)
    return Host(server, admin, witness)


def restart_admin(cluster: Cluster, host: Host, peers: Sequence[str], *,
                  interval_s: float = INTERVAL_S) -> Host:
    args = ["--witness-interval", str(interval_s), "--witness-file", str(host.witness)]
    for peer in peers:
        args += ["--peer", peer]
    admin = start_admin(cluster, host.server.control, token=TOKEN, extra=args, url=host.admin.url)
    return Host(host.server, admin, host.witness)


def pair(cluster: Cluster, *, interval_s: float = INTERVAL_S, drift: int | None = None,
         admin_extra: Sequence[str] = ()) -> tuple[Host, Host]:
    """Instances 1 and 2 of 2, each admin peered with the other."""
    urls = [free_admin_url(), free_admin_url()]
    extra = ["--drift", str(drift)] if drift is not None else []
    return (start_host(cluster, 1, 2, urls[0], [urls[1]], interval_s=interval_s, server_extra=extra,
                       admin_extra=admin_extra),
            start_host(cluster, 2, 2, urls[1], [urls[0]], interval_s=interval_s, server_extra=extra,
                       admin_extra=admin_extra))


def metric(host: Host, name: str) -> float:
    """One sample of the admin's /metrics."""
    with host.http() as http:
        text = http.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} is not exported")


def cluster_view(host: Host) -> dict[str, object]:
    with host.http() as http:
        response = http.get("/cluster")
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def peers_reachable(host: Host, count: int) -> Callable[[], bool]:
    def check() -> bool:
        peers = cluster_view(host)["peers"]
        assert isinstance(peers, list)
        return sum(1 for peer in peers if peer["reachable"]) == count
    return check


def witnessed(host: Host, instance: int) -> dict[str, int]:
    """Everything ``host`` witnessed of ``instance``: name -> value."""
    seen: dict[str, int] = {}
    cursor: str | None = None
    with host.http() as http:
        while True:
            params: dict[str, str | int] = {"limit": 1000}
            if cursor is not None:
                params["cursor"] = cursor
            response = http.get(f"/witness/{instance}", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            seen.update((item["name"], int(item["value"])) for item in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return seen


def wait_witnessed(host: Host, instance: int, name: str, value: int, timeout_s: float = 15.0) -> None:
    """Until ``host`` witnessed ``name`` of ``instance`` at ``value`` or more."""
    wait_until(lambda: witnessed(host, instance).get(name, 0) >= value, timeout_s,
               f"witness of {name} >= {value}")
