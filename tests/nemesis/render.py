"""The deployment templates of etc/deploy, rendered for one test host.

The templates are read as they are and only the values an operator fills in
are substituted (the install path, the data directory, the user, the
servers' names); each substitution must find its text, so a template that
changes shape fails here loudly instead of silently running something else.
The result is included by a small main supervisord.conf of the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "etc" / "deploy"
HOST_TEMPLATE = DEPLOY / "seqgen-host.conf"
PROXY_TEMPLATE = DEPLOY / "seqgen-proxy.conf"

INSTALL_PATH = "/opt/seqgen/.venv"
DATA_PATH = "/var/lib/seqgen"
TLS_PATH = "/etc/seqgen/tls"
USER_LINE = "user = seqgen"
SERVER_NAME = "seqgen-{k}.internal"
PROXY_LOOPBACK_BIND = "--bind tcp://127.0.0.1:6410"
PROXY_SHARED_BIND = "--bind tcp://0.0.0.0:6410"


def substitute(text: str, old: str, new: str) -> str:
    if old not in text:
        raise ValueError(f"the template no longer contains {old!r}: update the nemesis renderer")
    return text.replace(old, new)


def render_host(venv: Path, data: Path, user: str, tls: Path) -> str:
    """seqgen-host.conf for one server host (its instance comes from supervisord's environment),
    its admin's certificates in ``tls`` (ca.crt, host.crt, host.key)."""
    text = HOST_TEMPLATE.read_text()
    text = substitute(text, INSTALL_PATH, str(venv))
    text = substitute(text, DATA_PATH, str(data))
    text = substitute(text, TLS_PATH, str(tls))
    return substitute(text, USER_LINE, f"user = {user}")


def render_proxy(venv: Path, user: str, servers: Sequence[str]) -> str:
    """seqgen-proxy.conf listing ``servers`` (addresses), bound for clients of other hosts too.

    The template binds loopback (a sidecar); here each proxy also serves the clients of the
    other client host, the "two proxies per zone" layout of the README.
    """
    text = PROXY_TEMPLATE.read_text()
    text = substitute(text, INSTALL_PATH, str(venv))
    text = substitute(text, USER_LINE, f"user = {user}")
    text = substitute(text, PROXY_LOOPBACK_BIND, PROXY_SHARED_BIND)
    for k, address in enumerate(servers, start=1):
        text = substitute(text, SERVER_NAME.format(k=k), address)
    if SERVER_NAME.format(k=len(servers) + 1) in text:
        raise ValueError("the proxy template lists more servers than the test has")
    return text


def main_conf(root: Path, identifier: str, include: Path) -> str:
    """The host's own supervisord.conf: state under ``root``, the rendered template included."""
    return "\n".join([
        "[supervisord]",
        "minfds = 4096",
        f"logfile = {root}/supervisord.log",
        f"pidfile = {root}/supervisord.pid",
        f"childlogdir = {root}/log",
        f"directory = {root}",
        f"identifier = {identifier}",
        "",
        "[unix_http_server]",
        f"file = {root}/supervisor.sock",
        "chmod = 0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl = unix://{root}/supervisor.sock",
        "",
        "[include]",
        f"files = {include}",
        "",
    ])
