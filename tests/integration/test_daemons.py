"""What the three daemons share (issue 21): --version, and one table of exit statuses:
0 a clean stop, 1 a start that failed (a port in use...), 2 bad flags or configuration."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqgen_common import __version__
from tests.conftest import tcp

DAEMONS = ["seqgen_server", "seqgen_proxy", "seqgen_admin"]


def _run(package: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", package, *args],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback TCP port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("package", DAEMONS)
def test_every_daemon_tells_its_version(package: str) -> None:
    done = _run(package, "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"{package.replace('_', '-')} {__version__}"


@pytest.mark.parametrize("package", DAEMONS)
def test_a_bad_flag_exits_2(package: str) -> None:
    done = _run(package, "--no-such-flag")
    assert done.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in done.stderr


def test_a_port_in_use_exits_1_on_every_daemon(busy_port: int, tmp_path: Path) -> None:
    address = f"127.0.0.1:{busy_port}"
    starts = {
        "seqgen_server": ["--bind", f"tcp://{address}", "--control", tcp(), "--data",
                          str(tmp_path / "data"), "--instance", "1", "--instances", "1"],
        "seqgen_proxy": ["--bind", f"tcp://{address}", "--host", tcp()],
        "seqgen_admin": ["--admin", f"http://{address}", "--control", tcp()],
    }
    for package, args in starts.items():
        done = _run(package, *args)
        assert done.returncode == 1, (package, done.stderr)
        assert "in use" in done.stderr.lower(), (package, done.stderr)
    assert not (tmp_path / "data" / "seqgen.db").exists()
