"""CURVE keys for the public sockets: reading them, checking them, putting them on sockets.

ZeroMQ's CURVE mechanism encrypts a connection and authenticates the server to
the client (the client must know the server's public key); the server
authenticates clients through a ZAP handler (``Gatekeeper`` here, pyzmq's
``zmq.auth.ThreadAuthenticator`` underneath) that accepts either any client
key or only the keys of an allow-list.

Keys are z85 text (40 characters). Files are the certificates that
``zmq.auth.create_certificates`` writes: ``NAME.key`` holds the public key,
``NAME.key_secret`` the public and the secret key.

Everything here raises ValueError (or TypeError) with a message for a person;
the daemons turn it into a usage error, the client library lets it through.
The ZAP handler's module (which loads asyncio) is imported only by
``Gatekeeper``, so a client importing this module stays light.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import zmq
from zmq.auth.certs import load_certificate
from zmq.utils import z85

from seqgen_common.errors import StartupError

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

__all__ = [
    "KEY_CHARS",
    "CurveClient",
    "CurveServer",
    "Gatekeeper",
    "KeyPair",
    "KeySource",
    "client_keys",
    "read_allowed_keys",
    "read_key_pair",
    "read_public_key",
    "start_gatekeeper",
    "use_as_client",
    "use_as_server",
    "z85_key",
]

log = logging.getLogger(__name__)

KEY_CHARS: Final = 40
"""Length of a CURVE key in z85 text (32 bytes)."""
MAX_LOGGED_REFUSALS: Final = 100
"""Distinct unknown client keys logged by a Gatekeeper (a flood of them is not logged)."""

KeySource = str | bytes | os.PathLike[str]
"""A certificate file (a path) or z85 key text (see ``client_keys``)."""


def z85_key(text: str | bytes, what: str) -> bytes:
    """``text`` as a 40-character z85 key (bytes); ValueError naming ``what`` otherwise."""
    raw = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
    if len(raw) == KEY_CHARS and raw.isascii():
        try:
            if z85.encode(z85.decode(raw)) == raw:
                return raw
        except (KeyError, ValueError, struct.error):  # not z85, or out of range
            pass
    raise ValueError(f"{what} is not a CURVE key ({KEY_CHARS} z85 characters)")


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A CURVE key pair in z85; the secret never shows in a repr."""

    public: bytes
    secret: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> KeyPair:
        public, secret = zmq.curve_keypair()
        return cls(public, secret)

    @classmethod
    def from_secret(cls, secret: bytes, what: str) -> KeyPair:
        """The pair of a z85 secret key (its public key is derived from it)."""
        secret = z85_key(secret, what)
        return cls(zmq.curve_public(secret), secret)


def _certificate(path: str | os.PathLike[str], what: str) -> tuple[bytes, bytes | None]:
    """(public, secret or None) from a certificate file, both checked."""
    shown = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{what} {shown}: no such certificate file")
    try:
        public, secret = load_certificate(path)
    except OSError as exc:
        raise ValueError(f"{what} {shown}: cannot read it ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ValueError(f"{what} {shown}: not a CURVE certificate (no public-key line)") from exc
    public = z85_key(public, f"{what} {shown}: the public key")
    if secret is not None:
        secret = z85_key(secret, f"{what} {shown}: the secret key")
    return public, secret


def read_public_key(path: str | os.PathLike[str], what: str = "public key file") -> bytes:
    """The public key in a certificate (``NAME.key``; a ``NAME.key_secret`` has it too)."""
    return _certificate(path, what)[0]


def read_key_pair(path: str | os.PathLike[str], what: str = "secret key file") -> KeyPair:
    """The key pair in a secret certificate (``NAME.key_secret``)."""
    public, secret = _certificate(path, what)
    if secret is None:
        raise ValueError(
            f"{what} {os.fspath(path)}: holds no secret key (give the NAME.key_secret file, "
            "not NAME.key)"
        )
    if zmq.curve_public(secret) != public:
        raise ValueError(f"{what} {os.fspath(path)}: its public key does not match its secret key")
    return KeyPair(public, secret)


def read_allowed_keys(
    directory: str | os.PathLike[str], what: str = "client key directory"
) -> frozenset[bytes]:
    """The public keys of every ``*.key`` certificate in ``directory`` (at least one)."""
    shown = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"{what} {shown}: no such directory")
    try:
        files = sorted(entry for entry in Path(directory).iterdir() if entry.suffix == ".key")
    except OSError as exc:
        raise ValueError(f"{what} {shown}: cannot list it ({exc.strerror or exc})") from exc
    keys = frozenset(read_public_key(file, f"{what}: certificate") for file in files)
    if not keys:
        raise ValueError(f"{what} {shown}: holds no *.key certificate, so no client could connect")
    return keys


@dataclass(frozen=True, slots=True)
class CurveServer:
    """CURVE on a bound (server) socket: its key pair and who may connect."""

    keys: KeyPair
    allowed: frozenset[bytes] | None = None
    """Public keys of the clients allowed in; None: any client with a CURVE key."""
    clients_dir: Path | None = None
    """Where ``allowed`` was read from (for the log)."""

    def describe(self) -> str:
        """One line for the start-up log."""
        if self.allowed is None:
            return (f"CURVE on (public key {self.keys.public.decode()}), ANY client key accepted: "
                    "connections are encrypted but clients are not authenticated")
        return (f"CURVE on (public key {self.keys.public.decode()}), {len(self.allowed)} allowed "
                f"client key(s) from {self.clients_dir}")


