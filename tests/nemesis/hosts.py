"""One supervisord per test host, on a rendered deployment template, inside the host's namespace."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from tests.nemesis.netns import Network
from tests.nemesis.render import main_conf

log = logging.getLogger(__name__)

VENV = Path(sys.prefix)
SUPERVISORD = VENV / "bin" / "supervisord"
SUPERVISORCTL = VENV / "bin" / "supervisorctl"


class SupervisedHost:
    """supervisord in ``host``'s namespace with ``rendered`` (a template's text) included."""

    def __init__(self, net: Network, host: str, root: Path, rendered: str,
                 env: dict[str, str]) -> None:
        self.net = net
        self.host = host
        self.root = root
        (root / "log").mkdir(parents=True, exist_ok=True)
        include = root / "seqgen.conf"
        include.write_text(rendered)
        self.conf = root / "supervisord.conf"
        self.conf.write_text(main_conf(root, f"{net.tag}-{host}", include))
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None
        self.starts = 0

    @property
    def address(self) -> str:
        return self.net.hosts[self.host].address

    def start(self) -> None:
        """Start supervisord (which starts the programs); readiness is the caller's real request."""
        self.starts += 1
        self._close_out()
        self._out = open(self.root / f"supervisord-{self.starts}.out", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.net.exec_argv(self.host, [str(SUPERVISORD), "-n", "-c", str(self.conf)]),
            stdout=self._out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )

    def kill_all(self) -> list[int]:
        """kill -9 every process of the host (supervisord and its programs), as a host crash."""
        pids = self.net.signal_all(self.host, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)
        return pids

    def kill_programs(self) -> list[int]:
        """kill -9 the programs only: supervisord restarts them (autorestart)."""
        keep = self.proc.pid if self.proc is not None else -1
        pids = [pid for pid in self.net.pids(self.host) if pid != keep]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SUPERVISORCTL), "-c", str(self.conf), *args], capture_output=True,
                              text=True, timeout=60, check=False)

    def stop(self) -> None:
        """Shut down as an operator would (supervisorctl shutdown); kill what does not stop."""
        self.net.signal_all(self.host, signal.SIGCONT)  # a frozen host must hear us
        if self.proc is not None and self.proc.poll() is None:
            self.ctl("shutdown")
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                log.warning("supervisord of %s did not stop; killing the host", self.host)
                self.kill_all()
        self._close_out()

    def _close_out(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def logs(self, tail_bytes: int = 3000) -> str:
        """The tails of this host's supervisord and program logs, for failure messages."""
        parts = []
        for path in sorted([*self.root.glob("*.log"), *self.root.glob("*.out"),
                            *(self.root / "log").glob("*.log")]):
            data = path.read_bytes()[-tail_bytes:].decode(errors="replace")
            parts.append(f"--- {self.host}: {path.name}\n{data}")
        return "\n".join(parts)
