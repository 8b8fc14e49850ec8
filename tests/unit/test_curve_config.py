"""The CURVE flags of seqgen-server, seqgen-proxy and seqgen: parsing and checks (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
import zmq
import zmq.auth

from seqgen_client.cli import KeygenCommand, NextCommand
from seqgen_client.cli import parse_args as cli_args
from seqgen_common.curve import KeyPair
from seqgen_proxy.config import parse_args as proxy_args
from seqgen_server.config import parse_args as server_args


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """server.key(_secret) and a clients/ directory with one client's public key."""
    clients = tmp_path / "clients"
    clients.mkdir()
    server_public, server_secret = zmq.auth.create_certificates(tmp_path, "server")
    client_public, client_secret = zmq.auth.create_certificates(tmp_path, "client")
    (clients / "client.key").write_bytes(Path(client_public).read_bytes())
    return {"server": Path(server_public), "server_secret": Path(server_secret),
            "client": Path(client_public), "client_secret": Path(client_secret),
            "clients": clients}


def pair(path: Path) -> KeyPair:
    public, secret = zmq.auth.load_certificate(path)
    assert secret is not None
    return KeyPair(public, secret)


def test_without_flags_nothing_changes() -> None:
    assert server_args([]).curve is None
    config = proxy_args(["--host", "tcp://127.0.0.1:1"])
    assert config.curve is None and config.host_curve is None
    command = cli_args(["next", "x"], {})
    assert isinstance(command, NextCommand)
    assert command.server_key is None and command.client_secret_key is None


def test_server_flags(keys: dict[str, Path]) -> None:
    config = server_args(["--curve-secret-key", str(keys["server_secret"]),
                          "--curve-clients", str(keys["clients"])])
    assert config.curve is not None
    assert config.curve.keys == pair(keys["server_secret"])
    assert config.curve.allowed == frozenset({pair(keys["client_secret"]).public})
    assert config.curve.clients_dir == keys["clients"]
    anyone = server_args(["--curve-secret-key", str(keys["server_secret"])]).curve
    assert anyone is not None and anyone.allowed is None
    assert pair(keys["server_secret"]).secret.decode() not in repr(config)


@pytest.mark.parametrize(("flags", "message"), [
    (["--curve-clients", "{clients}"], "--curve-clients needs --curve-secret-key"),
    (["--curve-secret-key", "{server}"], "holds no secret key"),
    (["--curve-secret-key", "{missing}"], "no such certificate file"),
    (["--curve-secret-key", "{server_secret}", "--curve-clients", "{missing}"], "no such directory"),
    (["--curve-secret-key", "{server_secret}", "--curve-clients", "{server}"], "no such directory"),
])
def test_server_flags_refused(keys: dict[str, Path], flags: list[str], message: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    paths = {name: str(path) for name, path in keys.items()} | {"missing": "/nonexistent/x"}
    with pytest.raises(SystemExit) as info:
        server_args([flag.format(**paths) for flag in flags])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_proxy_flags(keys: dict[str, Path]) -> None:
    config = proxy_args([
        "--host", "tcp://127.0.0.1:1",
        "--curve-secret-key", str(keys["server_secret"]), "--curve-clients", str(keys["clients"]),
        "--host-public-key", str(keys["server"]), "--curve-client-key", str(keys["client_secret"]),
    ])
    assert config.curve is not None
    assert config.curve.allowed == frozenset({pair(keys["client_secret"]).public})
    assert config.host_curve is not None
    assert config.host_curve.server_key == pair(keys["server_secret"]).public
    assert config.host_curve.keys == pair(keys["client_secret"])
    assert not config.host_curve.ephemeral
    ephemeral = proxy_args(["--host", "tcp://127.0.0.1:1",
                            "--host-public-key", str(keys["server"])]).host_curve
    assert ephemeral is not None and ephemeral.ephemeral


@pytest.mark.parametrize(("flags", "message"), [
    (["--curve-clients", "{clients}"], "--curve-clients needs --curve-secret-key"),
    (["--curve-client-key", "{client_secret}"], "--curve-client-key needs --host-public-key"),
    (["--host-public-key", "{missing}"], "no such certificate file"),
    (["--host-public-key", "{server}", "--curve-client-key", "{client}"], "holds no secret key"),
    (["--curve-secret-key", "{server_secret}", "--curve-clients", "{missing}"], "no such directory"),
])
def test_proxy_flags_refused(keys: dict[str, Path], flags: list[str], message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    paths = {name: str(path) for name, path in keys.items()} | {"missing": "/nonexistent/x"}
    with pytest.raises(SystemExit) as info:
        proxy_args(["--host", "tcp://127.0.0.1:1", *(flag.format(**paths) for flag in flags)])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_key_flags(keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    command = cli_args(["next", "x", "--server-key", str(keys["server"]),
                        "--client-key", str(keys["client_secret"])], {})
    assert isinstance(command, NextCommand)
    assert command.server_key == pair(keys["server_secret"]).public
    assert command.client_secret_key == pair(keys["client_secret"]).secret
    assert command.client_secret_key.decode() not in repr(command)
    ephemeral = cli_args(["next", "x", "--server-key", str(keys["server"])], {})
    assert isinstance(ephemeral, NextCommand)
    assert ephemeral.server_key is not None and ephemeral.client_secret_key is None
    for argv, message in (
        (["next", "x", "--client-key", str(keys["client_secret"])], "needs --server-key"),
        (["next", "x", "--server-key", "/nonexistent/s.key"], "no such certificate file"),
        (["next", "x", "--server-key", str(keys["server"]), "--client-key", str(keys["client"])],
         "holds no secret key"),
    ):
        with pytest.raises(SystemExit) as info:
            cli_args(argv, {})
        assert info.value.code == 2
        assert message in capsys.readouterr().err


def test_cli_keygen_command() -> None:
    assert cli_args(["keygen", "/tmp/k"], {}) == KeygenCommand(Path("/tmp/k"), "seqgen")
    assert cli_args(["keygen", "k", "--name", "app"], {}) == KeygenCommand(Path("k"), "app")
    with pytest.raises(SystemExit):
        cli_args(["keygen"], {})
