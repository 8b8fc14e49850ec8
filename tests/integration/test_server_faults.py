"""The server under faults: a full disk, and a crash loop under load."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqgen_common.control import GetSequence, SequenceInfo, decode_control_reply, encode_control
from tests.conftest import Cluster, ask, numbers, request, require_tools, wait_until
from tests.load import check, crash_gaps


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture
def small_disk(short_tmp: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs (CI runs as root; elsewhere the test cannot fill a real disk safely)."""
    mnt = short_tmp / "disk"
    require_tools("mount", "umount")
    if os.geteuid() != 0 or not _mount_tmpfs(mnt, "8m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: Path) -> list[Path]:
    """Fill the file system with 256 KiB files (the last one partial); the files."""
    files: list[Path] = []
    chunk = b"\0" * 65536
    try:
        while True:
            filler = path / f"filler-{len(files):04d}"
            files.append(filler)
            with open(filler, "wb") as f:
                for _ in range(4):
                    f.write(chunk)
                    f.flush()
    except OSError:
        pass
    return files


def _store_bytes(data: Path) -> int:
    return sum(f.stat().st_size for f in data.iterdir() if f.name.startswith("seqgen.db"))


def test_full_disk_costs_bounded_space_and_recovers_once_a_megabyte_is_free(
    cluster: Cluster, small_disk: Path
) -> None:
    data = small_disk / "data"
    s = cluster.server(1, 1, data=data, reserve=1)  # a reservation of 1: every number is a write
    acked = {"steady": numbers(s.bind, "steady", count=5)[-1]}
    fillers = _fill(small_disk)
    store_when_full = _store_bytes(data)
    # Each new name needs a store write; soon one cannot be made.
    outcome: list[object] = []
    for i in range(5000):
        name = f"name-{i:05d}-" + "x" * 150
        outcome = ask(s.bind, [name, "0"])
        if outcome[0] is not None:
            break
        acked[name] = int(str(outcome[1]))
    assert outcome[0] == "INTERNAL", outcome
    assert len(outcome) == 2  # an error reply carries no number
    for i in range(20):  # while full, the log does not grow into what is left
        reply = ask(s.bind, [f"more-{i}", "0"])
        if reply[0] is None:
            acked[f"more-{i}"] = int(str(reply[1]))
    assert _store_bytes(data) - store_when_full < 2 * 1024 * 1024
    # Free one megabyte: it recovers by itself, without a restart, and stays recovered.
    for filler in fillers[:4]:
        filler.unlink()
    for i in range(300):
        name = f"after-{i:04d}-" + "y" * 150
        acked[name] = numbers(s.bind, name)[0]
    acked["steady"] = numbers(s.bind, "steady")[0]
    # Everything it acknowledged was durable: after kill -9 nothing is repeated.
    s.kill()
    s2 = cluster.restart(s)
    for acked_name, value in acked.items():
        assert numbers(s2.bind, acked_name)[0] > value, acked_name


def test_crash_loop_under_load_never_repeats(cluster: Cluster, short_tmp: Path) -> None:
    """Clients hammer two servers while one of them is killed -9 and restarted 10 times."""
    reserve = 20
    servers = [cluster.server(1, 2, reserve=reserve), cluster.server(2, 2, reserve=reserve)]
    endpoints = [s.bind for s in servers]
    outs = [short_tmp / f"load-{i}.json" for i in range(3)]
    clients = [
        subprocess.Popen([sys.executable, "-m", "tests.load", str(out), "crash", "6", *endpoints])
        for out in outs
    ]
    rng = random.Random(7)
    for _ in range(10):
        i = rng.randrange(2)
        servers[i].kill()
        servers[i] = cluster.restart(servers[i])
    for client in clients:
        assert client.wait(timeout=60) == 0
    report = check(outs)
    assert report.acknowledged > 100, report
    assert report.duplicated == 0
    assert report.out_of_order == 0


@pytest.mark.slow
def test_kill9_loop_50_cycles_jepsen_style(cluster: Cluster, short_tmp: Path) -> None:
    """50 kill -9/restart cycles of random servers under load from 4 client processes.

    Drift is huge so that no catch-up happens: every gap in a server's numbers then comes
    from a crash (the reservation lost) or a reply lost with the killed process.
    """
    reserve, clients = 30, 4
    servers = [
        cluster.server(k, 2, reserve=reserve, drift=10**15) for k in (1, 2)
    ]
    outs = [short_tmp / f"k9-{i}.json" for i in range(clients)]
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.load", str(out), "jepsen", "25",
                          *(s.bind for s in servers)])
        for out in outs
    ]
    rng = random.Random(50)
    crashes = 0
    while any(p.poll() is None for p in procs) and crashes < 50:
        i = rng.randrange(2)
        servers[i].kill()
        servers[i] = cluster.restart(servers[i])
        crashes += 1
    for p in procs:
        assert p.wait(timeout=120) == 0
    report = check(outs)
    gaps = crash_gaps(report.all_numbers, 2, normal=clients)
    print(f"kill -9 loop: crashes={crashes} attempted={report.attempted} "
          f"acknowledged={report.acknowledged} duplicated={report.duplicated} "
          f"out_of_order={report.out_of_order} errors={dict(report.errors)} "
          f"skips per crash (own numbers)={sorted(gaps)}")
    assert crashes >= 50
    assert report.acknowledged > 500
    assert report.duplicated == 0
    assert report.out_of_order == 0
    # A crash skips at most the reservation plus the replies lost in flight. A single gap
    # may span several crashes of one server with no acknowledged number in between, so
    # the bound is on the sum.
    assert len(gaps) <= crashes
    assert sum(gaps) <= crashes * (reserve + clients), gaps


