"""The multi-host supervisord templates parse and start the right programs."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from seqgen_proxy.config import parse_args as parse_proxy_args

REPO = Path(__file__).resolve().parents[2]


def programs(template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    monkeypatch.setenv("SEQGEN_INSTANCE", "2")
    monkeypatch.setenv("SEQGEN_INSTANCES", "3")
    text = (REPO / "etc" / "deploy" / template).read_text()
    # The templates run as user "seqgen"; parse them as whoever runs the test.
    (tmp_path / template).write_text(text.replace("user = seqgen", f"user = {getpass.getuser()}"))
    main = tmp_path / "supervisord.conf"
    main.write_text(f"[supervisord]\nlogfile = {tmp_path}/log\n[include]\nfiles = {tmp_path / template}\n")
    options = ServerOptions()
    options.configfile = str(main)
    options.process_config(do_usage=False)
    return {p.name: p.command.split() for g in options.process_group_configs for p in g.process_configs}


def test_host_template_runs_one_server_and_its_admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    progs = programs("seqgen-host.conf", tmp_path, monkeypatch)
    assert set(progs) == {"seqgen-server", "seqgen-admin"}
    server = progs["seqgen-server"]
    assert server[server.index("--instance") + 1] == "2"
    assert server[server.index("--instances") + 1] == "3"
    control = server[server.index("--control") + 1]
    assert control.startswith("tcp://127.0.0.1:")
    admin = progs["seqgen-admin"]
    assert admin[admin.index("--control") + 1] == control
    assert admin[admin.index("--witness-file") + 1].startswith("/var/lib/seqgen/")
    assert "--fenced" not in server  # a fence comes from the store, never from every start
    assert "--peer" not in admin  # peers come from SEQGEN_PEERS in the environment


def test_host_template_documents_peers_and_fenced_starts() -> None:
    text = (REPO / "etc" / "deploy" / "seqgen-host.conf").read_text()
    for needed in ("SEQGEN_PEERS", "--fenced", "POST /recover", "GET /backup", "docs/operations.md"):
        assert needed in text, needed


def test_proxy_template_lists_every_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    progs = programs("seqgen-proxy.conf", tmp_path, monkeypatch)
    proxy = progs["seqgen-proxy"]
    assert proxy.count("--host") == 3


def test_proxies_serve_metrics_in_the_template_and_the_local_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templated = programs("seqgen-proxy.conf", tmp_path, monkeypatch)["seqgen-proxy"]
    local = next(line for line in (REPO / "etc" / "supervisord.conf").read_text().splitlines()
                 if line.startswith("command = ") and "seqgen-proxy" in line).split()[3:]
    for command in (templated[1:], local):
        config = parse_proxy_args(command)
        assert config.metrics is not None and config.metrics.endswith(":6419"), command
