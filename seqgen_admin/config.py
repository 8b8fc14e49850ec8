"""Command line (and environment, passed in) -> AdminConfig. Nothing here reads os.environ."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, ClassVar, TypeAlias
from urllib.parse import urlsplit

import msgspec

from seqgen_admin.tls import TlsFiles, check_files
from seqgen_common import bounds
from seqgen_common.control import MAX_FLOORS
from seqgen_common.daemon import MemoryLimitMb, add_daemon_flags
from seqgen_common.endpoints import parse_http, validate_zmq
from seqgen_common.limits import DEFAULT_ADMIN_PORT, DEFAULT_CONTROL_PORT

__all__ = ["PEERS_ENV", "TOKEN_ENV", "AdminConfig", "parse_args", "parse_peers"]

TOKEN_ENV = "SEQGEN_ADMIN_TOKEN"
"""The environment variable that holds the write token (preferred over --token)."""
PEERS_ENV = "SEQGEN_PEERS"
"""The environment variable that lists the peers' admin URLs when no --peer is given."""
DEFAULT_WITNESS_FILE = Path("/var/lib/seqgen/witness.db")

_TOKEN = re.compile(r"[\x21-\x7e]+")
"""What fits in ``Authorization: Bearer <token>`` unchanged."""


_UpToAnHour: TypeAlias = Annotated[float, msgspec.Meta(gt=0, le=3600)]


