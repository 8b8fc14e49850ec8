"""CURVE key handling without sockets: z85 checks, certificate files, the client's key sources."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import zmq
import zmq.auth

from seqgen_client import AsyncClient, Client
from seqgen_client.keygen import write_key_pair
from seqgen_client.options import ClientOptions
from seqgen_common.curve import (
    CurveServer,
    KeyPair,
    client_keys,
    read_allowed_keys,
    read_key_pair,
    read_public_key,
    z85_key,
)


@pytest.fixture
def pair_files(tmp_path: Path) -> tuple[Path, Path]:
    public, secret = zmq.auth.create_certificates(tmp_path, "k")
    return Path(public), Path(secret)


def test_z85_keys_are_checked() -> None:
    public, secret = zmq.curve_keypair()
    assert z85_key(public, "k") == public
    assert z85_key(secret.decode(), "k") == secret
    for bad in (b"", public[:-1], public + b"0", "~" * 40, "é" * 40, b"#" * 40):
        with pytest.raises(ValueError, match="is not a CURVE key"):
            z85_key(bad, "k")


def test_a_key_pair_derives_its_public_key_and_hides_its_secret() -> None:
    pair = KeyPair.generate()
    assert KeyPair.from_secret(pair.secret, "s") == pair
    assert pair.secret.decode() not in repr(pair)
    assert pair.public.decode() in repr(pair)
    with pytest.raises(ValueError):
        KeyPair.from_secret(b"short", "s")


def test_certificate_files_are_read_and_checked(pair_files: tuple[Path, Path], tmp_path: Path) -> None:
    public_file, secret_file = pair_files
    public, secret = zmq.auth.load_certificate(secret_file)
    assert read_public_key(public_file) == public
    assert read_public_key(secret_file) == public  # the secret file holds the public key too
    assert read_key_pair(secret_file) == KeyPair(public, secret)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="holds no secret key"):
        read_key_pair(public_file)
    with pytest.raises(ValueError, match="no such certificate file"):
        read_public_key(tmp_path / "missing.key")
    with pytest.raises(ValueError, match="no such certificate file"):
        read_public_key(tmp_path)  # a directory is no certificate
    garbage = tmp_path / "garbage.key"
    garbage.write_text("hello\n")
    with pytest.raises(ValueError, match="not a CURVE certificate"):
        read_public_key(garbage)
    broken = tmp_path / "broken.key"
    broken.write_text('curve\n    public-key = "tooshort"\n')
    with pytest.raises(ValueError, match="is not a CURVE key"):
        read_public_key(broken)
    mismatched = tmp_path / "mismatched.key_secret"
    other_public, _ = zmq.curve_keypair()
    mismatched.write_text(f'curve\n    public-key = "{other_public.decode()}"\n'
                          f'    secret-key = "{secret.decode()}"\n')  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="does not match"):
        read_key_pair(mismatched)


def test_an_allow_list_is_every_public_certificate_in_a_directory(tmp_path: Path) -> None:
    first = zmq.auth.create_certificates(tmp_path, "a")
    second = zmq.auth.create_certificates(tmp_path, "b")
    (tmp_path / "notes.txt").write_text("not a key")
    expected = {zmq.auth.load_certificate(first[0])[0], zmq.auth.load_certificate(second[0])[0]}
    assert read_allowed_keys(tmp_path) == expected  # *.key_secret and other files are ignored
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no"):
        read_allowed_keys(empty)
    with pytest.raises(ValueError, match="no such directory"):
        read_allowed_keys(tmp_path / "missing")
    (tmp_path / "bad.key").write_text("nothing here")
    with pytest.raises(ValueError, match=r"bad\.key"):
        read_allowed_keys(tmp_path)


def test_a_server_describes_who_may_connect() -> None:
    pair = KeyPair.generate()
    assert "ANY client" in CurveServer(pair).describe()
    listed = CurveServer(pair, frozenset({pair.public}), Path("/etc/seqgen/clients"))
    assert "1 allowed client key(s) from /etc/seqgen/clients" in listed.describe()
    assert pair.secret.decode() not in listed.describe() + repr(listed)


def test_client_keys_come_from_files_or_z85_text(pair_files: tuple[Path, Path]) -> None:
    public_file, secret_file = pair_files
    public, secret = zmq.auth.load_certificate(secret_file)
    assert secret is not None
    assert client_keys(None, None) is None
    server_public, _ = zmq.curve_keypair()
    for server_source in (public_file, str(public_file), public, public.decode()):
        curve = client_keys(server_source, None)
        assert curve is not None
        assert curve.server_key == public
        assert curve.ephemeral
    for client_source in (secret_file, str(secret_file), secret, secret.decode()):
        curve = client_keys(server_public, client_source)
        assert curve is not None
        assert curve.keys == KeyPair(public, secret)
        assert not curve.ephemeral
    ephemeral = [client_keys(server_public, None) for _ in range(2)]
    assert ephemeral[0] is not None and ephemeral[1] is not None
    assert ephemeral[0].keys != ephemeral[1].keys


def test_client_keys_refuse_what_they_cannot_use(pair_files: tuple[Path, Path]) -> None:
    public_file, secret_file = pair_files
    with pytest.raises(ValueError, match="needs the server's public key"):
        client_keys(None, secret_file)
    with pytest.raises(ValueError, match="holds no secret key"):
        client_keys(public_file, public_file)
    with pytest.raises(ValueError, match="no such certificate file"):
        client_keys("/nonexistent/server.key", None)
    with pytest.raises(ValueError, match="is not a CURVE key"):
        client_keys(b"not a key", None)
    with pytest.raises(TypeError):
        client_keys(42, None)  # type: ignore[arg-type]


def test_both_clients_take_keys_and_prefetch(pair_files: tuple[Path, Path]) -> None:
    public_file, secret_file = pair_files
    options = ClientOptions.build("tcp://a:1", server_public_key=public_file,
                                  client_secret_key=secret_file, prefetch=50)
    assert options.curve is not None and not options.curve.ephemeral
    assert options.prefetch == 50
    assert ClientOptions.build("tcp://a:1").curve is None
    assert ClientOptions.build("tcp://a:1").prefetch == 1
    client = Client("tcp://a:1", server_public_key=public_file, prefetch=1000)
    assert client.options.curve is not None and client.options.curve.ephemeral
    client.close()
    assert AsyncClient("tcp://a:1", server_public_key=public_file).options.curve is not None


@pytest.mark.parametrize(("prefetch", "error"), [
    (0, ValueError), (1001, ValueError), (-1, ValueError), (True, TypeError), (2.5, TypeError),
    ("10", TypeError),
])
def test_bad_prefetch_is_refused(prefetch: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        Client("tcp://a:1", prefetch=prefetch)  # type: ignore[arg-type]
    with pytest.raises(error):
        AsyncClient("tcp://a:1", prefetch=prefetch)  # type: ignore[arg-type]


def test_keygen_writes_private_secrets_and_refuses_to_overwrite(tmp_path: Path) -> None:
    files = write_key_pair(tmp_path / "keys", "node-1")
    assert files.public == tmp_path / "keys" / "node-1.key"
    assert files.secret == tmp_path / "keys" / "node-1.key_secret"
    assert stat.S_IMODE(files.secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.public.stat().st_mode) == 0o644
    assert read_key_pair(files.secret).public == read_public_key(files.public)
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["node-1.key", "node-1.key_secret"]
    before = files.secret.read_bytes()
    with pytest.raises(FileExistsError):
        write_key_pair(tmp_path / "keys", "node-1")
    files.public.unlink()  # half a pair left: still not overwritten
    with pytest.raises(FileExistsError):
        write_key_pair(tmp_path / "keys", "node-1")
    assert files.secret.read_bytes() == before
    for bad in ("", "../x", "a/b", ".hidden", "-flag", "x" * 101, "sp ace"):
        with pytest.raises(ValueError, match="key name"):
            write_key_pair(tmp_path, bad)
