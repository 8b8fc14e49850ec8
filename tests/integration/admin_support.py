"""Starting a real seqgen-admin process for the admin's integration tests."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from tests.conftest import READY_TIMEOUT_S, Cluster, Proc, free_port, wait_until

CONTROL_TIMEOUT_S = 1.0
"""The admin's --control-timeout in these tests (its default)."""


@dataclass
class Admin:
    proc: Proc
    url: str
    verify: ssl.SSLContext | bool = True
    """How a test's client trusts (and presents certificates to) an https:// admin."""

    def client(self, timeout_s: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout_s, verify=self.verify)


def _healthy(url: str, verify: ssl.SSLContext | bool) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=0.5, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


def admin_ready(url: str, timeout_s: float = 0.5, verify: ssl.SSLContext | bool = True) -> bool:
    """Whether the admin at ``url`` answers /readyz with 200 (its server answers)."""
    try:
        return httpx.get(f"{url}/readyz", timeout=timeout_s, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


def start_admin(
    cluster: Cluster,
    control: str,
    *,
    token: str | None = None,
    control_timeout_s: float = CONTROL_TIMEOUT_S,
    extra: Sequence[str] = (),
    url: str | None = None,
    verify: ssl.SSLContext | bool = True,
) -> Admin:
    """seqgen-admin for the server at ``control`` (on ``url``, else a free port); ready when
    /healthz answers."""
    url = url or f"http://127.0.0.1:{free_port()}"
    args = [sys.executable, "-m", "seqgen_admin", "--admin", url, "--control", control,
            "--control-timeout", str(control_timeout_s)]
    if token is not None:
        args += ["--token", token]
    proc = cluster.command([*args, *extra], "admin")
    wait_until(lambda: _healthy(url, verify), READY_TIMEOUT_S, "seqgen-admin", proc)
    return Admin(proc, url, verify)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
