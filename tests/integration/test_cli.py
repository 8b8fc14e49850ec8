"""The ``seqgen`` command line end to end, against real servers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from seqgen_common.limits import MAX_VALUE
from tests.conftest import Cluster, numbers, request, tcp

SCRIPT = Path(sys.executable).parent / "seqgen"


def seqgen(*args: str, env: dict[str, str] | None = None,
           via: str = "module") -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if via == "script" else [sys.executable, "-m", "seqgen_client"]
    environ = {k: v for k, v in os.environ.items() if k != "SEQGEN_ENDPOINTS"}
    environ.update(env or {})
    return subprocess.run([*command, *args], capture_output=True, text=True, env=environ,
                          timeout=60, check=False)


@pytest.mark.parametrize("via", ["module", "script"])
def test_next_prints_numbers_one_per_line(cluster: Cluster, via: str) -> None:
    odd = cluster.server(1, 2)
    even = cluster.server(2, 2)
    one = seqgen("next", "inv", "-e", odd.bind, "-e", even.bind, via=via)
    assert one.returncode == 0, one.stderr
    assert one.stderr == ""
    assert one.stdout.count("\n") == 1
    first = int(one.stdout)
    many = seqgen("next", "inv", "--count", "5", "-e", odd.bind, "--endpoint", even.bind, via=via)
    assert many.returncode == 0, many.stderr
    values = [int(line) for line in many.stdout.splitlines()]
    assert len(values) == 5
    assert values == sorted(values)
    assert first not in values


def test_last_makes_a_server_that_fell_behind_skip_past_it(cluster: Cluster) -> None:
    odd = cluster.server(1, 2, drift=10)
    even = cluster.server(2, 2, drift=10)
    assert numbers(odd.bind, "script", last=5000) == [5001]  # server 1 ran ahead
    behind = seqgen("next", "script", "-e", even.bind)
    assert behind.returncode == 0, behind.stderr
    assert int(behind.stdout) == 2  # carries nothing: server 2 stays where it was
    carried = seqgen("next", "script", "--last", "5001", "--count", "2", "-e", even.bind)
    assert carried.returncode == 0, carried.stderr
    assert [int(line) for line in carried.stdout.splitlines()] == [5002, 5004]
    bad = seqgen("next", "script", "--last", "-5", "-e", even.bind)
    assert bad.returncode == 2 and "--last" in bad.stderr, bad.stderr


def test_endpoints_from_the_environment(cluster: Cluster) -> None:
    odd = cluster.server(1, 2)
    even = cluster.server(2, 2)
    # Both entries are used: whichever the run starts with, the dead one fails over.
    done = seqgen("next", "env", "--timeout", "0.3",
                  env={"SEQGEN_ENDPOINTS": f" {tcp()} , {odd.bind},"})
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) % 2 == 1
    # -e wins over the environment.
    only_even = seqgen("next", "env", "-e", even.bind, env={"SEQGEN_ENDPOINTS": odd.bind})
    assert only_even.returncode == 0, only_even.stderr
    assert int(only_even.stdout) % 2 == 0


def test_the_default_endpoint_is_the_local_cluster_s() -> None:
    done = seqgen("next", "default-endpoint", "--timeout", "0.1", "--deadline", "0.2")
    if done.returncode == 0:  # a local cluster runs on this machine and answered
        assert int(done.stdout) > 0
    else:
        assert done.returncode == 4, done.stderr
        assert "tcp://127.0.0.1:6410" in done.stderr


def test_a_bad_name_or_count_is_a_usage_error_and_sends_nothing(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    for args in (["", "-e", server.bind], ["x", "--count", "1001", "-e", server.bind],
                 ["x", "-n", "0", "-e", server.bind]):
        done = seqgen("next", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stdout == ""
        assert done.stderr.startswith("usage: seqgen next "), done.stderr
    status = request(server.control, b'{"type":"get_status"}')
    assert status is not None
    assert sum(msgspec.json.decode(status[0])["counters"]["requests"].values()) == 0


def test_a_key_file_error_shows_the_usage_of_seqgen_next(tmp_path: Path) -> None:
    done = seqgen("next", "x", "--server-key", str(tmp_path / "missing.key"))
    assert done.returncode == 2
    assert done.stderr.startswith("usage: seqgen next "), done.stderr
    assert f"seqgen next: error: server public key file {tmp_path / 'missing.key'}" in done.stderr


def test_a_refused_request_exits_3_with_its_code(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    numbers(server.bind, "edge", last=MAX_VALUE - 1)  # the server is at the maximum now
    exhausted = seqgen("next", "edge", "-e", server.bind)
    assert exhausted.returncode == 3
    assert exhausted.stdout == ""
    assert exhausted.stderr.startswith("seqgen: EXHAUSTED: ")


def test_no_answer_exits_4_within_the_deadline(cluster: Cluster) -> None:
    frozen = cluster.server(1, 1)
    frozen.stop()
    started = time.monotonic()
    done = seqgen("next", "x", "-e", frozen.bind, "-e", tcp(), "--timeout", "0.2",
                  "--deadline", "0.6")
    elapsed = time.monotonic() - started
    frozen.cont()
    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr.startswith("seqgen: UNAVAILABLE: ")
    assert elapsed < 10.0  # interpreter start-up included; the call itself gives up at 0.6 s


def test_usage_errors_exit_2() -> None:
    for args in (["next"], ["next", "x", "-e", "localhost:6410"], ["next", "x", "--count", "a"]):
        done = seqgen(*args)
        assert done.returncode == 2, args
        assert "usage:" in done.stderr
    done = seqgen("next", "x", env={"SEQGEN_ENDPOINTS": "not-a-uri"})
    assert done.returncode == 2
    assert "SEQGEN_ENDPOINTS" in done.stderr


def test_help_lists_the_exit_codes() -> None:
    done = seqgen("next", "--help", via="script")
    assert done.returncode == 0
    assert "exit status" in done.stdout
    assert "4  unavailable" in done.stdout


def test_a_closed_pipe_is_not_an_error(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqgen_client", "next", "pipe", "-n", "1000", "-e", server.bind],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `seqgen next ... | head -0`: the reader is gone before any output
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 0, err
    assert "Traceback" not in err