@dataclass(frozen=True, slots=True)
class AdminConfig:
    RANGES: ClassVar = bounds.Ranges.INTERVAL
    """How a range reads in a message: ``must be in (0, 60] seconds, got 61.0``."""

    admin: str = f"http://0.0.0.0:{DEFAULT_ADMIN_PORT}"
    """Where the HTTP server listens (http://HOST:PORT, or https://HOST:PORT with TLS)."""
    control: str = f"tcp://127.0.0.1:{DEFAULT_CONTROL_PORT}"
    """The server's control socket."""
    token: str | None = field(default=None, repr=False)
    """Bearer token for writes; None refuses every write (403)."""
    control_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0
    """How long one control request may take before the admin answers 503."""
    log_level: str = "INFO"
    log_format: str = "plain"
    """plain lines or JSON lines (seqgen_common.logs)."""
    memory_limit_mb: MemoryLimitMb = 0
    """A ceiling on the process's memory (0: none); past it the process ends."""
    peers: tuple[str, ...] = ()
    """The base URLs of the other servers' admins (http://HOST:PORT)."""
    witness_interval_s: _UpToAnHour = 1.0
    """How often the witness records what each peer has issued (and the cluster view is refreshed)."""
    witness_file: Path = DEFAULT_WITNESS_FILE
    """The SQLite file of the witness record on this host (used only with peers)."""
    follow_peers: bool = True
    """Raise the own server's floor for a name a peer is more than drift ahead on
    (seqgen_admin.follow)."""
    follow_max_names: Annotated[int, msgspec.Meta(ge=1, le=MAX_FLOORS)] = 1000
    """Names read and raised per round of following, at most."""
    recover_timeout_s: _UpToAnHour = 300.0
    """How long POST /recover may take before the fence is released; past it the server stays fenced."""
    header_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 5.0
    """How long a connection may take to send a request's headers (or stay silent at first)."""
    max_connections_per_client: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 16
    """Connections one client address may hold open at once (its longest idle one is closed for
    a new one; 503 when all are being answered)."""
    tls: TlsFiles = field(default_factory=TlsFiles)
    """The certificates of HTTPS and of mutual TLS between admins (none: plain HTTP)."""

    def __post_init__(self) -> None:
        bounds.check_config(self)

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
                   help="address to listen on: http://HOST:PORT, or https://HOST:PORT with "
                   "--tls-cert and --tls-key (default %(default)s)")
    p.add_argument("--control", default=d.control, metavar="URI",
                   help="the server's control socket (default %(default)s)")
    p.add_argument("--token", default=None,
                   help=f"bearer token required for writes; prefer the {TOKEN_ENV} environment "
                   "variable (a command line is visible to other users). Without a token every "
                   "write is refused with 403")
    p.add_argument("--token-file", type=Path, default=None, metavar="FILE",
                   help="read the bearer token from FILE (its first line) at start, instead of "
                   f"--token or {TOKEN_ENV}: a new token is applied by restarting the admin, "
                   "without touching its supervisor's environment (default: none)")
    p.add_argument("--control-timeout", type=float, default=d.control_timeout_s,
                   metavar="SECONDS", dest="control_timeout_s",
                   help="answer 503 when the server does not reply within this time "
                   "(default %(default)s)")
    p.add_argument("--peer", action="append", default=None, metavar="URL", dest="peers",
                   help="the base URL of another server's admin, e.g. http://10.0.0.12:6411; "
                   "repeat for each other server. This admin shows them in /cluster, witnesses "
                   f"what they issue and asks them in POST /recover. Default: {PEERS_ENV} (URLs "
                   "separated by spaces or commas), else none")
    p.add_argument("--witness-interval", type=float, default=d.witness_interval_s,
                   metavar="SECONDS", dest="witness_interval_s",
                   help="how often to record what each peer has issued and refresh the cluster "
                   "view (default %(default)s)")
    p.add_argument("--witness-file", type=Path, default=d.witness_file, metavar="PATH",
                   help="the SQLite file that keeps the witness record on this host (created if "
                   "missing, only with --peer; default %(default)s)")
    p.add_argument("--follow-peers", action=argparse.BooleanOptionalAction, default=d.follow_peers,
                   help="keep this server within its --drift of the peers: when a name moves on a "
                   "peer (its change feed) and the peer is more than drift ahead, raise this "
                   "server's floor for the name to just below the peer's value. A floor only "
                   "moves forward, so uniqueness never depends on it (default: on; needs --peer)")
    p.add_argument("--follow-max-names", type=int, default=d.follow_max_names, metavar="N",
                   help="names read and raised per round (after each poll of a peer) at most; "
                   f"more wait for the next round (1..{MAX_FLOORS}, default %(default)s)")
    p.add_argument("--recover-timeout", type=float, default=d.recover_timeout_s, metavar="SECONDS",
                   dest="recover_timeout_s",
                   help="POST /recover gives up (503, the server stays fenced) when asking the "
                   "peers and raising the floors take longer (default %(default)s)")
    p.add_argument("--header-timeout", type=float, default=d.header_timeout_s, metavar="SECONDS",
                   dest="header_timeout_s",
                   help="close a connection that has not sent a whole request head this long "
                   "after it opened or its last answer (default %(default)s)")
    p.add_argument("--max-connections-per-client", type=int, default=d.max_connections_per_client,
                   metavar="N",
                   help="connections one client address may hold open: a new one closes its "
                   "longest idle one, or gets 503 when all are being answered (default "
                   "%(default)s)")
    p.add_argument("--tls-cert", type=Path, metavar="FILE",
                   help="serve HTTPS (and only HTTPS) with this certificate (PEM, chain after it); "
                   "also presented to peers when polling them. Needs --tls-key and an https:// "
                   "--admin. Default: none (plain HTTP)")
    p.add_argument("--tls-key", type=Path, metavar="FILE",
                   help="the private key of --tls-cert (PEM, unencrypted; default none)")
    p.add_argument("--tls-ca", type=Path, metavar="FILE",
                   help="the CA bundle (PEM) that https:// peers' certificates must be signed by; "
                   "host names are checked. Default: the system's CAs")
    p.add_argument("--tls-client-ca", type=Path, metavar="FILE",
                   help="require on every connection a client certificate signed by this CA "
                   "bundle (PEM): mutual TLS. Needs --tls-cert. Default: none (no client "
                   "certificate asked)")
    add_daemon_flags(p)
    return p


