"""seqgen-server as users meet it: real processes, raw REQ and DEALER sockets."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import msgspec
import pytest
import zmq

from seqgen_common.limits import MAX_VALUE
from tests.conftest import Cluster, ServerProc, ask, numbers, request, tcp, wait_until


def test_two_servers_issue_odd_and_even(cluster: Cluster) -> None:
    odd = cluster.server(1, 2)
    even = cluster.server(2, 2)
    assert numbers(odd.bind, "invoice") == [1]
    assert numbers(odd.bind, "invoice") == [3]
    assert numbers(even.bind, "invoice") == [2]
    assert numbers(even.bind, "invoice", last=3) == [4]
    assert numbers(odd.bind, "other") == [1]  # names are independent
    assert numbers(odd.bind, "Invoice") == [1]  # and case-sensitive


def test_three_servers_residues(cluster: Cluster) -> None:
    servers = [cluster.server(k, 3) for k in (1, 2, 3)]
    got = [numbers(s.bind, "t", count=4) for s in servers]
    assert got == [[1, 4, 7, 10], [2, 5, 8, 11], [3, 6, 9, 12]]


def test_catch_up_past_drift_only(cluster: Cluster) -> None:
    s = cluster.server(2, 2, drift=10)
    assert numbers(s.bind, "x") == [2]
    assert numbers(s.bind, "x", last=12) == [4]  # 12 - 2 == drift: no catch-up
    assert numbers(s.bind, "x", last=15) == [16]  # 15 - 4 > drift: skip ahead
    assert numbers(s.bind, "x", last=3) == [18]  # a lower last changes nothing


def test_batches_ascend_by_instances(cluster: Cluster) -> None:
    s = cluster.server(1, 2)
    assert numbers(s.bind, "b", count=5) == [1, 3, 5, 7, 9]
    batch = numbers(s.bind, "b", count=1000)
    assert len(batch) == 1000
    assert batch[0] == 11
    assert all(b - a == 2 for a, b in pairwise(batch))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", "BAD_REQUEST"),
        (b'{"a":1}', "BAD_REQUEST"),
        (b'["x"]', "BAD_REQUEST"),
        (b'["x","0",1,1]', "BAD_REQUEST"),
        (b'["","0"]', "BAD_NAME"),
        (b'["' + b"n" * 201 + b'","0"]', "BAD_NAME"),
        (b'["a\\u0001","0"]', "BAD_NAME"),
        (b'["x",5]', "BAD_LAST"),
        (b'["x","9223372036854775808"]', "BAD_LAST"),
        (b'["x","0",0]', "BAD_COUNT"),
        (b'["x","0",1001]', "BAD_COUNT"),
    ],
)
def test_error_codes(cluster: Cluster, body: bytes, code: str) -> None:
    s = cluster.server()
    reply = ask(s.bind, body)
    assert reply[0] == code
    assert isinstance(reply[1], str) and reply[1]
    assert len(reply) == 2
    assert numbers(s.bind, "x") == [1]  # nothing was issued, the server still serves


def test_exhausted_issues_nothing(cluster: Cluster) -> None:
    s = cluster.server(1, 1, drift=0)
    assert numbers(s.bind, "big", last=MAX_VALUE - 3) == [MAX_VALUE - 2]
    assert ask(s.bind, ["big", "0", 3])[0] == "EXHAUSTED"
    assert numbers(s.bind, "big", count=2) == [MAX_VALUE - 1, MAX_VALUE]
    assert ask(s.bind, ["big", "0"])[0] == "EXHAUSTED"
    assert ask(s.bind, ["fresh", str(MAX_VALUE)])[0] == "EXHAUSTED"


def test_dealer_clients_and_bad_envelopes(cluster: Cluster) -> None:
    s = cluster.server()
    ctx = zmq.Context.instance()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(s.bind)
    try:
        # Pipelined requests with the empty delimiter, as a REQ would send them.
        for _ in range(3):
            dealer.send_multipart([b"", b'["d","0"]'])
        replies = []
        for _ in range(3):
            assert dealer.poll(5000)
            replies.append(dealer.recv_multipart())
        assert replies == [[b"", b'[null,"1"]'], [b"", b'[null,"2"]'], [b"", b'[null,"3"]']]
        # Multi-hop envelope (as through a ROUTER/DEALER device) is echoed whole.
        dealer.send_multipart([b"hop", b"", b'["d","0"]'])
        assert dealer.poll(5000)
        assert dealer.recv_multipart() == [b"hop", b"", b'[null,"4"]']
        # A body of more than one frame is refused and issues nothing.
        dealer.send_multipart([b"", b'["d","0"]', b"extra"])
        assert dealer.poll(5000)
        frames = dealer.recv_multipart()
        assert frames[0] == b""
        assert msgspec.json.decode(frames[1])[0] == "BAD_REQUEST"
        assert numbers(s.bind, "d") == [5]
    finally:
        dealer.close()


def test_oversize_frame_is_refused_and_server_keeps_serving(cluster: Cluster) -> None:
    s = cluster.server()
    big = b'["' + b"x" * 70_000 + b'","0"]'
    assert request(s.bind, big, timeout_s=1.0) is None
    assert numbers(s.bind, "after") == [1]
    assert s.alive()


def test_sigterm_stops_fast_and_restart_skips_nothing(cluster: Cluster) -> None:
    s = cluster.server(1, 2, reserve=1000)
    assert numbers(s.bind, "inv", count=3) == [1, 3, 5]
    started = time.monotonic()
    assert s.term() == 0
    assert time.monotonic() - started < 1.5
    s2 = cluster.restart(s)
    assert numbers(s2.bind, "inv") == [7]
    assert "stopped cleanly" in s.log()


def test_sigint_stops_cleanly(cluster: Cluster) -> None:
    s = cluster.server()
    numbers(s.bind, "a")
    s.signal(signal.SIGINT)
    assert s.wait() == 0
    assert numbers(cluster.restart(s).bind, "a") == [2]


def test_sigkill_restarts_above_everything_within_the_reservation(cluster: Cluster) -> None:
    reserve = 10
    s = cluster.server(2, 2, reserve=reserve)
    issued = []
    for _ in range(25):
        issued += numbers(s.bind, "k")
    s.kill()
    s2 = cluster.restart(s)
    after = numbers(s2.bind, "k")[0]
    assert after > max(issued)
    skipped_own = (after - max(issued)) // 2 - 1
    assert 0 <= skipped_own <= reserve


def test_second_server_on_same_data_is_refused(cluster: Cluster) -> None:
    s = cluster.server()
    second = cluster.server(data=s.data, wait=False)
    assert second.wait() != 0
    assert "locked" in second.log()
    assert numbers(s.bind, "still") == [1]


def test_instance_mismatch_is_refused_with_a_message(cluster: Cluster) -> None:
    s = cluster.server(1, 2)
    numbers(s.bind, "a")
    s.term()
    other = cluster.server(2, 2, data=s.data, wait=False)
    assert other.wait() != 0
    log = other.log()
    assert "instance 1 of 2" in log and "instance 2 of 2" in log


def test_corrupt_store_refuses_to_start(cluster: Cluster) -> None:
    s = cluster.server()
    numbers(s.bind, "a")
    s.term()
    db = s.data / "seqgen.db"
    db.write_bytes(b"\0garbage" * 1000)
    again = cluster.restart(s, wait=False)
    assert again.wait() != 0
    assert "corrupt" in again.log()


def test_missing_meta_refuses_to_start(cluster: Cluster) -> None:
    s = cluster.server()
    numbers(s.bind, "a")
    s.term()
    with sqlite3.connect(s.data / "seqgen.db") as conn:
        conn.execute("DROP TABLE meta")
    again = cluster.restart(s, wait=False)
    assert again.wait() != 0
    assert "meta" in again.log()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--instance", "3", "--instances", "2"], "--instance must be between 1 and"),
        (["--instances", "0"], "--instances must be at least 1"),
        (["--drift", "-1"], "--drift must be 0 or more"),
        (["--control", "tcp://0.0.0.0:6999"], "not a loopback address"),
        (["--bind", "http://x"], "not a ZeroMQ endpoint"),
    ],
)
def test_bad_flags_exit_with_a_message(args: list[str], message: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "seqgen_server", "--data", str(tmp_path), *args],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode != 0
    assert message in done.stderr


def test_help_explains_every_flag() -> None:
    done = subprocess.run([sys.executable, "-m", "seqgen_server", "--help"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0
    for flag in ("--bind", "--control", "--instance", "--instances", "--drift", "--data",
                 "--reserve", "--log-level"):
        assert flag in done.stdout


def test_remote_control_allowed_only_when_asked(cluster: Cluster) -> None:
    s = cluster.server(control=tcp().replace("127.0.0.1", "0.0.0.0"),
                       extra=["--allow-remote-control"], wait=False)
    # 0.0.0.0 is reachable through loopback too.
    port = s.control.rsplit(":", 1)[1]
    s.control = f"tcp://127.0.0.1:{port}"
    wait_until(s.ping, 15, "server", s)


def test_start_log_line_names_the_whole_configuration(cluster: Cluster) -> None:
    s = cluster.server(2, 3, drift=7, reserve=9, extra=["--max-sequences", "50",
                                                        "--max-disk-waits", "3"])
    line = next(x for x in s.log().splitlines() if "seqgen-server" in x)
    for part in ("instance=2", "instances=3", "drift=7", "reserve=9", "max_sequences=50",
                 "max_disk_waits=3", "curve=None", "fenced=False", f"bind={s.bind}",
                 f"control={s.control}", f"data={s.data}", "memory_limit_mb=0"):
        assert part in line, (part, line)


def test_control_socket_answers_and_survives_garbage(cluster: Cluster) -> None:
    s = cluster.server()
    for junk in (b"", b"nonsense", b'{"type":"nope"}', b'{"type":"get_sequence"}', b"[1,2]"):
        reply = request(s.control, junk)
        assert reply is not None
        assert msgspec.json.decode(reply[0])["type"] == "error"
    assert s.ping()


# ---- defaults that cannot hurt (issue 21) ------------------------------------------------


def _server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seqgen_server", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_new_store_needs_both_instance_flags(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for flags in ([], ["--instances", "2"], ["--instance", "1"]):
        done = _server("--data", str(data), "--bind", tcp(), "--control", tcp(), *flags)
        assert done.returncode == 2, done.stderr
        assert "start it once with --instance K --instances N" in done.stderr
        assert not (data / "seqgen.db").exists()


def test_an_existing_store_needs_no_instance_flags(cluster: Cluster) -> None:
    first = cluster.server(2, 3)
    assert first.term() == 0
    again = ServerProc([sys.executable, "-m", "seqgen_server", "--bind", first.bind, "--control",
                        first.control, "--data", str(first.data)],
                       cluster.root / "again.log", first.bind, first.control, first.data)
    cluster.procs.append(again)
    wait_until(again.ping, 15, "seqgen-server on its store, without instance flags", again)
    assert "instance 2 of 3" in again.log()
    assert numbers(again.bind, "x")[0] % 3 == 2
    assert again.term() == 0
    # A flag that contradicts the store is refused, as before (a failed start: 1).
    done = _server("--data", str(first.data), "--bind", tcp(), "--control", tcp(), "--instances", "2")
    assert done.returncode == 1 and "belongs to instance 2 of 3" in done.stderr


def test_a_server_that_cannot_bind_exits_1_before_it_creates_a_store(cluster: Cluster,
                                                                     tmp_path: Path) -> None:
    busy = cluster.server()
    data = tmp_path / "fresh"
    done = _server("--data", str(data), "--bind", busy.bind, "--control", tcp(),
                   "--instance", "1", "--instances", "1")
    assert done.returncode == 1, done.stderr
    assert "cannot start" in done.stderr
    assert not (data / "seqgen.db").exists()
