"""Certificates made at test time with the ``openssl`` command, as docs/operations.md makes them:
one CA, one certificate per host (server and client use), and the bad ones (another CA's, an
expired one, one for another host name)."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require_tools


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    def flags(self, ca: Path, *, client_ca: bool = True) -> list[str]:
        """The admin's TLS flags with this certificate: its peers verified against ``ca``,
        client certificates signed by ``ca`` required (mutual TLS) unless ``client_ca`` is False."""
        flags = ["--tls-cert", str(self.cert), "--tls-key", str(self.key), "--tls-ca", str(ca)]
        return [*flags, "--tls-client-ca", str(ca)] if client_ca else flags


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"


class Pki:
    """A CA in ``root`` that signs host certificates."""

    def __init__(self, root: Path, name: str = "ca") -> None:
        require_tools("openssl")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.name = name
        self.ca = root / f"{name}.crt"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-out", self.ca.name, "-days", "3650",
                 "-subj", f"/CN=seqgen test {name}", cwd=root)

    def host(self, name: str, *, alt_names: str = "IP:127.0.0.1,DNS:localhost", days: int = 365) -> Cert:
        """A certificate for ``name`` valid for ``alt_names`` (``days`` < 0: already expired)."""
        ext = self.root / f"{name}.ext"
        ext.write_text(f"subjectAltName={alt_names}\nextendedKeyUsage=serverAuth,clientAuth\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=self.root)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", self.ca.name, "-CAkey", f"{self.name}.key",
                 "-CAcreateserial", "-days", str(days), "-extfile", ext.name, "-out", f"{name}.crt",
                 cwd=self.root)
        return Cert(self.root / f"{name}.crt", self.root / f"{name}.key")

    def context(self, client: Cert | None = None) -> ssl.SSLContext:
        """A client's context trusting this CA, presenting ``client`` when given."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if client is not None:
            context.load_cert_chain(client.cert, client.key)
        return context
