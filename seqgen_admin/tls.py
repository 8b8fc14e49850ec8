"""TLS of the admin plane: what uvicorn serves with, what the admin polls its peers with, and
why a TLS connection failed, in words.

The admin serves HTTPS itself (uvicorn's own TLS) with ``--tls-cert``/``--tls-key``;
``--tls-client-ca`` makes it require a client certificate signed by that CA. Towards its
peers it verifies their certificates against ``--tls-ca`` (host names checked) and
presents its own certificate, which a peer with ``--tls-client-ca`` requires. There is
no fallback: a peer that does not verify is unreachable, with the reason.
"""

from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

__all__ = ["TlsFiles", "check_files", "client_context", "describe_error", "uvicorn_options"]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path | None = None
    """This admin's certificate (PEM; the chain may follow it)."""
    key: Path | None = None
    """Its private key (PEM, unencrypted)."""
    ca: Path | None = None
    """The CA bundle that verifies the peers' certificates (None: the system's)."""
    client_ca: Path | None = None
    """The CA bundle that client certificates must be signed by (None: none asked)."""

    @property
    def serving(self) -> bool:
        return self.cert is not None


def check_files(files: TlsFiles) -> None:
    """Load every file once, as they will be used; ValueError with the flag and reason."""
    if (files.cert is None) != (files.key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    if files.client_ca is not None and files.cert is None:
        raise ValueError("--tls-client-ca needs --tls-cert and --tls-key (client certificates "
                         "are asked for in the TLS handshake)")
    if files.cert is not None and files.key is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(files.cert, files.key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"--tls-cert {files.cert} / --tls-key {files.key}: {_reason(exc)}") from exc
    for flag, path in (("--tls-ca", files.ca), ("--tls-client-ca", files.client_ca)):
        if path is not None:
            try:
                ssl.create_default_context(cafile=str(path))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"{flag} {path}: {_reason(exc)}") from exc


def uvicorn_options(files: TlsFiles) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.Config`` for these files (none without a cert)."""
    if files.cert is None:
        return {}
    options: dict[str, Any] = {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
    if files.client_ca is not None:
        # OPTIONAL, not REQUIRED: a certificate that is presented must verify against the CA
        # (else the handshake fails), and a connection without one is answered 403 with the
        # reason by seqgen_admin.connguard before any request is read. With REQUIRED the
        # handshake fails, and a client (curl, a browser) only sees an empty reply.
        options.update(ssl_ca_certs=str(files.client_ca), ssl_cert_reqs=ssl.CERT_OPTIONAL)
    return options


NO_CLIENT_CERTIFICATE: Final = (
    "this seqgen-admin requires a client certificate (mutual TLS, --tls-client-ca): present "
    "one signed by its CA, e.g. curl --cert op.crt --key op.key (docs/operations.md, TLS "
    "certificates for the admin plane)")
"""The detail of the 403 to a TLS connection that presented no client certificate."""


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """How this admin connects to https:// peers: their certificates verified (host names
    too) against ``--tls-ca``, its own certificate presented when it has one."""
    context = ssl.create_default_context(cafile=str(files.ca) if files.ca is not None else None)
    if files.cert is not None and files.key is not None:
        context.load_cert_chain(files.cert, files.key)
    return context


_ALERTS = {
    "CERTIFICATE_REQUIRED": "the peer requires a client certificate: give this admin --tls-cert "
                            "and --tls-key signed by the peer's --tls-client-ca",
    "UNKNOWN_CA": "the peer does not accept this admin's certificate (signed by a CA other than "
                  "the peer's --tls-client-ca)",
    "CERTIFICATE_EXPIRED": "the peer refused this admin's certificate: it has expired",
    "BAD_CERTIFICATE": "the peer refused this admin's certificate",
    "WRONG_VERSION_NUMBER": "the peer does not speak TLS there (is it an http:// address?)",
}


def _reason(exc: OSError) -> str:
    """An ssl.SSLError says what is wrong in its text; other OSErrors in strerror."""
    if isinstance(exc, ssl.SSLError) or not exc.strerror:
        return str(exc)
    return exc.strerror


def describe_error(exc: BaseException) -> str | None:
    """What a TLS failure among ``exc``'s causes means to an operator; None if it is none."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS: the peer's certificate does not verify: {seen.verify_message} " \
                   "(checked against --tls-ca)"
        if isinstance(seen, ssl.SSLError):
            reason = str(getattr(seen, "reason", "") or "")
            for alert, text in _ALERTS.items():
                if alert in reason:
                    return f"TLS: {text}"
            return f"TLS: {seen}"
        seen = seen.__cause__ or seen.__context__
    return None


PLAIN_HTTP_DETAIL: Final = (
    "this port speaks HTTPS (seqgen-admin --tls-cert): use https://, not http://")
_PLAIN_HTTP_BODY: Final = json.dumps({"detail": PLAIN_HTTP_DETAIL}).encode()
PLAIN_HTTP_ANSWER: Final = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_PLAIN_HTTP_BODY)).encode() + b"\r\n\r\n" + _PLAIN_HTTP_BODY)
"""What a plain HTTP request to the TLS port is answered, in plain HTTP, before the close."""


class _PlainHttpTold(ssl.SSLObject):
    """An SSLObject that answers a plain HTTP request (OpenSSL's ``HTTP_REQUEST`` error in the
    handshake) with ``PLAIN_HTTP_ANSWER`` in clear text, as nginx does, instead of closing
    without a word: asyncio sends what the handshake leaves in the outgoing buffer."""

    _outgoing: ssl.MemoryBIO | None = None
    _told = False
    answered = 0
    """Plain HTTP requests answered since start (all connections)."""
    refused = 0
    """Client certificates refused in the handshake since start."""

    @classmethod
    def _create(cls, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,
                *args: Any, **kwargs: Any) -> _PlainHttpTold:
        created: _PlainHttpTold = super()._create(incoming, outgoing, *args, **kwargs)  # type: ignore[misc]
        created._outgoing = outgoing
        return created

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except ssl.SSLCertVerificationError as exc:
            # A client certificate that does not verify (another CA, expired): the handshake
            # fails and the client hears nothing (asyncio drops the alert); the log says why.
            _PlainHttpTold.refused += 1
            if _PlainHttpTold.refused == 1 or _PlainHttpTold.refused % 1000 == 0:
                log.warning("refused a client certificate in the TLS handshake: %s (%d since "
                            "start)", exc.verify_message or exc.reason, _PlainHttpTold.refused)
            raise
        except ssl.SSLError as exc:
            if exc.reason != "HTTP_REQUEST" or self._told or self._outgoing is None:
                raise
            self._told = True
            _PlainHttpTold.answered += 1
            if _PlainHttpTold.answered == 1 or _PlainHttpTold.answered % 1000 == 0:
                log.warning("a plain HTTP request came to the HTTPS port: answered 400, use "
                            "https:// (%d since start)", _PlainHttpTold.answered)
            self._outgoing.write(PLAIN_HTTP_ANSWER)
            # "Wait for more": asyncio then sends the answer; the client closes the connection.
            raise ssl.SSLWantReadError(ssl.SSL_ERROR_WANT_READ, "plain HTTP answered") from exc


def tell_plain_http(context: ssl.SSLContext) -> None:
    """Make the admin's TLS context answer plain HTTP requests in words (``_PlainHttpTold``)."""
    context.sslobject_class = _PlainHttpTold
