"""Writing a CURVE key pair as the two certificate files ZeroMQ tools use.

``NAME.key`` holds the public key (hand it out: to clients for a server's
key, into a server's ``--curve-clients`` directory for a client's key);
``NAME.key_secret`` holds the pair and stays with its owner (mode 0600).
Both are written by ``zmq.auth.create_certificates`` in a private temporary
directory and then linked into place, so the secret file is never readable by
others, not even for a moment, and an existing key is never overwritten.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Final

import zmq.auth

__all__ = ["KeyFiles", "check_key_name", "write_key_pair"]

_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,99}")
PUBLIC_MODE: Final = 0o644
SECRET_MODE: Final = 0o600


class KeyFiles(tuple[Path, Path]):
    """(public certificate, secret certificate)."""

    __slots__ = ()

    @property
    def public(self) -> Path:
        return self[0]

    @property
    def secret(self) -> Path:
        return self[1]


def check_key_name(name: str) -> str:
    """The name if it makes plain file names (NAME.key, NAME.key_secret), else ValueError."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"key name {name!r}: use letters, digits and _ . @ + - (not starting with . or -)"
        )
    return name


def write_key_pair(directory: str | os.PathLike[str], name: str) -> KeyFiles:
    """Write ``directory/name.key`` and ``directory/name.key_secret`` (creating the directory).

    ValueError for a name that is not a plain file name; FileExistsError when
    either file exists already (nothing is written then); OSError otherwise.
    """
    check_key_name(name)
    folder = Path(directory)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    public = folder / f"{name}.key"
    secret = folder / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise FileExistsError(f"{path} exists already; not overwriting a key")
    staging = Path(tempfile.mkdtemp(prefix=".keygen-", dir=folder))  # mode 0700
    try:
        made_public, made_secret = zmq.auth.create_certificates(staging, name)
        os.chmod(made_secret, SECRET_MODE)
        os.chmod(made_public, PUBLIC_MODE)
        os.link(made_secret, secret)  # fails if the name was taken meanwhile
        try:
            os.link(made_public, public)
        except OSError:
            secret.unlink()
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return KeyFiles((public, secret))
