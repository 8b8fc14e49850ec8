"""Command line -> ProxyConfig. Nothing here reads the environment."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, TypeAlias

import msgspec

from seqgen_common import bounds
from seqgen_common.curve import (
    CurveClient,
    CurveServer,
    KeyPair,
    read_key_pair,
    read_public_key,
)
from seqgen_common.daemon import (
    MemoryLimitMb,
    add_curve_flags,
    add_daemon_flags,
    curve_from_flags,
)
from seqgen_common.endpoints import parse_http, validate_zmq
from seqgen_common.limits import DEFAULT_PUBLIC_PORT

__all__ = ["ProxyConfig", "parse_args"]

MIN_TIMEOUT_S = 0.01
MAX_TIMEOUT_S = 60.0
MAX_IN_FLIGHT_LIMIT = 100_000
"""--max-in-flight may not exceed this (it also sizes the backend socket queues)."""
MAX_QUEUED_LIMIT = 1_000_000

_Interval: TypeAlias = Annotated[float, msgspec.Meta(ge=MIN_TIMEOUT_S, le=MAX_TIMEOUT_S)]


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    RANGES: ClassVar = bounds.Ranges.BETWEEN
    """How a range reads in a message: ``must be between 1 and 100000``."""

    hosts: tuple[str, ...]
    """Backends (servers or other proxies), tried round-robin."""
    bind: str = f"tcp://0.0.0.0:{DEFAULT_PUBLIC_PORT}"
    timeout_s: _Interval = 1.0
    """How long one attempt on one backend may take before the next backend is tried."""
    probe_interval_s: _Interval = 0.25
    """How often a backend that is down is probed."""
    max_names: Annotated[int, msgspec.Meta(ge=1)] = 100_000
    """Names whose highest relayed number is remembered (least recently used are forgotten)."""
    max_in_flight: Annotated[int, msgspec.Meta(ge=1, le=MAX_IN_FLIGHT_LIMIT)] = 1000
    """Requests forwarded and not yet answered; beyond this requests wait in the proxy."""
    max_queued: Annotated[int, msgspec.Meta(ge=0, le=MAX_QUEUED_LIMIT)] = 10_000
    """Requests waiting for room in flight; beyond this they are answered UNAVAILABLE."""
    coalesce: bool = True
    """Requests for one name that wait while a request of the name is out leave together."""
    hedge: bool = True
    """A backend request unanswered within the hedge delay goes to a second backend too."""
    curve: CurveServer | None = None
    """CURVE on the frontend (clients); None: plain."""
    host_curve: CurveClient | None = None
    """CURVE towards every host (one server public key for all); None: plain."""
    metrics: str | None = None
    """Where Prometheus metrics are served (http://HOST:PORT); None: not served."""
    log_level: str = "INFO"
    log_format: str = "plain"
    """plain lines or JSON lines (seqgen_common.logs)."""
    memory_limit_mb: MemoryLimitMb = 0
    """A ceiling on the process's memory (0: none); past it the process ends."""

    def __post_init__(self) -> None:
        bounds.check_config(self)


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seqgen-proxy",
        description="seqgen relay: answers the public protocol by forwarding each valid request "
        "to one of its hosts (servers or proxies), with failover. It caps a client's last "
        "number at the highest number it relayed itself and forwards nothing else.",
    )
    d = ProxyConfig(hosts=())
    p.add_argument("--bind", default=d.bind, metavar="URI",
                   help="public ZeroMQ endpoint for clients (default %(default)s)")
    p.add_argument("--host", action="append", default=[], metavar="URI", dest="hosts",
                   help="a backend: a seqgen-server's --bind or another proxy's --bind; "
                   "repeat for each (at least one)")
    p.add_argument("--timeout", type=float, default=d.timeout_s, metavar="SECONDS", dest="timeout_s",
                   help="how long one backend may take to answer before the request is retried "
                   "on the next; a client waits at most about this times the number of hosts "
                   "(default %(default)s)")
    p.add_argument("--probe-interval", type=float, default=d.probe_interval_s, metavar="SECONDS",
                   dest="probe_interval_s",
                   help="how often a backend that is down is probed (default %(default)s)")
    p.add_argument("--max-names", type=int, default=d.max_names, metavar="N",
                   help="names whose highest relayed number is remembered for capping `last`; "
                   "the least recently used are forgotten (default %(default)s)")
    p.add_argument("--max-in-flight", type=int, default=d.max_in_flight, metavar="N",
                   help="requests forwarded and not yet answered; beyond this requests wait in "
                   "the proxy until replies come back (default %(default)s)")
    p.add_argument("--max-queued", type=int, default=d.max_queued, metavar="N",
                   help="requests that may wait in the proxy for room in flight, at most half "
                   "of them for one name; beyond this, and for a request that waited a whole "
                   "--timeout, the client gets UNAVAILABLE (overloaded) at once, so that it tries "
                   "elsewhere (default %(default)s)")
    p.add_argument("--coalesce", action=argparse.BooleanOptionalAction, default=d.coalesce,
                   help="while a request for a name is out to a host, further requests for the "
                   "name wait and then go out together as one request, each client getting its "
                   "own numbers; --no-coalesce forwards every request on its own "
                   "(default: coalesce)")
    p.add_argument("--hedge", action=argparse.BooleanOptionalAction, default=d.hedge,
                   help="a request a host has not answered within the hedge delay (twice the "
                   "recent p99 latency, 10 to 50 ms) goes to a second healthy host too, within a "
                   "budget of 5%% extra requests; the first answer is relayed, the other one's "
                   "numbers are skipped; --no-hedge waits for --timeout (default: hedge)")
    p.add_argument("--metrics", metavar="URL",
                   help="serve Prometheus metrics at URL/metrics (http://HOST:PORT, e.g. "
                   "http://127.0.0.1:6419), from a thread of their own; off by default")
    add_curve_flags(p, "frontend (--bind)")
    p.add_argument("--host-public-key", type=Path, metavar="FILE",
                   help="talk CURVE to the hosts: the hosts' public key (their NAME.key). One "
                   "key for all hosts: servers behind one proxy share one key pair")
    p.add_argument("--curve-client-key", type=Path, metavar="FILE",
                   help="with --host-public-key: this proxy's own key pair (NAME.key_secret) as a "
                   "client of the hosts, to be listed in their --curve-clients. Without it an "
                   "ephemeral pair is made at start, which only hosts accepting any client take")
    add_daemon_flags(p)
    return p


