"""Endpoint helpers: validate ZeroMQ and HTTP endpoint URIs, tell loopback ones."""

from __future__ import annotations

import ipaddress
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["HttpAddress", "is_loopback", "parse_http", "validate_zmq"]

_ZMQ_SCHEMES = ("tcp", "ipc", "inproc")
_LOOPBACK_NAMES = frozenset({"localhost", "lo", "ip6-localhost"})


def validate_zmq(endpoint: str) -> str:
    """Return ``endpoint`` if it is a usable ZeroMQ URI, else raise ValueError."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep or scheme not in _ZMQ_SCHEMES or not rest:
        raise ValueError(
            f"{endpoint!r} is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH or inproc://NAME)"
        )
    if scheme == "tcp":
        host, colon, port = rest.rpartition(":")
        if not colon or not host:
            raise ValueError(f"{endpoint!r} needs a host and a port (tcp://HOST:PORT)")
        if port != "*" and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{endpoint!r} has an invalid port {port!r}")
    return endpoint


def _tcp_host(endpoint: str) -> str:
    rest = endpoint.partition("://")[2]
    host = rest.rpartition(":")[0]
    # "tcp://eth0;10.0.0.1:5555" names a source interface before ";".
    host = host.rpartition(";")[2]
    return host.strip("[]")


def is_loopback(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// endpoints on a loopback address."""
    scheme = endpoint.partition("://")[0]
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = _tcp_host(endpoint)
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpAddress(NamedTuple):
    host: str
    port: int
    tls: bool = False
    """https://"""


def parse_http(url: str) -> HttpAddress:
    """``http://HOST:PORT`` or ``https://HOST:PORT`` as (host, port, tls); raise ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http://HOST:PORT or https://HOST:PORT address")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} has an invalid port") from exc
    tls = parts.scheme == "https"
    return HttpAddress(parts.hostname, port or (443 if tls else 80), tls)
