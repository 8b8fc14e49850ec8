"""seqgen-admin's command line -> AdminConfig (the token also from the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqgen_admin.config import PEERS_ENV, TOKEN_ENV, AdminConfig, parse_args
from tests.tls_support import Pki


def test_defaults_follow_the_design() -> None:
    config = parse_args([], {})
    assert config == AdminConfig()
    assert (config.host, config.port) == ("0.0.0.0", 6411)
    assert config.control == "tcp://127.0.0.1:6412"
    assert config.token is None
    assert config.control_timeout_s == 1.0
    assert config.log_level == "INFO"


def test_flags() -> None:
    config = parse_args(
        ["--admin", "http://[::1]:8080", "--control", "ipc:///run/seqgen/control",
         "--token", "abc", "--control-timeout", "0.25", "--log-level", "debug"], {})
    assert (config.host, config.port) == ("::1", 8080)
    assert config.control == "ipc:///run/seqgen/control"
    assert config.token == "abc"
    assert config.control_timeout_s == 0.25
    assert config.log_level == "DEBUG"


def test_token_from_the_environment_and_the_flag_wins() -> None:
    assert parse_args([], {TOKEN_ENV: "from-env"}).token == "from-env"
    assert parse_args(["--token", "flag"], {TOKEN_ENV: "from-env"}).token == "flag"
    assert parse_args([], None).token is None


def test_an_empty_token_is_no_token() -> None:
    assert parse_args([], {TOKEN_ENV: ""}).token is None
    assert parse_args(["--token", ""], {TOKEN_ENV: "x"}).token is None


def test_the_token_never_shows_in_the_config_repr() -> None:
    assert "hunter2" not in repr(parse_args(["--token", "hunter2"], {}))


@pytest.mark.parametrize("argv", [
    ["--admin", "tcp://0.0.0.0:6411"],
    ["--admin", "http://host:notaport"],
    ["--admin", "0.0.0.0:6411"],
    ["--control", "http://127.0.0.1:6412"],
    ["--control", "tcp://127.0.0.1"],
    ["--control-timeout", "0"],
    ["--control-timeout", "-1"],
    ["--control-timeout", "61"],
    ["--token", "two words"],
    ["--token", "tab\there"],
    ["--token", "ünïcode"],
    ["--log-level", "LOUD"],
    ["--peer", "10.0.0.12:6411"],
    ["--peer", "tcp://10.0.0.12:6411"],
    ["--peer", "http://host:port"],
    ["--peer", "http://host:6411/?x=1"],
    ["--witness-interval", "0"],
    ["--witness-interval", "3601"],
    ["--follow-max-names", "0"],
    ["--follow-max-names", "1001"],
    ["--follow-peers=no"],
    ["--recover-timeout", "0"],
    ["--recover-timeout", "nan"],
    ["--header-timeout", "0"],
    ["--header-timeout", "301"],
    ["--max-connections-per-client", "0"],
])
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv, {})
    assert exited.value.code == 2
    assert "seqgen-admin: error:" in capsys.readouterr().err


def test_a_bad_token_in_the_environment_is_refused_too() -> None:
    with pytest.raises(SystemExit):
        parse_args([], {TOKEN_ENV: "has space"})


def test_peers_and_the_witness() -> None:
    config = parse_args([], {})
    assert config.peers == () and config.witness_interval_s == 1.0
    assert config.witness_file == Path("/var/lib/seqgen/witness.db")
    config = parse_args(["--peer", "http://10.0.0.12:6411/", "--peer", "https://h3.example",
                         "--peer", "http://10.0.0.12:6411", "--witness-interval", "0.5",
                         "--witness-file", "w.db"], {PEERS_ENV: "http://ignored:1"})
    assert config.peers == ("http://10.0.0.12:6411", "https://h3.example")  # the flags win
    assert config.witness_interval_s == 0.5
    assert config.witness_file == Path("w.db").absolute()


def test_recovery_and_connection_limits() -> None:
    config = parse_args([], {})
    assert config.recover_timeout_s == 300.0 and config.header_timeout_s == 5.0
    assert config.max_connections_per_client == 16
    config = parse_args(["--recover-timeout", "2", "--header-timeout", "0.5",
                         "--max-connections-per-client", "4"], {})
    assert config.recover_timeout_s == 2.0 and config.header_timeout_s == 0.5
    assert config.max_connections_per_client == 4


def test_peers_from_the_environment() -> None:
    env = {PEERS_ENV: " http://10.0.0.12:6411,http://10.0.0.13:6411\thttp://10.0.0.14:6411 "}
    assert parse_args([], env).peers == (
        "http://10.0.0.12:6411", "http://10.0.0.13:6411", "http://10.0.0.14:6411")
    assert parse_args([], {PEERS_ENV: ""}).peers == ()


def test_following_the_peers_is_on_by_default_and_can_be_turned_off() -> None:
    config = parse_args([], {})
    assert config.follow_peers is True and config.follow_max_names == 1000
    config = parse_args(["--no-follow-peers", "--follow-max-names", "7"], {})
    assert config.follow_peers is False and config.follow_max_names == 7
    assert parse_args(["--no-follow-peers", "--follow-peers"], {}).follow_peers is True


# ---- TLS (issue 21) ------------------------------------------------------------------


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv, {})
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_tls_flags_are_checked_at_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = Pki(tmp_path)
    host = pki.host("host1")
    files = ["--tls-cert", str(host.cert), "--tls-key", str(host.key)]
    config = parse_args(["--admin", "https://127.0.0.1:6411", *files, "--tls-ca", str(pki.ca),
                         "--tls-client-ca", str(pki.ca), "--peer", "https://10.0.0.2:6411"], {})
    assert (config.host, config.port) == ("127.0.0.1", 6411)
    assert config.tls.cert == host.cert and config.tls.client_ca == pki.ca
    assert "needs --tls-cert and --tls-key" in _refused(["--admin", "https://127.0.0.1:6411"], capsys)
    assert "write --admin https://127.0.0.1:6411" in _refused(
        ["--admin", "http://127.0.0.1:6411", *files], capsys)
    assert "--tls-cert and --tls-key go together" in _refused(
        ["--admin", "https://127.0.0.1:6411", "--tls-cert", str(host.cert)], capsys)
    assert "--tls-client-ca needs --tls-cert" in _refused(["--tls-client-ca", str(pki.ca)], capsys)
    assert "clear text" in _refused(
        ["--admin", "https://127.0.0.1:6411", *files, "--peer", "http://10.0.0.2:6411"], capsys)
    # A key that is not the certificate's, and a file that is missing, are named.
    other = pki.host("host2")
    wrong_key = _refused(["--admin", "https://h:1", "--tls-cert", str(host.cert), "--tls-key",
                          str(other.key)], capsys)
    assert f"--tls-cert {host.cert}" in wrong_key and "KEY_VALUES_MISMATCH" in wrong_key.upper()
    assert "No such file" in _refused(["--tls-ca", str(tmp_path / "nothing.pem")], capsys)


def test_https_peers_are_allowed_from_a_plain_admin(tmp_path: Path) -> None:
    config = parse_args(["--peer", "https://10.0.0.2:6411"], {})
    assert config.peers == ("https://10.0.0.2:6411",) and config.tls.cert is None


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--version"], {})
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("seqgen-admin 0.")


def test_token_from_a_file_wins_over_the_environment(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert parse_args(["--token-file", str(path)], {TOKEN_ENV: "from-env"}).token == "from-file"
    assert "not both" in _refused(["--token-file", str(path), "--token", "x"], capsys)
    assert "No such file" in _refused(["--token-file", str(tmp_path / "none")], capsys)
    path.write_text("\n")
    assert "is empty" in _refused(["--token-file", str(path)], capsys)
    path.write_text("two words\n")
    assert "printable ASCII" in _refused(["--token-file", str(path)], capsys)
