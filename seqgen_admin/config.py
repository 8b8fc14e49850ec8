"""Command line (and environment, passed in) -> AdminConfig. Nothing here reads os.environ."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from seqgen_common.daemon import add_daemon_flags, check_daemon_flags
from seqgen_common.endpoints import parse_http, validate_zmq
from seqgen_common.limits import DEFAULT_ADMIN_PORT, DEFAULT_CONTROL_PORT

__all__ = ["TOKEN_ENV", "AdminConfig", "parse_args"]

TOKEN_ENV = "SEQGEN_ADMIN_TOKEN"
"""The environment variable that holds the write token (preferred over --token)."""

_TOKEN = re.compile(r"[\x21-\x7e]+")
"""What fits in ``Authorization: Bearer <token>`` unchanged."""


@dataclass(frozen=True, slots=True)
class AdminConfig:
    admin: str = f"http://0.0.0.0:{DEFAULT_ADMIN_PORT}"
    """Where the HTTP server listens (http://HOST:PORT)."""
    control: str = f"tcp://127.0.0.1:{DEFAULT_CONTROL_PORT}"
    """The server's control socket."""
    token: str | None = field(default=None, repr=False)
    """Bearer token for writes; None refuses every write (403)."""
    control_timeout_s: float = 1.0
    """How long one control request may take before the admin answers 503."""
    log_level: str = "INFO"
    memory_limit_mb: int = 0
    """A ceiling on the process's memory (0: none); past it the process ends."""

    @property
    def host(self) -> str:
        return parse_http(self.admin).host

    @property
    def port(self) -> int:
        return parse_http(self.admin).port


def _build_parser() -> argparse.ArgumentParser:
    d = AdminConfig()
    p = argparse.ArgumentParser(
        prog="seqgen-admin",
        description="Admin and status HTTP server (FastAPI) for one seqgen-server, "
        "talking to it over its private control socket.",
    )
    p.add_argument("--admin", default=d.admin, metavar="URL",
                   help="HTTP address to listen on (default %(default)s)")
    p.add_argument("--control", default=d.control, metavar="URI",
                   help="the server's control socket (default %(default)s)")
    p.add_argument("--token", default=None,
                   help=f"bearer token required for writes; prefer the {TOKEN_ENV} environment "
                   "variable (a command line is visible to other users). Without a token every "
                   "write is refused with 403")
    p.add_argument("--control-timeout", type=float, default=d.control_timeout_s,
                   metavar="SECONDS", dest="control_timeout_s",
                   help="answer 503 when the server does not reply within this time "
                   "(default %(default)s)")
    add_daemon_flags(p)
    return p


def parse_args(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> AdminConfig:
    """Parse and check the flags; ``environ`` supplies SEQGEN_ADMIN_TOKEN when --token is absent.

    Exits with status 2 and a message when a flag is wrong.
    """
    parser = _build_parser()
    ns = parser.parse_args(argv)
    check_daemon_flags(parser, ns)
    try:
        parse_http(ns.admin)
    except ValueError as exc:
        parser.error(f"--admin: {exc}")
    try:
        validate_zmq(ns.control)
    except ValueError as exc:
        parser.error(f"--control: {exc}")
    if not 0 < ns.control_timeout_s <= 60:
        parser.error(f"--control-timeout must be in (0, 60] seconds, got {ns.control_timeout_s}")
    token = ns.token if ns.token is not None else (environ or {}).get(TOKEN_ENV)
    if token and not _TOKEN.fullmatch(token):
        parser.error(f"the token (--token or {TOKEN_ENV}) must be printable ASCII without spaces")
    return AdminConfig(
        admin=ns.admin,
        control=ns.control,
        token=token or None,  # an empty token is no token: writes stay refused
        control_timeout_s=ns.control_timeout_s,
        log_level=ns.log_level,
        memory_limit_mb=ns.memory_limit_mb,
    )
