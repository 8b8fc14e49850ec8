"""A client pointed at a server's control socket (the admin's port, by mistake) is told so at
once (issue 21), instead of "malformed reply from server"."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from seqgen_client import AsyncClient, Client
from seqgen_common.errors import ErrorCode, SeqgenError
from tests.conftest import Cluster


def test_the_python_clients_and_the_cli_name_the_control_port_mistake(cluster: Cluster) -> None:
    server = cluster.server()
    started = time.monotonic()
    with Client([server.control]) as client, pytest.raises(SeqgenError) as raised:
        client.next("x")
    assert raised.value.code == ErrorCode.INTERNAL
    assert "control socket" in raised.value.message and "--bind" in raised.value.message
    assert time.monotonic() - started < 5.0  # one answer, not the deadline

    async def from_async() -> SeqgenError:
        async with AsyncClient([server.control]) as client:
            with pytest.raises(SeqgenError) as raised:
                await client.next("x")
            return raised.value

    assert "control socket" in asyncio.run(from_async()).message
    done = subprocess.run([sys.executable, "-m", "seqgen_client.cli", "next", "x", "-e", server.control],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "control socket" in done.stderr and "port 6410" in done.stderr
