"""The systemd units of etc/systemd: checked by systemd's own analyzer, and run.

``systemd-analyze verify`` must accept the units without a word, and
``systemd-analyze security --offline=yes`` must rate each one's exposure 2.5 or lower.
Then the units' command lines, expanded from the example environment files as systemd
expands them, start a real two-host cluster (two servers, their admins peered through
SEQGEN_PEERS, a proxy listing both through SEQGEN_PROXY_HOSTS) that hands out numbers.
"""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import READY_TIMEOUT_S, Cluster, free_port, numbers, request, wait_until
from tests.integration.admin_support import admin_ready
from tests.integration.systemd_support import (
    DATA_PATH,
    SYSTEMD,
    UNITS,
    exec_start,
    read_env,
    render_unit,
    self_applied,
    service_settings,
    substitute,
)
from tests.tls_support import Cert, Pki

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
MAX_EXPOSURE = 2.5
TOKEN = "systemd-test-token"


def analyzer() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("needs systemd-analyze on PATH (Debian's systemd package)")
    return tool


def render_all(target: Path) -> list[Path]:
    """The three units with this venv's programs, beside copies of the example env files."""
    for env_name in ("seqgen.env", "seqgen-proxy.env"):
        shutil.copy(SYSTEMD / env_name, target / env_name)
    paths = []
    for name in UNITS:
        path = target / name
        path.write_text(render_unit(name, VENV, target))
        paths.append(path)
    return paths