@dataclass(frozen=True, slots=True)
class CurveClient:
    """CURVE on a connecting (client) socket: the server's public key and our own pair."""

    server_key: bytes
    keys: KeyPair
    ephemeral: bool = False
    """True when ``keys`` were generated here (only servers accepting any client take them)."""

    def describe(self) -> str:
        """One line for the start-up log (public keys only)."""
        own = "an ephemeral key pair" if self.ephemeral else f"client key {self.keys.public.decode()}"
        return f"CURVE on (server key {self.server_key.decode()}, {own})"


def _as_file(source: KeySource) -> str | os.PathLike[str] | None:
    """``source`` as a certificate file, or None when it is z85 key text."""
    if isinstance(source, bytes):
        return None
    if not isinstance(source, str):
        return source  # a PathLike
    if os.path.isfile(source) or len(source) != KEY_CHARS:
        return source
    return None


def client_keys(server_public_key: KeySource | None, client_secret_key: KeySource | None,
                ) -> CurveClient | None:
    """The client side of CURVE from what a user gives; None when neither is given.

    Each argument is either a certificate file (a ``pathlib.Path``, or a str
    naming an existing file or not 40 characters long) or z85 key text (bytes,
    or a 40-character str that is no file name). ``server_public_key`` is the
    server's ``.key`` (or its z85 public key); ``client_secret_key`` our own
    ``.key_secret`` (or a z85 secret key). Without a client key, an ephemeral
    pair is generated: only servers that accept any client key take it.
    """
    if server_public_key is None:
        if client_secret_key is not None:
            raise ValueError("a client key needs the server's public key as well")
        return None
    for value in (server_public_key, client_secret_key):
        if value is not None and not isinstance(value, str | bytes | os.PathLike):
            raise TypeError(f"a CURVE key must be a path or z85 text, got {value!r}")
    file = _as_file(server_public_key)
    if file is not None:
        server_key = read_public_key(file, "server public key file")
    else:
        server_key = z85_key(os.fsencode(server_public_key), "server_public_key")
    if client_secret_key is None:
        return CurveClient(server_key, KeyPair.generate(), ephemeral=True)
    file = _as_file(client_secret_key)
    if file is not None:
        keys = read_key_pair(file, "client secret key file")
    else:
        keys = KeyPair.from_secret(os.fsencode(client_secret_key), "client_secret_key")
    return CurveClient(server_key, keys)


def use_as_server(sock: zmq.Socket[Any], server: CurveServer) -> None:
    """Make ``sock`` a CURVE server (before it binds)."""
    sock.setsockopt(zmq.CURVE_SECRETKEY, server.keys.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, server.keys.public)
    sock.setsockopt(zmq.CURVE_SERVER, 1)


def use_as_client(sock: zmq.Socket[Any], client: CurveClient) -> None:
    """Make ``sock`` a CURVE client of the server with ``client.server_key`` (before it connects)."""
    sock.setsockopt(zmq.CURVE_SERVERKEY, client.server_key)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, client.keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, client.keys.secret)


class _AllowList:
    """The ZAP credentials check: is this client's public key allowed?"""

    def __init__(self, allowed: frozenset[bytes]) -> None:
        self._allowed = allowed
        self._refused: set[bytes] = set()
        self._lock = threading.Lock()

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self._allowed:
            return True
        with self._lock:
            first = key not in self._refused and len(self._refused) < MAX_LOGGED_REFUSALS
            if first:
                self._refused.add(key)
        if first:
            log.warning("refused a CURVE client with an unknown public key %s",
                        key.decode("ascii", "replace"))
        return False


class Gatekeeper:
    """The ZAP handler of one zmq context: start it before binding, stop it before closing the context.

    It answers the handshakes of every CURVE server socket of the context (a
    socket without CURVE and without a ZAP domain, such as the server's control
    socket, never asks it). Only handshakes go through it, never messages.
    """

    def __init__(self, ctx: zmq.Context[Any], server: CurveServer) -> None:
        from zmq.auth import CURVE_ALLOW_ANY  # noqa: PLC0415 - light, but only daemons need it
        from zmq.auth.thread import ThreadAuthenticator  # noqa: PLC0415 - loads asyncio

        auth = ThreadAuthenticator(ctx)
        if server.allowed is None:
            auth.configure_curve(domain="*", location=CURVE_ALLOW_ANY)
        else:
            auth.configure_curve_callback(domain="*", credentials_provider=_AllowList(server.allowed))
        try:
            auth.start()
        except (zmq.ZMQError, RuntimeError) as exc:
            auth.stop()
            raise StartupError(f"cannot start the CURVE authenticator: {exc}") from exc
        self._auth: ThreadAuthenticator | None = auth

    def stop(self) -> None:
        """Stop the handler thread and close its sockets. Idempotent."""
        auth, self._auth = self._auth, None
        if auth is not None:
            auth.stop()


def start_gatekeeper(ctx: zmq.Context[Any], server: CurveServer, socket_name: str) -> Gatekeeper:
    """A daemon's CURVE start-up: the context's ``Gatekeeper``, to be started before the bind
    (no client slips in unchecked), and one log line that says how ``socket_name`` is secured
    (a warning when any client key is accepted)."""
    gatekeeper = Gatekeeper(ctx, server)
    if server.allowed is None:
        log.warning("%s: %s (no --curve-clients)", socket_name, server.describe())
    else:
        log.info("%s: %s", socket_name, server.describe())
    return gatekeeper
