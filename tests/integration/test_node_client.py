"""The Node.js client's own tests (``node --test`` in clients/node), run as part of the suite.

They start real seqgen-server and seqgen-proxy processes from this interpreter's
environment (``SEQGEN_PYTHON``). ``scripts/test`` installs the package's
dependencies with ``npm ci``; this test does it too when ``node_modules`` is
missing. Skipped when Node.js 18 or later, or npm, is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "node"
NODE = shutil.which("node")
NPM = shutil.which("npm")
MIN_NODE_MAJOR = 18
NODE_TESTS_TIMEOUT_S = 110.0
"""Under the suite's per-test timeout; the node tests take about 10 s on a quiet machine."""


def _node_major() -> int | None:
    if NODE is None:
        return None
    done = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=30, check=False)
    match = re.fullmatch(r"v(\d+)\.\d+\.\d+\S*", done.stdout.strip())
    return int(match.group(1)) if match else None


def _skip_reason() -> str | None:
    major = _node_major()
    if major is None:
        return "node is not installed (scripts/test installs it as root)"
    if major < MIN_NODE_MAJOR:
        return f"node {major} is too old: the Node.js client needs Node.js {MIN_NODE_MAJOR} or later"
    if NPM is None:
        return "npm is not installed (scripts/test installs it as root)"
    return None


SKIP_REASON = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit status {done.returncode}\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"


def _summary(output: str, what: str) -> int:
    """A count from node's closing lines ("# pass 31" in TAP; spec has U+2139 for "#")."""
    match = re.search(rf"^(?:#|\u2139) {what} (\d+)$", output, re.MULTILINE)
    assert match is not None, f"no '{what}' count in the node test output:\n{output}"
    return int(match.group(1))


def test_node_client_suite() -> None:
    assert NODE is not None and NPM is not None
    if not (PACKAGE / "node_modules" / "zeromq").is_dir():
        installed = subprocess.run(
            [NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PACKAGE, capture_output=True, text=True, timeout=300, check=False,
        )
        assert installed.returncode == 0, "npm ci failed in clients/node:\n" + _output(installed)
    env = {key: value for key, value in os.environ.items() if key != "SEQGEN_ENDPOINTS"}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env["SEQGEN_PYTHON"] = sys.executable
    tests = sorted(str(path.relative_to(PACKAGE)) for path in (PACKAGE / "test").glob("*.test.js"))
    assert tests, f"no *.test.js in {PACKAGE / 'test'}"
    done = subprocess.run(
        [NODE, "--test", *tests], cwd=PACKAGE, env=env, capture_output=True, text=True,
        timeout=NODE_TESTS_TIMEOUT_S, check=False,
    )
    output = _output(done)
    assert done.returncode == 0, output
    assert _summary(done.stdout, "fail") == 0, output
    assert _summary(done.stdout, "skipped") == 0, "node tests were skipped:\n" + output
    assert _summary(done.stdout, "pass") > 0, output
