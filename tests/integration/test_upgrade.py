"""Upgrades and downgrades between seqgen versions, on real stores and real servers.

A store made by seqgen 0.1.0 (tests/fixtures/store-0.1.0.db, made by that version's own
server: tests/fixtures/make_store_0_1_0.py) is opened by the current server, which
issues numbers above every number 0.1.0 issued. A store of the current version goes
back to 0.1.0 and forward again without a repeat while it is not fenced, and a fenced one
is refused by the released servers that predate the store's oldest version (0.1.0 and
0.2.0, run from the project's git history), as docs/upgrading.md says.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import READY_TIMEOUT_S, Cluster, Proc, ask, numbers, request, tcp, wait_until

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
RELEASES = {"0.1.0": "75f4063", "0.2.0": "fa0270a"}
"""The last commit of each released version."""


def store_meta(data: Path) -> dict[str, str]:
    with sqlite3.connect(data / "seqgen.db") as conn:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The source of each released version, from the repository's history."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and the repository's history (the released versions' code)")
    trees = {}
    for version, commit in RELEASES.items():
        tree = tmp_path_factory.mktemp(f"seqgen-{version}")
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True,
                                 check=False, timeout=60)
        if archive.returncode != 0:
            pytest.skip(f"commit {commit} (seqgen {version}) is not in this clone's history")
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=60)
        assert f'version = "{version}"' in (tree / "pyproject.toml").read_text()
        trees[version] = tree
    yield trees


@dataclass
class OldServer:
    proc: Proc
    bind: str
    control: str


def old_server(cluster: Cluster, source: Path, data: Path, *, wait: bool = True) -> OldServer:
    """That version's seqgen-server: its code first on the path (-P: not the checkout's)."""
    bind, control = tcp(), tcp()
    args = [sys.executable, "-P", "-m", "seqgen_server", "--bind", bind, "--control", control,
            "--instance", "1", "--instances", "2", "--data", str(data)]
    proc = cluster.command(args, "old-server", env=os.environ | {"PYTHONPATH": str(source)})
    if wait:
        wait_until(lambda: request(control, b'{"type":"ping"}', timeout_s=0.5) is not None,
                   READY_TIMEOUT_S, "the released seqgen-server", proc)
    return OldServer(proc, bind, control)


def test_the_old_servers_run_their_own_code(releases: dict[str, Path]) -> None:
    for version, source in releases.items():
        flags = subprocess.run([sys.executable, "-P", "-m", "seqgen_server", "--help"], capture_output=True,
                               text=True, env=os.environ | {"PYTHONPATH": str(source)}, check=True,
                               timeout=60).stdout
        assert ("--fenced" in flags) == (version != "0.1.0"), flags


def test_a_store_made_by_0_1_0_goes_on_above_what_0_1_0_issued(cluster: Cluster) -> None:
    made = json.loads((FIXTURES / "store-0.1.0.json").read_text())
    data = cluster.root / "upgraded"
    data.mkdir()
    shutil.copy(FIXTURES / "store-0.1.0.db", data / "seqgen.db")
    assert "oldest_version" not in store_meta(data)
    server = cluster.server(made["instance"], made["instances"], data=data)
    for name, issued in made["issued"].items():
        got = numbers(server.bind, name, count=3)  # a client that remembers nothing
        assert min(got) > max(int(n) for n in issued), (name, got, issued)
        assert all(n % 2 == 1 for n in got)
    assert numbers(server.bind, "new-after-upgrade") == [1]
    assert server.term() == 0
    assert (store_meta(data)["oldest_version"], store_meta(data)["format"]) == ("0.1.0", "1")


def test_an_unfenced_store_goes_back_to_0_1_0_and_forward_without_a_repeat(
    cluster: Cluster, releases: dict[str, Path]
) -> None:
    data = cluster.root / "round-trip"
    seen: list[int] = []
    current = cluster.server(1, 2, data=data, reserve=5)
    seen += numbers(current.bind, "invoice", count=7)
    assert current.term() == 0
    downgraded = old_server(cluster, releases["0.1.0"], data)
    seen += numbers(downgraded.bind, "invoice", count=7)
    assert downgraded.proc.kill() != 0  # even after a crash of the old version
    upgraded = cluster.server(1, 2, data=data, reserve=5)
    seen += numbers(upgraded.bind, "invoice", count=7)
    assert len(set(seen)) == len(seen) == 21 and seen == sorted(seen)


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_a_fenced_store_is_refused_by_the_released_servers(
    cluster: Cluster, releases: dict[str, Path], version: str
) -> None:
    data = cluster.root / f"fenced-{version}"
    current = cluster.server(1, 2, data=data, extra=["--fenced"])
    assert ask(current.bind, ["invoice", "0"]) == ["UNAVAILABLE", "fenced"]
    assert current.term() == 0
    assert (store_meta(data)["oldest_version"], store_meta(data)["format"]) == ("0.2.0", "2")
    refused = old_server(cluster, releases[version], data, wait=False)
    assert refused.proc.wait(30) == 1
    assert "has format 2, this server reads 1" in refused.proc.log()

    # Released by the current version (here: unfenced), the store is theirs to open again.
    again = cluster.server(1, 2, data=data)
    assert request(again.control, b'{"type":"unfence"}') is not None
    assert numbers(again.bind, "invoice") == [1]
    assert again.term() == 0
    older = old_server(cluster, releases[version], data)
    assert numbers(older.bind, "invoice", last=1)[0] > 1


def test_a_store_for_a_newer_version_is_refused_by_this_server(cluster: Cluster) -> None:
    data = cluster.root / "from-the-future"
    server = cluster.server(1, 2, data=data)
    assert numbers(server.bind, "invoice") == [1]
    assert server.term() == 0
    conn = sqlite3.connect(data / "seqgen.db")
    with conn:
        conn.executemany("UPDATE meta SET value = ? WHERE key = ?",
                         [("99.0.0", "oldest_version"), ("2", "format")])
    conn.close()
    refused: Proc = cluster.restart(server, wait=False)
    assert refused.wait(30) == 1
    assert "may only be opened by seqgen 99.0.0 or later" in refused.log()
