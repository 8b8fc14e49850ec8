"""The ``seqgen`` command line: parsing, endpoint sources, exit codes (no sockets)."""

from __future__ import annotations

import io

import pytest

from seqgen_client.cli import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    NextCommand,
    endpoints_from,
    parse_args,
    run_next,
)


def test_exit_codes_are_distinct_and_usage_is_argparse_s() -> None:
    codes = [EXIT_OK, EXIT_USAGE, EXIT_REFUSED, EXIT_UNAVAILABLE]
    assert len(set(codes)) == 4
    assert EXIT_OK == 0
    assert EXIT_USAGE == 2


def test_next_with_defaults() -> None:
    command = parse_args(["next", "invoice"], {})
    assert command == NextCommand(
        name="invoice", count=1, endpoints=("tcp://127.0.0.1:6410",), timeout_s=1.0,
        deadline_s=command.deadline_s,
    )


def test_next_with_everything() -> None:
    command = parse_args(
        ["next", "inv", "--count", "50", "-e", "tcp://10.0.0.11:6410", "--endpoint",
         "ipc:///tmp/s", "--timeout", "0.25", "--deadline", "2", "--last", "9223372036854775807"],
        {"SEQGEN_ENDPOINTS": "tcp://ignored:1"},
    )
    assert command.last == 9223372036854775807
    assert command.count == 50
    assert command.endpoints == ("tcp://10.0.0.11:6410", "ipc:///tmp/s")
    assert command.timeout_s == 0.25
    assert command.deadline_s == 2.0


def test_endpoints_come_from_flags_then_environment_then_default() -> None:
    assert endpoints_from(["tcp://a:1"], {"SEQGEN_ENDPOINTS": "tcp://b:1"}) == ("tcp://a:1",)
    assert endpoints_from(None, {"SEQGEN_ENDPOINTS": " tcp://b:1, tcp://c:2 ,,"}) == (
        "tcp://b:1", "tcp://c:2",
    )
    assert endpoints_from(None, {"SEQGEN_ENDPOINTS": " , "}) == ("tcp://127.0.0.1:6410",)
    assert endpoints_from(None, {}) == ("tcp://127.0.0.1:6410",)


def test_parse_args_reads_only_the_environment_it_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEQGEN_ENDPOINTS", "tcp://from-env:7")
    assert parse_args(["next", "x"], {}).endpoints == ("tcp://127.0.0.1:6410",)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["next"],
        ["frobnicate", "x"],
        ["next", "x", "--count", "many"],
        ["next", "x", "-e", "http://a:1"],
        ["next", "x", "-e", "tcp://nohostport"],
        ["next", "x", "--timeout", "0"],
        ["next", "x", "--timeout", "-1"],
        ["next", "x", "--deadline", "inf"],
        ["next", "x", "--deadline", "soon"],
        ["next", "x", "--last", "-1"],
        ["next", "x", "--last", "1e3"],
        ["next", "x", "--last", "9223372036854775808"],
        ["next", "x", "--last", ""],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(argv, {})
    assert info.value.code == EXIT_USAGE
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["next", "x", "--count", "0"], {}, "count must be an integer from 1 to 1000, got 0"),
        (["next", "x", "-n", "1001"], {}, "got 1001"),
        (["next", "x", "--count", "abc"], {}, "not a whole number"),
        (["next", ""], {}, "name must be a non-empty string"),
        (["next", "x" * 201], {}, "longer than 200"),
        (["next", "a\nb"], {}, "control"),
        (["next", "x", "--server-key", "/nonexistent/servers.key"], {}, "/nonexistent/servers.key"),
        (["next", "x", "--client-key", "/nonexistent/c.key_secret"], {}, "needs --server-key"),
        (["next", "x"], {"SEQGEN_ENDPOINTS": "localhost:6410"}, "SEQGEN_ENDPOINTS"),
        (["keygen", "/tmp/k", "--name", ".hidden"], {}, "key name '.hidden'"),
    ],
)
def test_a_bad_argument_exits_2_with_its_subcommand_s_usage(
    argv: list[str], environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str],
) -> None:
    """Whether a value does not parse or is out of range: 2, nothing sent, the right usage."""
    with pytest.raises(SystemExit) as info:
        parse_args(argv, environ)
    assert info.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"usage: seqgen {argv[0]} "), err
    assert f"seqgen {argv[0]}: error: " in err and message in err, err


def test_a_bad_endpoint_in_the_environment_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["next", "x"], {"SEQGEN_ENDPOINTS": "localhost:6410"})
    assert info.value.code == EXIT_USAGE
    assert "SEQGEN_ENDPOINTS" in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["next", "--help"]):
        with pytest.raises(SystemExit) as info:
            parse_args(argv, {})
        assert info.value.code == 0
        text = capsys.readouterr().out
        for code in ("0  success", "2  usage", "3  the request was refused", "4  unavailable"):
            assert code in text
        assert "SEQGEN_ENDPOINTS" in text


@pytest.mark.parametrize(
    ("name", "count", "code"),
    [("", 1, "BAD_NAME"), ("x" * 201, 1, "BAD_NAME"), ("ok", 0, "BAD_COUNT"),
     ("ok", 1001, "BAD_COUNT")],
)
def test_invalid_requests_are_refused_locally_with_the_server_codes(
    name: str, count: int, code: str
) -> None:
    out, err = io.StringIO(), io.StringIO()
    # Nothing listens there: a request that went out would end in UNAVAILABLE instead.
    command = NextCommand(name=name, count=count, endpoints=("tcp://127.0.0.1:9",),
                          timeout_s=0.05, deadline_s=0.1)
    assert run_next(command, out, err) == EXIT_REFUSED
    assert out.getvalue() == ""
    assert err.getvalue().startswith(f"seqgen: {code}: ")
