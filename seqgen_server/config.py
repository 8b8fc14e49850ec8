"""Command line -> ServerConfig. Nothing here reads the environment."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, TypeAlias

import msgspec

from seqgen_common import bounds
from seqgen_common.curve import CurveServer
from seqgen_common.daemon import (
    MemoryLimitMb,
    add_curve_flags,
    add_daemon_flags,
    curve_from_flags,
)
from seqgen_common.endpoints import is_loopback, validate_zmq
from seqgen_common.limits import DEFAULT_CONTROL_PORT, DEFAULT_PUBLIC_PORT

__all__ = ["ServerConfig", "parse_args"]

DEFAULT_RESERVE = 10_000
DEFAULT_MAX_SEQUENCES = 10_000_000
DEFAULT_MAX_DISK_WAITS = 100_000

_AtLeast0: TypeAlias = Annotated[int, msgspec.Meta(ge=0)]
_AtLeast1: TypeAlias = Annotated[int, msgspec.Meta(ge=1)]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    bind: str = f"tcp://0.0.0.0:{DEFAULT_PUBLIC_PORT}"
    control: str = f"tcp://127.0.0.1:{DEFAULT_CONTROL_PORT}"
    instance: _AtLeast1 | None = None
    """None: read from the store (which must exist: a new store needs both numbers)."""
    instances: _AtLeast1 | None = None
    drift: _AtLeast0 = 100
    data: Path = Path("/var/lib/seqgen")
    reserve: _AtLeast1 = DEFAULT_RESERVE
    max_sequences: _AtLeast1 = DEFAULT_MAX_SEQUENCES
    max_disk_waits: _AtLeast0 = DEFAULT_MAX_DISK_WAITS
    """Replies that may wait for a store write; past it, requests that would wait are shed."""
    allow_remote_control: bool = False
    curve: CurveServer | None = None
    """CURVE on the public socket (the control socket never has it); None: plain."""
    log_level: str = "INFO"
    log_format: str = "plain"
    """plain lines or JSON lines (seqgen_common.logs)."""
    memory_limit_mb: MemoryLimitMb = 0
    """A ceiling on the process's memory (0: none); past it the process ends."""
    fenced: bool = False
    """Start fenced (and record the fence in the store) until the admin recovers or unfences."""

    def __post_init__(self) -> None:
        _check({field.name: getattr(self, field.name) for field in fields(self)})


def _check(values: Mapping[str, Any]) -> None:
    """The bounds of ServerConfig's fields, then --instance within --instances (ValueError)."""
    bounds.check(ServerConfig, values)
    instance, instances = values["instance"], values["instances"]
    if instance is not None and instances is not None and instance > instances:
        raise ValueError(f"--instance must be between 1 and --instances ({instances}), got {instance}")


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seqgen-server",
        description="seqgen allocator daemon: hands out numbers congruent to INSTANCE "
        "mod INSTANCES, durably, on a ZeroMQ REQ/REP socket.",
    )
    d = ServerConfig()
    p.add_argument("--bind", default=d.bind, metavar="URI",
                   help="public ZeroMQ endpoint for clients and proxies (default %(default)s)")
    p.add_argument("--control", default=d.control, metavar="URI",
                   help="private control endpoint for seqgen-admin; loopback or ipc only "
                   "unless --allow-remote-control (default %(default)s)")
    p.add_argument("--instance", type=int, default=d.instance, metavar="K",
                   help="this server's number, 1..INSTANCES; it issues numbers v with "
                   "v %% INSTANCES == K %% INSTANCES; fixed forever. Needed with --instances to "
                   "create a store; an existing store records both (default: the store's)")
    p.add_argument("--instances", type=int, default=d.instances, metavar="N",
                   help="how many servers the cluster has, the same on all; fixed forever "
                   "(default: the store's)")
    p.add_argument("--drift", type=int, default=d.drift, metavar="D",
                   help="skip ahead when a client's last number is more than D above this "
                   "server's (default %(default)s)")
    p.add_argument("--data", type=Path, default=d.data, metavar="DIR",
                   help="directory of the durable state, created if missing (default %(default)s)")
    p.add_argument("--reserve", type=int, default=d.reserve, metavar="R",
                   help="most own numbers per name made durable ahead of use: a crash skips at "
                   "most R per name (a quiet name far fewer: the reservation grows with a name's "
                   "rate), a clean stop none (default %(default)s)")
    p.add_argument("--max-sequences", type=int, default=d.max_sequences, metavar="M",
                   help="refuse new names (INTERNAL) once this many exist (default %(default)s)")
    p.add_argument("--max-disk-waits", type=int, default=d.max_disk_waits, metavar="W",
                   help="replies that may wait for a store write at once; past it, or while a "
                   "store write has taken half a second, a request that would wait too is "
                   "answered UNAVAILABLE (overloaded), so that its client tries another server; "
                   "0: never wait, always shed (default %(default)s)")
    p.add_argument("--fenced", action="store_true",
                   help="start fenced: the public socket answers every request UNAVAILABLE "
                   "\"fenced\" and issues nothing until the admin's POST /recover (or POST "
                   "/unfence). The fence is kept in the store, so the server stays fenced across "
                   "restarts until released. Use it for a server on an empty or restored data "
                   "directory (docs/operations.md)")
    p.add_argument("--allow-remote-control", action="store_true",
                   help="allow a --control address that is not loopback (it has no "
                   "authentication: protect it by other means)")
    add_curve_flags(p, "public socket (the control socket is not affected)")
    add_daemon_flags(p)
    return p


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    """Parse and check the flags; exits with status 2 and a message when they are wrong."""
    parser = _build_parser()
    ns = parser.parse_args(argv)
    try:
        _check(vars(ns))
    except ValueError as exc:
        parser.error(str(exc))
    for flag in ("bind", "control"):
        try:
            validate_zmq(getattr(ns, flag))
        except ValueError as exc:
            parser.error(f"--{flag}: {exc}")
    if ns.bind == ns.control:
        parser.error("--bind and --control must differ")
    if not ns.allow_remote_control and not is_loopback(ns.control):
        parser.error(
            f"--control {ns.control} is not a loopback address; the control socket has no "
            "authentication. Use 127.0.0.1 or ipc://, or pass --allow-remote-control"
        )
    try:
        curve = curve_from_flags(ns.curve_secret_key, ns.curve_clients)
    except ValueError as exc:
        parser.error(str(exc))
    return ServerConfig(
        bind=ns.bind, control=ns.control, instance=ns.instance, instances=ns.instances,
        drift=ns.drift, data=Path(os.path.abspath(ns.data)), reserve=ns.reserve,
        max_sequences=ns.max_sequences, max_disk_waits=ns.max_disk_waits,
        allow_remote_control=ns.allow_remote_control, curve=curve, log_level=ns.log_level,
        log_format=ns.log_format,
        memory_limit_mb=ns.memory_limit_mb, fenced=ns.fenced,
    )
