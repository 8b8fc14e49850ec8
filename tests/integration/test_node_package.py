"""The Node.js client as users get it: its sockets, its npm tarball, its TypeScript types.

- The socket options the Node.js client sets, read back from a live socket, are the
  Python clients' (docs/client.md, "Sockets: one table for every client").
- ``npm pack`` makes ``seqgen-<version>.tgz`` (the project's version) that a plain
  ``npm install ./seqgen-X.Y.Z.tgz`` installs into a new project, where both module
  forms get numbers from a real server.
- ``tsc --noEmit`` accepts a program that uses every call form, and rejects one that
  misuses the API (so the types are really checked).

Skipped without Node.js 18+ and npm (scripts/test installs them as root).
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest
import zmq

from seqgen_common.sockets import CLIENT_DEALER
from tests.conftest import Cluster
from tests.integration.test_node_client import NODE, NPM, PACKAGE, SKIP_REASON

pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")

REPO = PACKAGE.parents[1]
NPM_TIMEOUT_S = 240.0


def _run(argv: list[str], cwd: Path, timeout_s: float = NPM_TIMEOUT_S,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
                          check=False, env=env)
    return done


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (
        f"{done.args} exited {done.returncode}\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}")
    return done.stdout


def _ensure_dependencies() -> None:
    if not (PACKAGE / "node_modules" / "typescript").is_dir():
        assert NPM is not None
        _ok(_run([NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"], PACKAGE))


def _project_version() -> str:
    with open(REPO / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def test_node_sockets_have_the_python_clients_options() -> None:
    assert NODE is not None
    _ensure_dependencies()
    script = """
const zmq = require('zeromq');
const { SOCKET_OPTIONS } = require('./lib/endpoint');
const sock = new zmq.Dealer(SOCKET_OPTIONS);
const names = ['linger', 'maxMessageSize', 'connectTimeout', 'reconnectInterval',
  'reconnectMaxInterval', 'heartbeatInterval', 'heartbeatTimeout', 'sendHighWaterMark',
  'receiveHighWaterMark'];
const out = {};
for (const name of names) out[name] = Number(sock[name]);
sock.close();
process.stdout.write(JSON.stringify(out));
"""
    node = json.loads(_ok(_run([NODE, "-e", script], PACKAGE, timeout_s=60)))
    python = CLIENT_DEALER.options
    assert node == {
        "linger": python[zmq.LINGER],
        "maxMessageSize": python[zmq.MAXMSGSIZE],
        "connectTimeout": python[zmq.CONNECT_TIMEOUT],
        "reconnectInterval": python[zmq.RECONNECT_IVL],
        "reconnectMaxInterval": python[zmq.RECONNECT_IVL_MAX],
        "heartbeatInterval": python[zmq.HEARTBEAT_IVL],
        "heartbeatTimeout": python[zmq.HEARTBEAT_TIMEOUT],
        "sendHighWaterMark": python[zmq.SNDHWM],
        "receiveHighWaterMark": python[zmq.RCVHWM],
    }


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert NPM is not None
    _ensure_dependencies()
    out = tmp_path_factory.mktemp("pack")
    _ok(_run([NPM, "pack", "--pack-destination", str(out), "--loglevel=error"], PACKAGE))
    made = list(out.glob("*.tgz"))
    assert len(made) == 1, made
    return made[0]


@pytest.fixture(scope="module")
def installed(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new npm project with the tarball installed the plain way."""
    assert NPM is not None
    project = tmp_path_factory.mktemp("app")
    (project / "package.json").write_text(json.dumps({"name": "app", "version": "1.0.0", "private": True}))
    _ok(_run([NPM, "install", str(tarball), "--no-audit", "--no-fund", "--prefer-offline",
              "--loglevel=error"], project))
    return project


def test_npm_pack_names_the_projects_version(tarball: Path) -> None:
    package = json.loads((PACKAGE / "package.json").read_text())
    lock = json.loads((PACKAGE / "package-lock.json").read_text())
    version = _project_version()
    assert package["version"] == lock["version"] == lock["packages"][""]["version"] == version
    assert tarball.name == f"seqgen-{version}.tgz"