def _current(control: str, name: str) -> int:
    reply = request(control, encode_control(GetSequence(name=name)), timeout_s=1.0)
    decoded = decode_control_reply(reply[0]) if reply else None
    return decoded.current if isinstance(decoded, SequenceInfo) else 0


def test_clean_stop_with_requests_in_flight_keeps_every_ack_durable(
    cluster: Cluster, short_tmp: Path
) -> None:
    s = cluster.server(1, 1, reserve=5)
    outs = [short_tmp / f"stop-{i}.json" for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-m", "tests.load", str(out), "inflight", "2.5", s.bind])
             for out in outs]
    # Stop the server while the clients are mid-stream.
    wait_until(lambda: _current(s.control, "inflight") > 300, 20, "clients under way")
    assert s.term() == 0
    for p in procs:
        assert p.wait(timeout=60) == 0
    report = check(outs)
    assert report.acknowledged > 0
    assert report.duplicated == 0
    highest = max(report.all_numbers)
    with sqlite3.connect(s.data / "seqgen.db") as conn:
        (mark,) = conn.execute("SELECT mark FROM sequences WHERE name = 'inflight'").fetchone()
    assert mark >= highest  # durable before it was acknowledged
    again = cluster.restart(s)
    assert numbers(again.bind, "inflight")[0] > highest


def test_read_only_data_directory_refuses_to_start(cluster: Cluster, small_disk: Path) -> None:
    s = cluster.server(data=small_disk / "data")
    assert numbers(s.bind, "ro") == [1]
    assert s.term() == 0
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=False).returncode == 0
    again = cluster.restart(s, wait=False)
    assert again.wait() != 0
    assert "cannot use data directory" in again.log()
    assert "Read-only file system" in again.log()
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert numbers(cluster.restart(s).bind, "ro") == [2]  # state intact once writable


def test_sequence_cap_refuses_new_names_only(cluster: Cluster) -> None:
    s = cluster.server(extra=["--max-sequences", "3"])
    for name in ("a", "b", "c"):
        assert numbers(s.bind, name) == [1]
    reply = ask(s.bind, ["d", "0"])
    assert reply[0] == "INTERNAL"
    assert "maximum of 3 sequences" in str(reply[1])
    assert numbers(s.bind, "a") == [2]  # existing names keep working


@pytest.fixture
def ext4_dir(short_tmp: Path) -> Iterator[Path]:
    """A small ext4 file system on a loop device (chattr +i needs ext4; CI runs as root)."""
    image, mnt = short_tmp / "ext4.img", short_tmp / "ext4"
    mnt.mkdir()
    require_tools("losetup", "mkfs.ext4", "mount", "umount", "chattr")
    if os.geteuid() != 0:
        pytest.skip("needs root for a loop device")
    with open(image, "wb") as f:
        f.truncate(32 * 1024 * 1024)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True,
                          check=False).stdout.strip()
    if not loop:
        pytest.skip("no loop device available")
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", loop], check=True, capture_output=True)
        subprocess.run(["mount", loop, str(mnt)], check=True, capture_output=True)
        yield mnt
    finally:
        subprocess.run(["chattr", "-R", "-i", str(mnt)], check=False, capture_output=True)
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        subprocess.run(["losetup", "-d", loop], check=False)


def test_store_made_read_only_mid_run_answers_internal_and_recovers(
    cluster: Cluster, ext4_dir: Path
) -> None:
    """The store's files become immutable (read-only even for root) while the server runs."""
    data = ext4_dir / "data"
    s = cluster.server(1, 1, data=data, reserve=1)  # a reservation of 1: every number is a write
    acked = numbers(s.bind, "ro", count=3)[-1]
    store_files = [str(data / "seqgen.db"), str(data / "seqgen.db-wal")]
    subprocess.run(["chattr", "+i", *store_files], check=True)
    try:
        reply = ask(s.bind, ["brand-new", "0"])  # a new name always needs a write
        assert reply[0] == "INTERNAL", reply
        assert len(reply) == 2  # no number in an error reply
        # "ro" may still have its one reserved number; after that it needs the store too.
        replies = [ask(s.bind, ["ro", "0"]) for _ in range(3)]
        served = [int(str(r[1])) for r in replies if r[0] is None]
        assert len(served) <= 1, replies
        assert [r[0] for r in replies[len(served):]] == ["INTERNAL"] * (3 - len(served))
        acked = max([acked, *served])
    finally:
        subprocess.run(["chattr", "-i", *store_files], check=True)
    # It recovers by itself once the store is writable again.
    after = numbers(s.bind, "ro")[0]
    assert after > acked
    assert numbers(s.bind, "brand-new") != []
    s.kill()
    assert numbers(cluster.restart(s).bind, "ro")[0] > after  # what it issued was durable


def test_a_kill_during_the_very_first_start_leaves_no_store_or_a_whole_one(
    cluster: Cluster, short_tmp: Path
) -> None:
    """kill -9 at random moments of the first start (from the lock on): every later start works."""
    rng = random.Random(11)
    for attempt in range(20):
        data = short_tmp / f"first-{attempt}"
        first = cluster.server(data=data, wait=False)
        deadline = time.monotonic() + 15
        while not (data / "lock").exists():  # the store is being opened from now on
            assert time.monotonic() < deadline and first.alive(), first.log()
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.02))  # the moment of the crash, not a wait for readiness
        first.kill()
        store = data / "seqgen.db"
        if store.exists():  # then it is complete: its meta data is there
            with sqlite3.connect(store) as conn:
                assert conn.execute("SELECT value FROM meta WHERE key='instance'").fetchone() == ("1",)
        again = cluster.restart(first)
        assert numbers(again.bind, "after-crash")[0] >= 1
        again.kill()
