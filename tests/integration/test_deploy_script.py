"""docs/operations.md's deployment script, run as an operator would paste it.

The three shell blocks of "Deploy a host from scratch" (install, first start, check)
are read from the document itself. The install block runs in a temporary prefix
(``PREFIX``; the daemons' user is whoever runs the test), its venv step skipped by
linking this checkout's venv where the script expects it. There is no systemd in a
test: the unit the script wrote is started as systemd would (its ``ExecStart``,
with the variables of its ``EnvironmentFile``), then the check block runs and must
see both programs RUNNING, the admin ready, no conflict and a number.
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cluster, free_port, tcp
from tests.markdown import ROOT, section
from tests.tls_support import Pki

HEADING = "Deploy a host from scratch"
TOKEN = "deploy-test-token"
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[str]:
    found = _BLOCK.findall(section("docs/operations.md", HEADING))
    assert len(found) == 3, f"docs/operations.md, {HEADING!r}: expected 3 sh blocks " \
                            f"(install, first start, check), found {len(found)}"
    return found


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_every_block_is_valid_bash() -> None:
    for block in blocks():
        done = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, (done.stderr, block)


@pytest.fixture
def prefix() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sgd", dir="/tmp"))  # short: a unix socket lives there
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as systemd's EnvironmentFile reads them (no quotes used here)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value for key, value in pairs}


def unit_value(unit: str, key: str) -> str:
    match = re.search(rf"^{key}=(.*)$", unit, re.MULTILINE)
    assert match, f"the unit has no {key}=:\n{unit}"
    return match.group(1)


def test_the_script_installs_a_host_that_serves(prefix: Path, cluster: Cluster) -> None:
    if shutil.which("curl") is None:
        pytest.skip("needs curl on PATH (the check block uses it)")
    install, start, check = blocks()
    venv = prefix / "opt" / "seqgen" / ".venv"
    venv.parent.mkdir(parents=True)
    venv.symlink_to(Path(sys.executable).parent.parent)  # step 2 finds supervisord and skips
    # The TLS files an operator made as docs/operations.md says (one CA, one host certificate).
    pki = Pki(prefix / "pki")
    host = pki.host("h1")
    tls_files = prefix / "tls-files"
    tls_files.mkdir()
    shutil.copy(pki.ca, tls_files / "ca.crt")
    shutil.copy(host.cert, tls_files / "host.crt")
    shutil.copy(host.key, tls_files / "host.key")
    env = {**os.environ, "PREFIX": str(prefix), "SEQGEN_USER": getpass.getuser(),
           "CHECKOUT": str(ROOT), "SEQGEN_ADMIN_TOKEN": TOKEN, "SEQGEN_PEERS": "",
           "SEQGEN_INSTANCE": "1", "SEQGEN_INSTANCES": "2", "TLS_FILES": str(tls_files)}
    done = bash(install, env)
    assert done.returncode == 0, done.stderr
    assert bash(install, env).returncode == 0, "the install block cannot be run twice"

    etc, data = prefix / "etc" / "seqgen", prefix / "var" / "lib" / "seqgen"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((etc / "seqgen.env").stat().st_mode) == 0o600
    assert stat.S_IMODE((prefix / "var" / "log" / "seqgen").stat().st_mode) == 0o750
    assert stat.S_IMODE((etc / "tls").stat().st_mode) == 0o700
    assert stat.S_IMODE((etc / "tls" / "host.key").stat().st_mode) == 0o600
    assert environment_file(etc / "seqgen.env") == {
        "SEQGEN_INSTANCE": "1", "SEQGEN_INSTANCES": "2", "SEQGEN_PEERS": "",
        "SEQGEN_ADMIN_TOKEN": TOKEN}
    template = (etc / "conf.d" / "seqgen.conf").read_text()
    assert f"{venv}/bin/seqgen-server" in template and f"--data {data}" in template
    settings = [line for line in template.splitlines() if not line.startswith(";")]
    moved = [line.replace(str(prefix), "<PREFIX>") for line in settings]
    assert not [line for line in moved if re.search(r"(?<!<PREFIX>)/(opt|var/lib|etc)/seqgen", line)]

    # The template's fixed ports may be taken on a shared test machine: free ones instead.
    public, admin_port, control = free_port(), free_port(), tcp()
    template = template.replace("tcp://0.0.0.0:6410", f"tcp://127.0.0.1:{public}")
    template = template.replace("https://0.0.0.0:6411", f"https://127.0.0.1:{admin_port}")
    (etc / "conf.d" / "seqgen.conf").write_text(template.replace("tcp://127.0.0.1:6412", control))

    unit_file = prefix / "etc" / "systemd" / "system" / "seqgen.service"
    unit = unit_file.read_text()
    if shutil.which("systemd-analyze"):  # where systemd's tools are installed
        verify = subprocess.run(["systemd-analyze", "verify", str(unit_file)], capture_output=True,
                                text=True, timeout=60, check=False)
        assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    assert "systemctl enable --now seqgen" in start
    # /run is a tmpfs: systemd makes supervisord's directory again at every start.
    assert unit_value(unit, "RuntimeDirectory") == "seqgen" and 'RUN=$PREFIX/run/seqgen' in install
    service_env = {**os.environ, **environment_file(Path(unit_value(unit, "EnvironmentFile")))}
    command = shlex.split(unit_value(unit, "ExecStart"))
    assert command[0] == f"{venv}/bin/supervisord"  # the venv's supervisord, not the system's
    supervisord = cluster.command(command, "supervisord", env=service_env)
    try:
        variables = install[:install.index("set -eu")]
        done = bash(variables + "set -eu\n" + check, {
            **env, "ADMIN": f"https://127.0.0.1:{admin_port}", "PUBLIC": f"tcp://127.0.0.1:{public}"})
        assert done.returncode == 0, (done.stdout, done.stderr, supervisord.log())
        out = done.stdout
        assert re.search(r"^seqgen-server\s+RUNNING", out, re.MULTILINE), out
        assert re.search(r"^seqgen-admin\s+RUNNING", out, re.MULTILINE), out
        assert '"status":"ready"' in out and '"conflicts":[]' in out, out
        assert re.search(r"^\d+$", out.splitlines()[-1]), out
        assert (data / "seqgen.db").is_file()
    finally:
        assert supervisord.term(timeout_s=30) == 0
    with socket.socket() as probe:  # supervisord stopped its programs: the port is free again
        probe.bind(("127.0.0.1", public))