def test_the_tarball_installs_and_works_in_a_new_project(installed: Path, cluster: Cluster) -> None:
    assert NODE is not None
    server = cluster.server()
    copied = installed / "node_modules" / "seqgen"
    assert copied.is_dir() and not copied.is_symlink(), "installed as files, not linked to the source"
    assert not (copied / "test").exists(), "the tarball carries the library, not its tests"
    env = {k: v for k, v in os.environ.items() if k != "SEQGEN_ENDPOINTS"}
    common = (f"const seq = seqgen([{json.dumps(server.bind)}]);"
              "seq.next('packed', (err, a) => { if (err) throw err;"
              " seq.next('packed').then((b) => seq.nextMany('packed', 2)).then((many) => {"
              " console.log([a, ...many].join(' ')); seq.close(); }); });")
    cjs = _ok(_run([NODE, "-e", "const seqgen = require('seqgen');" + common], installed, 60, env))
    (installed / "esm.mjs").write_text("import seqgen from 'seqgen';\n" + common + "\n")
    esm = _ok(_run([NODE, "esm.mjs"], installed, 60, env))
    first = [int(word) for word in cjs.split()]
    second = [int(word) for word in esm.split()]
    assert first == [1, 3, 4] and second == [5, 7, 8], (cjs, esm)


GOOD_TS = """
import seqgen = require('seqgen');

async function main(): Promise<void> {
  const seq: seqgen.Client = seqgen(['tcp://127.0.0.1:6410'], { timeoutMs: 500, deadlineMs: 2000 });
  const byDefault: seqgen.Client = seqgen({ coalesce: false });
  const one: bigint = await seq.next('invoice');
  const signal = new AbortController().signal;
  const withOptions: bigint = await seq.next('invoice', { deadlineMs: 100, signal });
  seq.next('invoice', (err: Error | null, value?: bigint) => { void err; void value; });
  seq.next('invoice', { deadlineMs: 100 }, (err, value) => { void err; void value; });
  const many: bigint[] = await seq.nextMany('ticket', 5);
  const manyWithOptions: bigint[] = await seq.nextMany('ticket', 5, { deadlineMs: 100 });
  seq.nextMany('ticket', 5, (err, values) => { void err; void values; });
  seq.nextMany('ticket', 5, undefined, (err, values) => { void err; void values; });
  const last: bigint = seq.last('invoice');
  const stats: seqgen.Stats = seq.stats;
  const counted: number = stats.requests + stats.calls + stats.coalescedCalls + stats.lostNumbers
    + stats.attempts + stats.timeouts;
  const endpoints: readonly string[] = seq.endpoints;
  const closed: boolean = seq.closed;
  try {
    await seq.next('x');
  } catch (err) {
    if (err instanceof seqgen.SeqgenError) { const code: string = err.code; void code; }
  }
  seq.close();
  byDefault.close();
  void [one, withOptions, many, manyWithOptions, last, counted, endpoints, closed];
}
void main();
"""

BAD_TS = """
import seqgen = require('seqgen');
const seq = seqgen();
const wrong: string = seq.last('invoice');
seq.nextMany('ticket', (err: Error | null) => { void err; });
void wrong;
"""


def _type_check(project: Path, program: str) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    (project / "program.ts").write_text(program)
    (project / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {
            "strict": True, "noEmit": True, "module": "commonjs", "target": "es2022",
            "lib": ["es2022"], "esModuleInterop": True, "skipLibCheck": False,
            "typeRoots": [str(PACKAGE / "node_modules" / "@types")], "types": ["node"],
        },
        "files": ["program.ts"],
    }))
    tsc = PACKAGE / "node_modules" / "typescript" / "bin" / "tsc"
    return _run([NODE, str(tsc), "-p", str(project / "tsconfig.json")], project, timeout_s=120)


def test_types_check_every_call_form(installed: Path) -> None:
    _ok(_type_check(installed, GOOD_TS))


def test_types_reject_a_misused_api(installed: Path) -> None:
    done = _type_check(installed, BAD_TS)
    assert done.returncode != 0
    assert "program.ts(4," in done.stdout, done.stdout  # a bigint is not a string
    assert "program.ts(5," in done.stdout, done.stdout  # the count comes before the callback