def test_systemd_analyze_verify_accepts_every_unit_without_a_warning(tmp_path: Path) -> None:
    tool = analyzer()
    paths = render_all(tmp_path)
    result = subprocess.run([tool, "verify", *map(str, paths)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt setting is reported."""
    tool = analyzer()
    paths = render_all(tmp_path)
    broken = paths[0].read_text().replace("NoNewPrivileges=", "NoNewPrivilege=")
    paths[0].write_text(broken)
    result = subprocess.run([tool, "verify", str(paths[0])], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60, check=False)
    assert "NoNewPrivilege" in result.stdout + result.stderr


@pytest.mark.parametrize("name", UNITS)
def test_exposure_is_at_most_2_5(tmp_path: Path, name: str) -> None:
    tool = analyzer()
    render_all(tmp_path)
    result = subprocess.run([tool, "security", "--offline=yes", "--no-pager", str(tmp_path / name)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
    found = re.search(rf"Overall exposure level for {re.escape(name)}: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


@pytest.mark.parametrize("name", UNITS)
def test_units_run_as_the_dedicated_user_with_limits_and_restarts(name: str) -> None:
    settings = service_settings((SYSTEMD / name).read_text())
    assert settings["User"] == ["seqgen"] and settings["Group"] == ["seqgen"]
    assert settings["Restart"] == ["always"]
    assert settings["NoNewPrivileges"] == ["yes"] and settings["ProtectSystem"] == ["strict"]
    assert settings["PrivateTmp"] == ["yes"]
    assert int(settings["LimitNOFILE"][0]) >= 4096 and settings["MemoryMax"]
    if name != "seqgen-proxy.service":  # the proxy keeps no state
        assert settings["StateDirectory"] == ["seqgen"]


def _template_command(name: str, env: dict[str, str]) -> list[str]:
    text = (REPO / "etc" / "deploy" / name).read_text()
    return [
        re.sub(r"%\(ENV_([A-Z_]+)\)s", lambda m: env[m.group(1)], line.split("=", 1)[1].strip()).split()
        for line in text.splitlines() if line.startswith("command =")
    ]


def test_units_run_the_same_commands_as_the_supervisord_templates() -> None:
    """One deployment, two supervisors: the same flags from the same variables."""
    host_env = read_env((SYSTEMD / "seqgen.env").read_text())
    proxy_env = read_env((SYSTEMD / "seqgen-proxy.env").read_text())
    assert {"SEQGEN_INSTANCE", "SEQGEN_INSTANCES", "SEQGEN_ADMIN_TOKEN", "SEQGEN_PEERS"} <= host_env.keys()
    server, admin = _template_command("seqgen-host.conf", host_env)
    (proxy,) = _template_command("seqgen-proxy.conf", {})
    if "--metrics" in proxy:  # a flag newer than the units: SEQGEN_PROXY_EXTRA gives it
        at = proxy.index("--metrics")
        proxy_env["SEQGEN_PROXY_EXTRA"] = " ".join(proxy[at:at + 2])
        proxy = proxy[:at] + proxy[at + 2:] + proxy[at:at + 2]
    unit = {name: exec_start((SYSTEMD / name).read_text(), host_env | proxy_env) for name in UNITS}
    assert unit["seqgen-server.service"] == server
    assert unit["seqgen-admin.service"] == admin
    assert unit["seqgen-proxy.service"] == proxy


# ---- the units' command lines, run ------------------------------------------------


def _sees_peer(url: str, verify: ssl.SSLContext) -> bool:
    view = httpx.get(f"{url}/cluster", timeout=2.0, verify=verify).json()
    return bool(view["peers"]) and all(peer["reachable"] for peer in view["peers"])


@dataclass
class UnitHost:
    """One host's addresses and directory in the run below."""

    instance: int
    root: Path
    tls: Cert
    """Its certificate (from the test's CA) for the admin's mutual TLS."""
    ca: Path
    public: str = field(default_factory=lambda: f"tcp://127.0.0.1:{free_port()}")
    control: str = field(default_factory=lambda: f"tcp://127.0.0.1:{free_port()}")
    admin: str = field(default_factory=lambda: f"https://127.0.0.1:{free_port()}")

    def env_text(self, peer: UnitHost) -> str:
        """The example seqgen.env as this host of two would have it."""
        text = (SYSTEMD / "seqgen.env").read_text()
        text = substitute(text, "SEQGEN_INSTANCE=1", f"SEQGEN_INSTANCE={self.instance}")
        text = substitute(text, "SEQGEN_INSTANCES=3", "SEQGEN_INSTANCES=2")
        text = substitute(text, "SEQGEN_ADMIN_TOKEN=change-me", f"SEQGEN_ADMIN_TOKEN={TOKEN}")
        return substitute(text, "https://seqgen-2.internal:6411 https://seqgen-3.internal:6411", peer.admin)

    def argv(self, name: str, env: dict[str, str]) -> list[str]:
        replacements = {DATA_PATH: str(self.root / "state"), "tcp://0.0.0.0:6410": self.public,
                        "tcp://127.0.0.1:6412": self.control, "https://0.0.0.0:6411": self.admin,
                        "/etc/seqgen/tls/host.crt": str(self.tls.cert),
                        "/etc/seqgen/tls/host.key": str(self.tls.key),
                        "/etc/seqgen/tls/ca.crt": str(self.ca)}
        text = (SYSTEMD / name).read_text()
        wanted = {old: new for old, new in replacements.items() if old in text}
        rendered = render_unit(name, VENV, self.root, wanted)
        return self_applied(rendered, exec_start(rendered, env))


def test_the_units_command_lines_run_a_cluster_that_hands_out_numbers(
    cluster: Cluster, tmp_path: Path
) -> None:
    pki = Pki(tmp_path / "pki")  # the admins speak mutual TLS, as the units say
    hosts = [UnitHost(k, tmp_path / f"host-{k}", pki.host(f"host-{k}"), pki.ca) for k in (1, 2)]
    operator = pki.context(pki.host("operator"))
    for host, peer in zip(hosts, reversed(hosts), strict=True):
        host.root.mkdir()
        env_text = host.env_text(peer)
        (host.root / "seqgen.env").write_text(env_text)
        env = os.environ | read_env(env_text)  # systemd passes the file's variables to the process
        server_argv = host.argv("seqgen-server.service", env)
        assert Path(server_argv[server_argv.index("--") + 1]).is_file(), server_argv
        server = cluster.command(server_argv, "seqgen-server", env=env)
        wait_until(lambda h=host: request(h.control, b'{"type":"ping"}', timeout_s=0.5) is not None,
                   READY_TIMEOUT_S, "seqgen-server from its unit", server)
        admin = cluster.command(host.argv("seqgen-admin.service", env), "seqgen-admin", env=env)
        wait_until(lambda h=host: admin_ready(h.admin, verify=operator), READY_TIMEOUT_S,
                   "seqgen-admin from its unit", admin)

    proxy_dir = tmp_path / "proxy"
    proxy_dir.mkdir()
    proxy_env_text = (SYSTEMD / "seqgen-proxy.env").read_text()
    for host in hosts:
        server_name = f"tcp://seqgen-{host.instance}.internal:6410"
        proxy_env_text = substitute(proxy_env_text, server_name, host.public)
    proxy_env_text = substitute(proxy_env_text, " --host tcp://seqgen-3.internal:6410", "")
    proxy_bind = f"tcp://127.0.0.1:{free_port()}"
    rendered = render_unit("seqgen-proxy.service", VENV, proxy_dir, {"tcp://127.0.0.1:6410": proxy_bind})
    argv = self_applied(rendered, exec_start(rendered, read_env(proxy_env_text)))
    assert argv.count("--host") == 2, argv
    proxy = cluster.command(argv, "seqgen-proxy")
    wait_until(lambda: request(proxy_bind, b"[]", timeout_s=0.5) is not None, READY_TIMEOUT_S,
               "seqgen-proxy from its unit", proxy)

    # Instance k of 2 issues numbers congruent to k mod 2; the proxy reaches both.
    assert numbers(hosts[0].public, "invoice")[0] % 2 == 1
    assert numbers(hosts[1].public, "invoice")[0] % 2 == 0
    through_proxy = [numbers(proxy_bind, "invoice")[0] for _ in range(4)]
    assert len(set(through_proxy)) == 4 and min(through_proxy) > 0
    for host in hosts:
        assert (host.root / "state" / "seqgen.db").stat().st_mode & 0o077 == 0  # UMask=0077
        # The admins found each other through SEQGEN_PEERS and took the token from the file.
        wait_until(lambda h=host: _sees_peer(h.admin, operator), READY_TIMEOUT_S,
                   "the admin sees its peer over mutual TLS")
        fenced = httpx.post(f"{host.admin}/fence", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=5.0, verify=operator)
        assert fenced.status_code == 200, fenced.text
        assert (host.root / "state" / "witness.db").is_file()
