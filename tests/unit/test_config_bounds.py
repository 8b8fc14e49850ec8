"""The numeric bounds of the three daemons' flags: the exact message of each, and both edges.

The messages are pinned word for word: operators and scripts read them, and the
bounds are declared on the config types (seqgen_common.bounds), so a change of
phrasing there shows up here.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
import pytest

from seqgen_admin.config import AdminConfig
from seqgen_admin.config import _build_parser as admin_parser
from seqgen_admin.config import parse_args as admin_args
from seqgen_common import bounds
from seqgen_common.control import MAX_FLOORS
from seqgen_proxy.config import ProxyConfig
from seqgen_proxy.config import _build_parser as proxy_parser
from seqgen_proxy.config import parse_args as proxy_args
from seqgen_server.config import ServerConfig
from seqgen_server.config import _build_parser as server_parser
from seqgen_server.config import parse_args as server_args

HOST = ["--host", "tcp://10.0.0.1:6410"]


def _admin(argv: list[str]) -> Any:
    return admin_args(argv, {})


def _proxy(argv: list[str]) -> Any:
    return proxy_args([*HOST, *argv])


PARSERS: dict[str, Callable[[list[str]], Any]] = {
    "seqgen-server": server_args, "seqgen-proxy": _proxy, "seqgen-admin": _admin,
}

REFUSED = [
    ("seqgen-server", ["--instances", "0"], "--instances must be at least 1, got 0"),
    ("seqgen-server", ["--instance", "0"], "--instance must be at least 1, got 0"),
    ("seqgen-server", ["--instance", "0", "--instances", "2"], "--instance must be at least 1, got 0"),
    ("seqgen-server", ["--instance", "3", "--instances", "2"],
     "--instance must be between 1 and --instances (2), got 3"),
    ("seqgen-server", ["--drift", "-1"], "--drift must be 0 or more, got -1"),
    ("seqgen-server", ["--reserve", "0"], "--reserve must be at least 1, got 0"),
    ("seqgen-server", ["--max-disk-waits", "-1"], "--max-disk-waits must be 0 or more, got -1"),
    ("seqgen-server", ["--max-sequences", "0"], "--max-sequences must be at least 1, got 0"),
    ("seqgen-server", ["--memory-limit-mb", "-1"], "--memory-limit-mb must be 0 or more, got -1"),
    ("seqgen-proxy", ["--memory-limit-mb", "-5"], "--memory-limit-mb must be 0 or more, got -5"),
    ("seqgen-admin", ["--memory-limit-mb", "-1"], "--memory-limit-mb must be 0 or more, got -1"),
    ("seqgen-proxy", ["--timeout", "0.001"], "--timeout must be between 0.01 and 60.0 seconds"),
    ("seqgen-proxy", ["--timeout", "60.5"], "--timeout must be between 0.01 and 60.0 seconds"),
    ("seqgen-proxy", ["--timeout", "nan"], "--timeout must be between 0.01 and 60.0 seconds"),
    ("seqgen-proxy", ["--probe-interval", "0"],
     "--probe-interval must be between 0.01 and 60.0 seconds"),
    ("seqgen-proxy", ["--probe-interval", "61"],
     "--probe-interval must be between 0.01 and 60.0 seconds"),
    ("seqgen-proxy", ["--max-names", "0"], "--max-names must be at least 1, got 0"),
    ("seqgen-proxy", ["--max-in-flight", "0"], "--max-in-flight must be between 1 and 100000"),
    ("seqgen-proxy", ["--max-in-flight", "100001"], "--max-in-flight must be between 1 and 100000"),
    ("seqgen-proxy", ["--max-queued", "-1"], "--max-queued must be between 0 and 1000000"),
    ("seqgen-proxy", ["--max-queued", "1000001"], "--max-queued must be between 0 and 1000000"),
    ("seqgen-admin", ["--control-timeout", "0"], "--control-timeout must be in (0, 60] seconds, got 0.0"),
    ("seqgen-admin", ["--control-timeout", "61"],
     "--control-timeout must be in (0, 60] seconds, got 61.0"),
    ("seqgen-admin", ["--witness-interval", "-1"],
     "--witness-interval must be in (0, 3600] seconds, got -1.0"),
    ("seqgen-admin", ["--witness-interval", "3601"],
     "--witness-interval must be in (0, 3600] seconds, got 3601.0"),
    ("seqgen-admin", ["--follow-max-names", "0"], f"--follow-max-names must be in 1..{MAX_FLOORS}, got 0"),
    ("seqgen-admin", ["--follow-max-names", str(MAX_FLOORS + 1)],
     f"--follow-max-names must be in 1..{MAX_FLOORS}, got {MAX_FLOORS + 1}"),
    ("seqgen-admin", ["--recover-timeout", "nan"],
     "--recover-timeout must be in (0, 3600] seconds, got nan"),
    ("seqgen-admin", ["--recover-timeout", "3601"],
     "--recover-timeout must be in (0, 3600] seconds, got 3601.0"),
    ("seqgen-admin", ["--header-timeout", "0"], "--header-timeout must be in (0, 300] seconds, got 0.0"),
    ("seqgen-admin", ["--header-timeout", "301"],
     "--header-timeout must be in (0, 300] seconds, got 301.0"),
    ("seqgen-admin", ["--max-connections-per-client", "0"],
     "--max-connections-per-client must be in 1..10000, got 0"),
    ("seqgen-admin", ["--max-connections-per-client", "10001"],
     "--max-connections-per-client must be in 1..10000, got 10001"),
]


@pytest.mark.parametrize(("prog", "argv", "message"), REFUSED)
def test_a_value_out_of_bounds_exits_2_with_its_message(
    prog: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        PARSERS[prog](argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"{prog}: error: {message}"


ACCEPTED = [
    ("seqgen-server", ["--instance", "1", "--instances", "1", "--drift", "0", "--reserve", "1",
                       "--max-disk-waits", "0", "--max-sequences", "1", "--memory-limit-mb", "0"],
     {"instance": 1, "instances": 1, "drift": 0, "reserve": 1, "max_disk_waits": 0,
      "max_sequences": 1, "memory_limit_mb": 0}),
    ("seqgen-server", ["--instance", "7", "--instances", "7"], {"instance": 7, "instances": 7}),
    ("seqgen-proxy", ["--timeout", "0.01", "--probe-interval", "0.01", "--max-names", "1",
                      "--max-in-flight", "1", "--max-queued", "0"],
     {"timeout_s": 0.01, "probe_interval_s": 0.01, "max_names": 1, "max_in_flight": 1,
      "max_queued": 0}),
    ("seqgen-proxy", ["--timeout", "60", "--probe-interval", "60", "--max-in-flight", "100000",
                      "--max-queued", "1000000"],
     {"timeout_s": 60.0, "probe_interval_s": 60.0, "max_in_flight": 100_000,
      "max_queued": 1_000_000}),
    ("seqgen-admin", ["--control-timeout", "60", "--witness-interval", "3600",
                      "--follow-max-names", str(MAX_FLOORS), "--recover-timeout", "3600",
                      "--header-timeout", "300", "--max-connections-per-client", "10000"],
     {"control_timeout_s": 60.0, "witness_interval_s": 3600.0, "follow_max_names": MAX_FLOORS,
      "recover_timeout_s": 3600.0, "header_timeout_s": 300.0,
      "max_connections_per_client": 10_000}),
    ("seqgen-admin", ["--control-timeout", "0.001", "--witness-interval", "0.001",
                      "--follow-max-names", "1", "--recover-timeout", "0.001",
                      "--header-timeout", "0.001", "--max-connections-per-client", "1"],
     {"control_timeout_s": 0.001, "witness_interval_s": 0.001, "follow_max_names": 1,
      "recover_timeout_s": 0.001, "header_timeout_s": 0.001, "max_connections_per_client": 1}),
]


@pytest.mark.parametrize(("prog", "argv", "expected"), ACCEPTED)
def test_the_edges_of_each_bound_are_accepted(
    prog: str, argv: list[str], expected: dict[str, object]
) -> None:
    config = PARSERS[prog](argv)
    assert {name: getattr(config, name) for name in expected} == expected


CONFIGS: dict[str, tuple[type, Callable[[], argparse.ArgumentParser]]] = {
    "seqgen-server": (ServerConfig, server_parser), "seqgen-proxy": (ProxyConfig, proxy_parser),
    "seqgen-admin": (AdminConfig, admin_parser),
}


@pytest.mark.parametrize("prog", sorted(CONFIGS))
def test_each_declared_bound_names_a_flag_that_sets_its_field(prog: str) -> None:
    config_type, build = CONFIGS[prog]
    dests = {action.dest: action.option_strings for action in build()._actions}
    declared = bounds.bounds(config_type)
    assert "memory_limit_mb" in {bound.field for bound in declared}
    for bound in declared:
        assert dests.get(bound.field) == [bound.flag], bound


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ServerConfig(reserve=0), "--reserve must be at least 1, got 0"),
        (lambda: ServerConfig(instance=3, instances=2),
         "--instance must be between 1 and --instances (2), got 3"),
        (lambda: ServerConfig(memory_limit_mb=-1), "--memory-limit-mb must be 0 or more, got -1"),
        (lambda: ProxyConfig(hosts=(), timeout_s=99.0), "--timeout must be between 0.01 and 60.0 seconds"),
        (lambda: AdminConfig(header_timeout_s=0.0), "--header-timeout must be in (0, 300] seconds, got 0.0"),
    ],
)
def test_a_config_made_in_code_is_held_to_the_same_bounds(make: Callable[[], object],
                                                          message: str) -> None:
    with pytest.raises(ValueError) as refused:
        make()
    assert str(refused.value) == message


@dataclasses.dataclass(frozen=True)
class _Wordless:
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 1.0


def test_a_bound_the_messages_cannot_word_is_refused_when_declared() -> None:
    with pytest.raises(TypeError, match=r"_Wordless.timeout_s: a bound is ge, ge and le, or gt and le"):
        bounds.check(_Wordless, {"timeout_s": 0.0})
