"""The nemesis cluster: 3 server hosts and 2 client hosts on a private bridge.

    s1 10.231.0.11   supervisord: seqgen-server (instance 1 of 3) + seqgen-admin
    s2 10.231.0.12   ... instance 2 of 3
    s3 10.231.0.13   ... instance 3 of 3
    c1 10.231.0.21   supervisord: seqgen-proxy p1; clients through both proxies
    c2 10.231.0.22   supervisord: seqgen-proxy p2; clients directly to the servers and
                     through both proxies; the observer (agent)

Everything is started from the real templates of etc/deploy and is ready when
real requests say so: a number through every server and proxy, and every
admin's /readyz, asked from inside the network; then every client process has
recorded successful calls.
"""

from __future__ import annotations

import getpass
import logging
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from tests.nemesis.agent import AgentConfig
from tests.nemesis.checker import stats
from tests.nemesis.hosts import VENV, SupervisedHost
from tests.nemesis.netns import SUBNET, Network
from tests.nemesis.records import CallRecord, WorkerConfig, read_calls
from tests.nemesis.render import REPO, render_host, render_proxy
from tests.tls_support import Pki

log = logging.getLogger(__name__)

SERVER_HOSTS = {"s1": 11, "s2": 12, "s3": 13}
CLIENT_HOSTS = {"c1": 21, "c2": 22}
PROXY_OF = {"c1": "p1", "c2": "p2"}
PORT = 6410
ADMIN_PORT = 6411
INSTANCES = len(SERVER_HOSTS)
DRIFT = 100
"""The servers' --drift: the template leaves the default."""
ATTEMPT_TIMEOUT_S = 1.0
"""The clients' per-attempt timeout (the library's default, which the workers keep)."""
DEADLINE_S = 5.0
"""The clients' deadline per call (the library's default)."""
READY_TIMEOUT_S = 90.0
ADMIN_TOKEN = "nemesis-token"


def worker_program(spec: WorkerSpec) -> list[str]:
    """The command of a client process of ``spec``'s kind (its config JSON follows)."""
    if not spec.node:
        return [sys.executable, "-m", "tests.nemesis.worker"]
    node = shutil.which("node")
    assert node is not None, node_missing()
    return [node, str(NODE_WORKER)]


def base_env() -> dict[str, str]:
    """This process's environment without any SEQGEN_ variable (supervisord's, before a host's)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SEQGEN_")}


def public(address: str) -> str:
    return f"tcp://{address}:{PORT}"


@dataclass(frozen=True)
class WorkerSpec:
    host: str
    kind: Literal["sync", "async", "node-promise", "node-callback"]
    path: Literal["direct", "proxies"]
    concurrency: int

    @property
    def label(self) -> str:
        return f"{self.host}-{self.kind}-{self.path}"

    @property
    def node(self) -> bool:
        return self.kind.startswith("node-")


PYTHON_WORKERS = (
    WorkerSpec("c1", "sync", "proxies", 2),
    WorkerSpec("c1", "async", "proxies", 4),
    WorkerSpec("c2", "sync", "direct", 2),
    WorkerSpec("c2", "async", "direct", 4),
    WorkerSpec("c2", "sync", "proxies", 2),
    WorkerSpec("c2", "async", "proxies", 4),
)
NODE_WORKERS = (
    WorkerSpec("c1", "node-callback", "proxies", 2),
    WorkerSpec("c1", "node-promise", "direct", 4),
    WorkerSpec("c2", "node-promise", "proxies", 4),
    WorkerSpec("c2", "node-callback", "direct", 2),
)
"""The Node.js client (tests/nemesis/worker.js), both call forms, both paths, both hosts."""
NODE_WORKER = REPO / "tests" / "nemesis" / "worker.js"


def node_missing() -> str | None:
    """Why the Node.js workers cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (scripts/test installs it as root)"
    if not (REPO / "clients" / "node" / "node_modules" / "zeromq").is_dir():
        return "clients/node has no node_modules (scripts/test runs npm ci there)"
    return None


def workers() -> tuple[WorkerSpec, ...]:
    """Every client process of the run: the Node.js ones where Node.js and the package are
    installed (CI installs both); a run without them says so in its log and report."""
    missing = node_missing()
    if missing is not None:
        log.warning("the nemesis run has no Node.js clients: %s", missing)
        return PYTHON_WORKERS
    return PYTHON_WORKERS + NODE_WORKERS


