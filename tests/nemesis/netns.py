"""A small private network of "hosts" made of Linux network namespaces.

Every host is a namespace ``<tag>-<host>`` with one interface ``eth0`` and an
address in ``SUBNET``; its veth peer is a port of a bridge that lives in a
namespace of its own (``<tag>-br``), so nothing of this network exists in the
root namespace: the root namespace has no route to these addresses, and no
packet of the suite can leave the machine. ``tag`` is ``sgn<pid>`` of the
test process, unique per run; ``remove_leftovers`` deletes what a crashed
earlier run left behind (namespaces whose run is no longer alive).

Faults are done here too: a host's bridge port down (the cable pulled at the
switch), and nftables rules on the bridge's forward path (packets that vanish
between hosts, silently for both ends).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUBNET = "10.231.0"
"""The suite's /24: these addresses exist only inside the suite's namespaces."""
PREFIX = "sgn"
_TAG_RE = re.compile(rf"^{PREFIX}(\d+)-")
NFT_TABLE = "nemesis"
COMMAND_TIMEOUT_S = 20.0


def tool(name: str) -> str | None:
    """The path of a system tool, also where root's tools live when PATH lacks them."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def missing_tools() -> list[str]:
    return [name for name in ("ip", "nft") if tool(name) is None]


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run an administration command; its stdout. CalledProcessError carries stderr."""
    done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S, check=False)
    if check and done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, list(argv), done.stdout, done.stderr)
    return done.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespaces() -> list[str]:
    out = run([_ip(), "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def ns_pids(ns: str) -> list[int]:
    """Every process inside namespace ``ns``."""
    out = run([_ip(), "netns", "pids", ns], check=False)
    return [int(word) for word in out.split() if word.isdigit()]


def kill_all_in(ns: str, timeout_s: float = 10.0) -> None:
    """SIGKILL every process in ``ns`` (they are the suite's own) and wait until none is left."""
    deadline = time.monotonic() + timeout_s
    while pids := ns_pids(ns):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} in {ns} survive SIGKILL")
        time.sleep(0.05)  # until the kernel has reaped them


def remove_leftovers(tmp_root: Path = Path("/tmp")) -> list[str]:
    """Delete namespaces and temp dirs of earlier runs whose test process is gone."""
    removed = []
    for ns in namespaces():
        m = _TAG_RE.match(ns)
        if m and int(m[1]) != os.getpid() and not _alive(int(m[1])):
            kill_all_in(ns)
            run([_ip(), "netns", "del", ns], check=False)
            removed.append(ns)
    for path in tmp_root.glob(f"{PREFIX}*-*"):
        m = _TAG_RE.match(path.name)
        if m and path.is_dir() and int(m[1]) != os.getpid() and not _alive(int(m[1])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    if removed:
        log.warning("removed leftovers of a crashed nemesis run: %s", removed)
    return removed


def _ip() -> str:
    path = tool("ip")
    if path is None:
        raise RuntimeError("iproute2's ip is not installed")
    return path


def _nft() -> str:
    path = tool("nft")
    if path is None:
        raise RuntimeError("nftables' nft is not installed")
    return path


@dataclass(frozen=True)
class Host:
    name: str
    """Short name, also the bridge port's name: s1, c2..."""
    ns: str
    address: str


class Network:
    """The bridge and its hosts; ``destroy`` removes all of it (also after a partial build)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.bridge_ns = f"{tag}-br"
        self.hosts: dict[str, Host] = {}
        self._made: list[str] = []

    # ---- building ------------------------------------------------------------------

    def build(self, addresses: dict[str, int]) -> None:
        """Make the bridge and one host per entry (short name -> last octet of its address)."""
        ip = _ip()
        self._add_ns(self.bridge_ns)
        run([ip, "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge"])
        run([ip, "-n", self.bridge_ns, "link", "set", "br0", "up"])
        for name, octet in addresses.items():
            host = Host(name, f"{self.tag}-{name}", f"{SUBNET}.{octet}")
            self._add_ns(host.ns)
            # The veth is made inside the bridge's namespace with its peer put straight into
            # the host's: it never exists in the root namespace.
            run([ip, "-n", self.bridge_ns, "link", "add", "name", name, "type", "veth",
                 "peer", "name", "eth0", "netns", host.ns])
            run([ip, "-n", self.bridge_ns, "link", "set", name, "master", "br0"])
            run([ip, "-n", self.bridge_ns, "link", "set", name, "up"])
            run([ip, "-n", host.ns, "addr", "add", f"{host.address}/24", "dev", "eth0"])
            run([ip, "-n", host.ns, "link", "set", "eth0", "up"])
            run([ip, "-n", host.ns, "link", "set", "lo", "up"])
            self.hosts[name] = host

    def _add_ns(self, ns: str) -> None:
        run([_ip(), "netns", "add", ns])
        self._made.append(ns)

    def exec_argv(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` to run inside ``host``'s namespace."""
        return [_ip(), "netns", "exec", self.hosts[host].ns, *argv]

    def pids(self, host: str) -> list[int]:
        return ns_pids(self.hosts[host].ns)

    # ---- faults --------------------------------------------------------------------

    def link(self, host: str, up: bool) -> None:
        """The host's port on the bridge up or down: its cable plugged in or pulled."""
        run([_ip(), "-n", self.bridge_ns, "link", "set", host, "up" if up else "down"])

    def switch_drop(self, rules: list[str]) -> None:
        """nftables rules on the bridge's forward path, replacing any: packets vanish in the
        "switch", so neither end learns of it (unlike a drop in a host's own output path,
        which TCP sees as a local error and retries every 0.5 s without backing off)."""
        self.heal_switch()
        text = "\n".join([
            f"table bridge {NFT_TABLE} {{",
            "  chain forward {",
            "    type filter hook forward priority 0; policy accept;",
            *(f"    {rule}" for rule in rules),
            "  }",
            "}",
            "",
        ])
        run([_ip(), "netns", "exec", self.bridge_ns, _nft(), "-f", "-"], stdin=text)

    def heal_switch(self) -> None:
        run([_ip(), "netns", "exec", self.bridge_ns, _nft(), "delete", "table", "bridge", NFT_TABLE],
            check=False)

    def switch_ruleset(self) -> str:
        return run([_ip(), "netns", "exec", self.bridge_ns, _nft(), "list", "ruleset"])

    def signal_all(self, host: str, sig: int) -> list[int]:
        """Send ``sig`` to every process of ``host``; the pids."""
        pids = self.pids(host)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return pids

    # ---- teardown ------------------------------------------------------------------

    def destroy(self) -> None:
        """Kill what runs inside, delete every namespace (veths and rules go with them)."""
        errors = []
        for ns in reversed(self._made):
            try:
                kill_all_in(ns)
            except RuntimeError as exc:
                errors.append(str(exc))
            done = subprocess.run([_ip(), "netns", "del", ns], capture_output=True, text=True,
                                  check=False)
            if done.returncode != 0:
                errors.append(f"ip netns del {ns}: {done.stderr.strip()}")
        self._made = []
        self.hosts = {}
        if errors:
            raise RuntimeError("; ".join(errors))
