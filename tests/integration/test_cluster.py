"""The local cluster as a newcomer runs it: real supervisord on the real etc/supervisord.conf.

The config is copied into a temp "checkout" whose .venv links to the running
environment and whose ports are swapped for free ones; nothing else changes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Cluster, Proc, free_port, numbers, request, wait_until
from tests.unit.test_admin_metrics import samples_of

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = ("server-1", "server-2", "admin-1", "admin-2", "proxy")


class Supervised:
    def __init__(self, root: Path, ports: dict[int, int], proc: Proc) -> None:
        self.root = root
        self.conf = root / "etc" / "supervisord.conf"
        self.ports = ports
        self.proc = proc
        self.proxy = f"tcp://127.0.0.1:{ports[6410]}"
        self.admin = f"http://127.0.0.1:{ports[6411]}"

    def ctl(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.prefix) / "bin" / "supervisorctl"), "-c", str(self.conf), *args],
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )

    def states(self) -> dict[str, tuple[str, int | None]]:
        out = self.ctl("status").stdout
        states: dict[str, tuple[str, int | None]] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].startswith("seqgen:"):
                pid = re.search(r"pid (\d+)", line)
                states[parts[0].removeprefix("seqgen:")] = (parts[1], int(pid[1]) if pid else None)
        return states

    def admins(self) -> list[str]:
        return [self.admin, f"http://127.0.0.1:{self.ports[6413]}"]

    def ready(self) -> bool:
        """What a user waits for: every admin answers /readyz (so its server answers too),
        and numbers from both servers come through the proxy."""
        for admin in self.admins():
            try:
                if httpx.get(f"{admin}/readyz", timeout=2).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        parities = set()
        for _ in range(8):
            reply = request(self.proxy, b'["_ready", "0"]', timeout_s=2)
            if reply is None or not reply[0].startswith(b'[null,"'):
                return False
            parities.add(int(reply[0][7:-2]) % 2)
            if parities == {0, 1}:
                return True
        return False


@pytest.fixture
def supervised(cluster: Cluster, short_tmp: Path) -> Iterator[Supervised]:
    root = short_tmp / "checkout"
    (root / "etc").mkdir(parents=True)
    (root / "var").mkdir()
    (root / ".venv").symlink_to(sys.prefix)
    text = (REPO / "etc" / "supervisord.conf").read_text()
    ports = {p: free_port() for p in sorted({int(m) for m in re.findall(r"127\.0\.0\.1:(64\d\d)", text)})}
    for old, new in ports.items():
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    (root / "etc" / "supervisord.conf").write_text(text)
    (root / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "admin-token", root / "scripts" / "admin-token")
    assert admin_token(root, "cluster-secret") == root / "var" / "admin-token"
    # supervisord's environment plays no part: the admins read var/admin-token.
    env = {k: v for k, v in os.environ.items() if k != "SEQGEN_ADMIN_TOKEN"}
    env["SEQGEN_ADMIN_TOKEN"] = "not-the-token"
    proc = cluster.command(
        [str(Path(sys.prefix) / "bin" / "supervisord"), "-n", "-c", str(root / "etc" / "supervisord.conf")],
        "supervisord",
        env,
    )
    sup = Supervised(root, ports, proc)
    wait_until(sup.ready, 60, "supervised cluster", proc)
    yield sup
    if proc.alive():
        sup.ctl("shutdown")
        proc.wait(30)


def admin_token(root: Path, token: str | None = None) -> Path:
    """scripts/admin-token of the checkout at ``root`` (with SEQGEN_ADMIN_TOKEN=token if given)."""
    env = {k: v for k, v in os.environ.items() if k != "SEQGEN_ADMIN_TOKEN"}
    if token is not None:
        env["SEQGEN_ADMIN_TOKEN"] = token
    done = subprocess.run([str(root / "scripts" / "admin-token")], env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def test_the_local_cluster_token_is_made_once_and_replaced_when_given(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "admin-token", tmp_path / "scripts" / "admin-token")
    path = admin_token(tmp_path)
    assert path == tmp_path / "var" / "admin-token"
    made = path.read_text()
    assert len(made.strip()) == 48 and made.endswith("\n")
    assert path.stat().st_mode & 0o777 == 0o600  # only its owner reads it
    assert admin_token(tmp_path).read_text() == made  # kept across runs
    assert admin_token(tmp_path, "given-token").read_text() == "given-token\n"
    assert admin_token(tmp_path).read_text() == "given-token\n"  # kept, not made again
    env = {k: v for k, v in os.environ.items() if k != "SEQGEN_ADMIN_TOKEN"}
    bad = subprocess.run([str(tmp_path / "scripts" / "admin-token")], capture_output=True, text=True,
                         env={**env, "SEQGEN_ADMIN_TOKEN": "two words"}, timeout=30, check=False)
    assert bad.returncode == 2 and "printable ASCII" in bad.stderr


def _from_proxy(sup: Supervised, name: str, calls: int, seen: list[int]) -> list[int]:
    """``calls`` numbers through the proxy, sending the highest seen as ``last``."""
    got: list[int] = []
    for _ in range(calls):
        got += numbers(sup.proxy, name, last=max(seen + got, default=0))
    return got


def _max_per_server(values: list[int]) -> dict[int, int]:
    return {r: max(v for v in values if v % 2 == r) for r in (0, 1)}


def _pid(sup: Supervised, program: str) -> int:
    pid = sup.states()[program][1]
    assert pid is not None
    return pid


def test_local_cluster_end_to_end(supervised: Supervised) -> None:
    sup = supervised
    seen = _from_proxy(sup, "invoice", 10, [])
    assert {v % 2 for v in seen} == {0, 1}, seen  # both servers answer through the proxy

    assert set(sup.states()) == set(PROGRAMS)
    status = httpx.get(f"{sup.admin}/status", timeout=10)
    assert status.status_code == 200
    assert status.json()["instance"] == 1
    other = httpx.get(f"http://127.0.0.1:{sup.ports[6413]}/status", timeout=10)
    assert other.json()["instance"] == 2
    # The proxy's --metrics: both servers in its rotation, the numbers just relayed counted.
    metrics = samples_of(httpx.get(f"http://127.0.0.1:{sup.ports[6419]}/metrics", timeout=10).text)
    assert list(metrics["seqgen_proxy_backend_up"].values()) == [1, 1]
    assert metrics["seqgen_proxy_numbers_relayed_total"][()] >= len(seen)
    # The admins took their token from var/admin-token, not from supervisord's environment.
    floor_url = f"{sup.admin}/sequences/ticket/floor"
    assert httpx.put(floor_url, json={"value": "5000"}, timeout=10).status_code == 401
    raised = httpx.put(floor_url, json={"value": "5000"}, timeout=10,
                       headers={"Authorization": "Bearer cluster-secret"})
    assert raised.status_code == 200, raised.text
    # A new token (SEQGEN_ADMIN_TOKEN=... scripts/cluster) applies when scripts/cluster
    # restarts the running cluster, as it does: update, then restart all.
    admin_token(sup.root, "new-secret")
    for step in (("update",), ("restart", "all")):
        done = sup.ctl(*step)
        assert done.returncode == 0, done.stdout + done.stderr
    wait_until(sup.ready, 60, "admins restarted")
    for admin in sup.admins():
        url = f"{admin}/sequences/ticket/floor"
        old = httpx.put(url, json={"value": "6000"}, timeout=10,
                        headers={"Authorization": "Bearer cluster-secret"})
        assert old.status_code == 401
        new = httpx.put(url, json={"value": "6000"}, timeout=10,
                        headers={"Authorization": "Bearer new-secret"})
        assert new.status_code == 200, new.text
    # The curl line scripts/cluster prints works as printed (with this test's port).
    if shutil.which("curl"):
        printed = next(line for line in (REPO / "scripts" / "cluster").read_text().splitlines()
                       if "raise a floor: curl" in line)
        command = (printed.split("raise a floor: ", 1)[1].replace("\\$", "$")
                   .replace("$TOKEN_FILE", str(sup.root / "var" / "admin-token"))
                   .replace("127.0.0.1:6411", f"127.0.0.1:{sup.ports[6411]}"))
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30,
                              check=False)
        assert done.returncode == 0 and '"current":"1000"' in done.stdout, done

    # The admins are peers: each sees the other, without conflicts, and witnesses it.
    def peers_ok() -> bool:
        view = httpx.get(f"{sup.admin}/cluster", timeout=10).json()
        return bool(view["peers"]) and view["peers"][0]["reachable"] and view["conflicts"] == []

    wait_until(peers_ok, 30, "admin-1 sees admin-2")
    assert (sup.root / "var" / "data" / "witness-1.db").exists()

    # kill -9 a server: supervisord restarts it and numbering goes on without repeats.
    before = _max_per_server(seen)
    old_pid = _pid(sup, "server-1")
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: sup.states()["server-1"][1] not in (old_pid, None) and sup.ready(), 30,
               "server-1 restarted")
    fresh = _from_proxy(sup, "invoice", 10, seen)
    assert {v % 2 for v in fresh} == {0, 1}
    assert all(v > before[v % 2] for v in fresh)
    seen += fresh

    # restart all keeps the numbering: each server goes on above its own last number.
    before = _max_per_server(seen)
    done = sup.ctl("restart", "all")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_until(sup.ready, 60, "cluster after restart all")
    fresh = _from_proxy(sup, "invoice", 10, seen)
    assert {v % 2 for v in fresh} == {0, 1}
    assert all(v > before[v % 2] for v in fresh)
    seen += fresh
    assert len(seen) == len(set(seen))

    # shutdown stops everything, and supervisord itself exits 0.
    done = sup.ctl("shutdown")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sup.proc.wait(30) == 0
    assert not sup.states()