class Worker:
    def __init__(self, spec: WorkerSpec, config: WorkerConfig, argv: list[str], log_path: Path) -> None:
        self.spec = spec
        self.config = config
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)

    def calls(self) -> list[CallRecord]:
        return read_calls(Path(self.config.out))

    def stop(self, timeout_s: float) -> int | None:
        """Close its stdin (stop), let calls in flight finish; kill it when it does not end."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            code: int | None = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            code = None
        self._log.close()
        return code


class Agent:
    """The observer process on a client host; one JSON command, one JSON answer."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, cwd=REPO, start_new_session=True)

    def ask(self, command: dict[str, object], timeout_s: float) -> dict[str, object]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(msgspec.json.encode(command) + b"\n")
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], timeout_s)
        if not ready:
            raise TimeoutError(f"the agent did not answer {command} within {timeout_s} s")
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the agent exited ({self.proc.poll()}) on {command}")
        answer = msgspec.json.decode(line, type=dict[str, object])
        return answer

    def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


class Cluster:
    def __init__(self, root: Path, tag: str, rate_per_worker_s: float, max_duration_s: float) -> None:
        self.root = root
        self.net = Network(tag)
        self.rate_per_worker_s = rate_per_worker_s
        self.max_duration_s = max_duration_s
        self.servers: dict[str, SupervisedHost] = {}
        self.proxies: dict[str, SupervisedHost] = {}
        self.workers: dict[str, Worker] = {}
        self.agent: Agent | None = None
        self.started_at = 0.0

    # ---- addresses -------------------------------------------------------------------

    @staticmethod
    def address(host: str) -> str:
        return f"{SUBNET}.{(SERVER_HOSTS | CLIENT_HOSTS)[host]}"

    def server_endpoints(self) -> list[str]:
        return [public(self.address(h)) for h in SERVER_HOSTS]

    def proxy_endpoints(self, near: str) -> list[str]:
        """Both proxies, the client host's own first (the client starts at a random one anyway)."""
        hosts = sorted(CLIENT_HOSTS, key=lambda h: h != near)
        return [public(self.address(h)) for h in hosts]

    # ---- start -----------------------------------------------------------------------

    def start(self) -> None:
        self.net.build(SERVER_HOSTS | CLIENT_HOSTS)
        user = getpass.getuser()
        pki = Pki(self.root / "pki")  # the admin plane runs over mutual TLS, as deployed
        for k, host in enumerate(SERVER_HOSTS, start=1):
            # The admins peer as deployed: each polls the others over mutual TLS.
            self.servers[host] = self.server_host(pki, host, self.host_env(k, INSTANCES, SERVER_HOSTS))
        servers = [self.address(h) for h in SERVER_HOSTS]
        for host in CLIENT_HOSTS:
            self.proxies[host] = SupervisedHost(self.net, host, self.root / host,
                                                render_proxy(VENV, user, servers), base_env())
        for supervised in [*self.servers.values(), *self.proxies.values()]:
            supervised.start()
        publics = {h: public(self.address(h)) for h in SERVER_HOSTS}
        publics |= {PROXY_OF[h]: public(self.address(h)) for h in CLIENT_HOSTS}
        admins = {f"admin-{h}": self.admin_url(h) for h in SERVER_HOSTS}
        observer = pki.host("observer")
        config = AgentConfig(publics=publics, admins=admins, tls={
            "ca": str(pki.ca), "cert": str(observer.cert), "key": str(observer.key)})
        self.agent = Agent(self.net.exec_argv("c2", [sys.executable, "-m", "tests.nemesis.agent",
                                                     msgspec.json.encode(config).decode()]),
                           self.root / "agent.log")
        self.wait_ready("cluster start", peered=True)  # the admins poll each other over mTLS
        for spec in workers():
            self._start_worker(spec)
        self._wait_workers_serving()
        self.started_at = time.monotonic()

    def host_env(self, instance: int, instances: int, peered: Iterable[str]) -> dict[str, str]:
        """supervisord's environment for a server host (what the template reads): its instance,
        the count, the token and the admin URLs of the ``peered`` hosts other than itself."""
        host = list(SERVER_HOSTS)[instance - 1]
        peers = " ".join(self.admin_url(h) for h in peered if h != host)
        return base_env() | {"SEQGEN_INSTANCE": str(instance), "SEQGEN_INSTANCES": str(instances),
                           "SEQGEN_ADMIN_TOKEN": ADMIN_TOKEN, "SEQGEN_PEERS": peers}

    def admin_url(self, host: str) -> str:
        return f"https://{self.address(host)}:{ADMIN_PORT}"

    def server_host(self, pki: Pki, host: str, env: dict[str, str]) -> SupervisedHost:
        """A server host on the rendered template: its data directory, its admin's certificate
        (signed by ``pki``), supervisord's environment ``env`` (started by the caller)."""
        root = self.root / host
        data = root / "data"
        data.mkdir(parents=True)
        tls = root / "tls"
        tls.mkdir()
        cert = pki.host(host, alt_names=f"IP:{self.address(host)}")
        shutil.copy(pki.ca, tls / "ca.crt")
        shutil.copy(cert.cert, tls / "host.crt")
        shutil.copy(cert.key, tls / "host.key")
        return SupervisedHost(self.net, host, root, render_host(VENV, data, getpass.getuser(), tls),
                              env)

    def _start_worker(self, spec: WorkerSpec) -> None:
        endpoints = self.server_endpoints() if spec.path == "direct" else self.proxy_endpoints(spec.host)
        config = WorkerConfig(label=spec.label, kind=spec.kind, endpoints=endpoints, name="busy",
                              rate_per_s=self.rate_per_worker_s, concurrency=spec.concurrency,
                              out=str(self.root / f"{spec.label}.jsonl"),
                              max_duration_s=self.max_duration_s)
        argv = self.net.exec_argv(spec.host, [*worker_program(spec), msgspec.json.encode(config).decode()])
        self.workers[spec.label] = Worker(spec, config, argv, self.root / f"{spec.label}.log")

    def _wait_workers_serving(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Every client process has recorded successful calls (real numbers, not a state)."""
        deadline = time.monotonic() + timeout_s
        while True:
            waiting = {label: w for label, w in self.workers.items()
                       if stats(w.calls()).succeeded < 5}
            if not waiting:
                return
            for label, w in waiting.items():
                if w.proc.poll() is not None:
                    raise AssertionError(f"client {label} exited {w.proc.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"clients without numbers after {timeout_s} s: {sorted(waiting)}")
            time.sleep(0.1)  # between reads of their real results

    def wait_ready(self, what: str, timeout_s: float = READY_TIMEOUT_S, *, peered: bool = False,
                   only: Iterable[str] | None = None) -> float:
        """Every server and proxy hands out a number, every admin is ready (with ``peered``, and
        sees every other admin over mutual TLS); with ``only``, just those labels (of the
        agent's config). The seconds it took."""
        assert self.agent is not None
        answer = self.agent.ask({"op": "ready", "timeout_s": timeout_s, "peered": peered,
                                 "only": None if only is None else sorted(only)}, timeout_s + 30)
        if not answer["ok"]:
            raise AssertionError(f"{what}: not ready after {timeout_s} s: {answer['failing']}\n"
                                 + self.logs())
        elapsed = answer["elapsed_s"]
        assert isinstance(elapsed, float)
        return elapsed

    def converge(self, timeout_s: float = 60.0) -> dict[str, object]:
        assert self.agent is not None
        return self.agent.ask({"op": "converge", "name": "busy", "drift": DRIFT, "timeout_s": timeout_s},
                              timeout_s + 30)

    # ---- history -----------------------------------------------------------------------

    def histories(self) -> dict[str, list[CallRecord]]:
        return {label: w.calls() for label, w in self.workers.items()}

    def logs(self) -> str:
        return "\n".join(h.logs() for h in [*self.servers.values(), *self.proxies.values()])

    # ---- stop --------------------------------------------------------------------------

    def stop_workers(self) -> dict[str, int | None]:
        """Stop the clients (their calls in flight finish); their exit statuses."""
        for w in self.workers.values():
            if w.proc.stdin is not None and not w.proc.stdin.closed:
                w.proc.stdin.close()
        return {label: w.stop(DEADLINE_S + 15) for label, w in self.workers.items()}

    def close(self) -> None:
        """Stop everything and remove the network, whatever state it is in."""
        errors: list[str] = []
        try:
            self.stop_workers()
        except Exception as exc:  # teardown goes on; the network must go
            errors.append(f"workers: {exc!r}")
        if self.agent is not None:
            try:
                self.agent.stop()
            except Exception as exc:
                errors.append(f"agent: {exc!r}")
        for supervised in [*self.servers.values(), *self.proxies.values()]:
            try:
                supervised.stop()
            except Exception as exc:
                errors.append(f"{supervised.host}: {exc!r}")
        self.net.destroy()
        if errors:
            log.warning("nemesis teardown: %s", "; ".join(errors))
