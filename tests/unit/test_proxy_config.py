"""seqgen-proxy's command line -> ProxyConfig."""

from __future__ import annotations

import pytest

from seqgen_proxy.config import ProxyConfig, parse_args


def test_defaults() -> None:
    config = parse_args(["--host", "tcp://10.0.0.1:6410"])
    assert config == ProxyConfig(hosts=("tcp://10.0.0.1:6410",))
    assert config.bind == "tcp://0.0.0.0:6410"


def test_all_flags() -> None:
    config = parse_args([
        "--bind", "ipc:///tmp/p", "--host", "tcp://a:1", "--host", "tcp://b:2",
        "--timeout", "0.3", "--probe-interval", "0.1", "--max-names", "5",
        "--max-in-flight", "7", "--log-level", "debug", "--metrics", "http://127.0.0.1:6419",
    ])
    assert config == ProxyConfig(
        hosts=("tcp://a:1", "tcp://b:2"), bind="ipc:///tmp/p", timeout_s=0.3,
        probe_interval_s=0.1, max_names=5, max_in_flight=7, log_level="DEBUG",
        metrics="http://127.0.0.1:6419",
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no host
        ["--host", "http://a:1"],
        ["--host", "tcp://a:1", "--host", "tcp://a:1"],
        ["--host", "tcp://a:1", "--bind", "tcp://a:1"],
        ["--host", "tcp://a:1", "--timeout", "0"],
        ["--host", "tcp://a:1", "--timeout", "nan"],
        ["--host", "tcp://a:1", "--probe-interval", "-1"],
        ["--host", "tcp://a:1", "--max-names", "0"],
        ["--host", "tcp://a:1", "--max-in-flight", "0"],
        ["--host", "tcp://a:1", "--bind", "nowhere"],
        ["--host", "tcp://a:1", "--metrics", "tcp://127.0.0.1:6419"],
        ["--host", "tcp://a:1", "--metrics", "http://127.0.0.1:notaport"],
    ],
)
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert "seqgen-proxy" in capsys.readouterr().err