def parse_args(argv: list[str] | None = None) -> ProxyConfig:
    """Parse and check the flags; exits with status 2 and a message when they are wrong."""
    parser = _build_parser()
    ns = parser.parse_args(argv)
    hosts: list[str] = ns.hosts
    if not hosts:
        parser.error("at least one --host is required")
    for endpoint in [ns.bind, *hosts]:
        try:
            validate_zmq(endpoint)
        except ValueError as exc:
            parser.error(str(exc))
    if len(set(hosts)) != len(hosts):
        parser.error("each --host may be given only once")
    if ns.bind in hosts:
        parser.error(f"--host {ns.bind} is this proxy's own --bind")
    try:
        bounds.check(ProxyConfig, vars(ns))
    except ValueError as exc:
        parser.error(str(exc))
    if ns.metrics is not None:
        try:
            if parse_http(ns.metrics).tls:
                raise ValueError(f"{ns.metrics!r}: the proxy serves its metrics in plain HTTP "
                                 "(http://HOST:PORT); keep them on a private address")
        except ValueError as exc:
            parser.error(f"--metrics: {exc}")
    try:
        curve = curve_from_flags(ns.curve_secret_key, ns.curve_clients)
        host_curve = _host_curve(parser, ns.host_public_key, ns.curve_client_key)
    except ValueError as exc:
        parser.error(str(exc))
    return ProxyConfig(
        hosts=tuple(hosts), bind=ns.bind, timeout_s=ns.timeout_s,
        probe_interval_s=ns.probe_interval_s, max_names=ns.max_names,
        max_in_flight=ns.max_in_flight, max_queued=ns.max_queued, coalesce=ns.coalesce,
        hedge=ns.hedge, curve=curve,
        host_curve=host_curve, metrics=ns.metrics, log_level=ns.log_level,
        log_format=ns.log_format, memory_limit_mb=ns.memory_limit_mb,
    )


def _host_curve(parser: argparse.ArgumentParser, host_key: Path | None,
                client_key: Path | None) -> CurveClient | None:
    """CURVE towards the hosts, key files read and checked (ValueError if bad)."""
    if host_key is None:
        if client_key is not None:
            parser.error("--curve-client-key needs --host-public-key")
        return None
    server_key = read_public_key(host_key, "--host-public-key")
    if client_key is None:
        return CurveClient(server_key, KeyPair.generate(), ephemeral=True)
    return CurveClient(server_key, read_key_pair(client_key, "--curve-client-key"))
