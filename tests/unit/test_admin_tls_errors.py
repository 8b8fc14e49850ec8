"""seqgen_admin.tls without sockets: uvicorn's options, and TLS failures told in words."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from seqgen_admin.tls import TlsFiles, describe_error, uvicorn_options


def _alert(reason: str) -> httpx.ConnectError:
    error = ssl.SSLError(1, f"[SSL: {reason}] tls alert")
    error.reason = reason  # type: ignore[misc]  # as OpenSSL sets it
    wrapped = httpx.ConnectError("handshake failed")
    wrapped.__cause__ = error
    return wrapped


def test_uvicorn_gets_the_files_and_asks_for_client_certificates_only_with_a_client_ca() -> None:
    assert uvicorn_options(TlsFiles()) == {}
    served = TlsFiles(Path("/t/h.crt"), Path("/t/h.key"), Path("/t/ca.crt"))
    assert uvicorn_options(served) == {"ssl_certfile": "/t/h.crt", "ssl_keyfile": "/t/h.key"}
    mutual = TlsFiles(Path("/t/h.crt"), Path("/t/h.key"), client_ca=Path("/t/ca.crt"))
    # Optional in the handshake (a presented one must verify); a connection without one is
    # answered 403 with the reason (seqgen_admin.connguard), never served.
    assert uvicorn_options(mutual)["ssl_cert_reqs"] == ssl.CERT_OPTIONAL
    assert uvicorn_options(mutual)["ssl_ca_certs"] == "/t/ca.crt"


def test_tls_failures_are_told_in_words() -> None:
    assert "requires a client certificate" in str(describe_error(_alert("TLSV13_ALERT_CERTIFICATE_REQUIRED")))
    assert "signed by a CA other" in str(describe_error(_alert("TLSV1_ALERT_UNKNOWN_CA")))
    assert "has expired" in str(describe_error(_alert("SSLV3_ALERT_CERTIFICATE_EXPIRED")))
    assert "does not speak TLS" in str(describe_error(_alert("WRONG_VERSION_NUMBER")))
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "certificate has expired"
    wrapped = httpx.ConnectError("x")
    wrapped.__context__ = verify
    assert describe_error(wrapped) == ("TLS: the peer's certificate does not verify: certificate has "
                                       "expired (checked against --tls-ca)")
    assert describe_error(httpx.ConnectError("refused")) is None
