"""The openssl commands of docs/operations.md work as written, and make files the admin takes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from seqgen_admin.tls import TlsFiles, check_files
from tests.conftest import require_tools

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
MARK = "<!-- tested by tests/unit/test_tls_docs.py -->\n```sh\n"


def test_the_certificate_commands_of_the_operations_guide_work(tmp_path: Path) -> None:
    require_tools("openssl")
    text = DOC.read_text()
    assert MARK in text
    script = text.split(MARK, 1)[1].split("```", 1)[0]
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "h1.crt: OK" in done.stdout
    files = TlsFiles(tmp_path / "h1.crt", tmp_path / "h1.key", tmp_path / "seqgen-ca.crt",
                     tmp_path / "seqgen-ca.crt")
    check_files(files)  # what seqgen-admin checks at start
    names = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", "h1.crt"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "DNS:h1, IP Address:10.0.0.11" in names