def parse_peers(text: str) -> list[str]:
    """The URLs of a SEQGEN_PEERS value: separated by spaces or commas."""
    return [url for url in re.split(r"[\s,]+", text) if url]


def _normal_url(url: str) -> str:
    """An http:// or https:// base URL without a trailing slash (ValueError when it is not one)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a peer is an admin's base URL: http://HOST:PORT (or https://...)")
    if parts.query or parts.fragment:
        raise ValueError("a peer's URL has no query or fragment")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ValueError("invalid port") from exc
    return url.rstrip("/")


def _read_token(parser: argparse.ArgumentParser, path: Path) -> str:
    """The first line of ``path``; an error (exit 2) when it is missing or empty."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        parser.error(f"--token-file {path}: {exc.strerror or exc}")
    token = text.splitlines()[0].strip() if text.strip() else ""
    if not token:
        parser.error(f"--token-file {path} is empty: put the token on its first line")
    return token


def parse_args(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> AdminConfig:
    """Parse and check the flags; ``environ`` supplies SEQGEN_ADMIN_TOKEN when --token is absent.

    Exits with status 2 and a message when a flag is wrong.
    """
    parser = _build_parser()
    ns = parser.parse_args(argv)
    try:
        address = parse_http(ns.admin)
    except ValueError as exc:
        parser.error(f"--admin: {exc}")
    tls = TlsFiles(*(None if path is None else Path(path).absolute()
                     for path in (ns.tls_cert, ns.tls_key, ns.tls_ca, ns.tls_client_ca)))
    try:
        check_files(tls)
    except ValueError as exc:
        parser.error(str(exc))
    if address.tls and not tls.serving:
        parser.error("--admin https://... needs --tls-cert and --tls-key")
    if tls.serving and not address.tls:
        parser.error(f"--tls-cert serves HTTPS: write --admin https://{ns.admin.partition('://')[2]}")
    try:
        validate_zmq(ns.control)
    except ValueError as exc:
        parser.error(f"--control: {exc}")
    try:
        bounds.check(AdminConfig, vars(ns))
    except ValueError as exc:
        parser.error(str(exc))
    raw_peers = ns.peers if ns.peers is not None else parse_peers((environ or {}).get(PEERS_ENV, ""))
    peers: list[str] = []
    for url in raw_peers:
        try:
            peer = _normal_url(url)
        except ValueError as exc:
            parser.error(f"--peer {url}: {exc}")
        if tls.serving and not peer.startswith("https://"):
            parser.error(f"--peer {url}: this admin serves HTTPS, so its peers are https:// too "
                         "(the token would cross the network in clear text)")
        if peer not in peers:
            peers.append(peer)
    if ns.token is not None and ns.token_file is not None:
        parser.error("give the token with --token or --token-file, not both")
    token: str | None
    if ns.token_file is not None:
        token = _read_token(parser, ns.token_file)
    else:
        token = ns.token if ns.token is not None else (environ or {}).get(TOKEN_ENV)
    if token and not _TOKEN.fullmatch(token):
        parser.error(f"the token (--token, --token-file or {TOKEN_ENV}) must be printable ASCII "
                     "without spaces")
    return AdminConfig(
        admin=ns.admin,
        control=ns.control,
        token=token or None,  # an empty token is no token: writes stay refused
        control_timeout_s=ns.control_timeout_s,
        log_level=ns.log_level, log_format=ns.log_format,
        memory_limit_mb=ns.memory_limit_mb,
        peers=tuple(peers),
        witness_interval_s=ns.witness_interval_s,
        witness_file=Path(ns.witness_file).absolute(),
        follow_peers=ns.follow_peers,
        follow_max_names=ns.follow_max_names,
        recover_timeout_s=ns.recover_timeout_s,
        header_timeout_s=ns.header_timeout_s,
        max_connections_per_client=ns.max_connections_per_client,
        tls=tls,
    )
