"""The systemd units of etc/systemd, read and rendered for one test host.

As tests/nemesis/render.py does for the supervisord templates, the units are read as
they are and only the values an operator fills in are substituted (the install path, the
environment file, the data directory, the addresses); each substitution must find its
text, so a unit that changes shape fails here loudly instead of silently running
something else. The command line is then expanded as systemd expands it: ``${VAR}`` is
replaced inside a word, a word that is exactly ``$VAR`` becomes the value's words (none
when it is empty), and quotes group words.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "etc" / "systemd"
UNITS = ("seqgen-server.service", "seqgen-admin.service", "seqgen-proxy.service")
INSTALL_PATH = "/opt/seqgen/.venv"
DATA_PATH = "/var/lib/seqgen"
HOST_ENV_PATH = "/etc/seqgen/seqgen.env"
PROXY_ENV_PATH = "/etc/seqgen/seqgen-proxy.env"

_WHOLE_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_BRACED_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(text: str, old: str, new: str) -> str:
    if old not in text:
        raise ValueError(f"the unit no longer contains {old!r}: update tests/integration/systemd_support.py")
    return text.replace(old, new)


def service_settings(unit_text: str) -> dict[str, list[str]]:
    """The [Service] section: each key with its values in order (a key may repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in unit_text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if raw.rstrip().endswith("\\"):
            raise ValueError(f"a continued line the test does not read: {raw!r}")
        if section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def read_env(text: str) -> dict[str, str]:
    """An EnvironmentFile's variables: KEY=VALUE lines, comments, quoted values."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise ValueError(f"not a variable assignment: {raw!r}")
        value = value.strip()
        if value and value[0] in "\"'":
            words = shlex.split(value)
            if len(words) != 1:
                raise ValueError(f"one quoted value expected: {raw!r}")
            value = words[0]
        env[key.strip()] = value
    return env


def expand(command: str, env: Mapping[str, str]) -> list[str]:
    """An ExecStart= line's argument vector after systemd's variable expansion."""
    argv: list[str] = []
    for word in shlex.split(command, posix=True):
        whole = _WHOLE_VAR.fullmatch(word)
        if whole:
            argv += env.get(whole.group(1), "").split()
            continue
        argv.append(_BRACED_VAR.sub(lambda m: env.get(m.group(1), ""), word))
    return argv


def exec_start(unit_text: str, env: Mapping[str, str]) -> list[str]:
    commands = service_settings(unit_text)["ExecStart"]
    if len(commands) != 1:
        raise ValueError(f"one ExecStart= expected, found {commands}")
    return expand(commands[0], env)


def render_unit(name: str, venv: Path, env_dir: Path,
                replacements: Mapping[str, str] | None = None) -> str:
    """The unit with the venv's programs and the environment files in ``env_dir``."""
    text = substitute((SYSTEMD / name).read_text(), INSTALL_PATH, str(venv))
    env_path = PROXY_ENV_PATH if name == "seqgen-proxy.service" else HOST_ENV_PATH
    text = substitute(text, env_path, str(env_dir / Path(env_path).name))
    for old, new in (replacements or {}).items():
        text = substitute(text, old, new)
    return text


_SELF_APPLIED = """
import ctypes, os, resource, sys
settings = dict(arg.split("=", 1) for arg in sys.argv[1:sys.argv.index("--")])
argv = sys.argv[sys.argv.index("--") + 1:]
prctl = ctypes.CDLL(None, use_errno=True).prctl
if settings.get("NoNewPrivileges") == "yes" and prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    sys.exit("PR_SET_NO_NEW_PRIVS failed")
if settings.get("MemoryDenyWriteExecute") == "yes" and prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE
    if ctypes.get_errno() != 22:
        sys.exit(f"PR_SET_MDWE failed: errno {ctypes.get_errno()}")
    print("PR_SET_MDWE: not in this kernel (before 6.3); running without it", file=sys.stderr)
if "LimitNOFILE" in settings:
    limit = min(int(settings["LimitNOFILE"]), resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))  # at most what this test may set
if "UMask" in settings:
    os.umask(int(settings["UMask"], 8))
os.execv(argv[0], argv)
"""


def self_applied(unit_text: str, argv: list[str]) -> list[str]:
    """``argv`` run under the unit's settings that a process can apply to itself before exec:
    NoNewPrivileges, MemoryDenyWriteExecute (the kernel's PR_SET_MDWE, which outlives exec),
    LimitNOFILE (up to the hard limit this test has) and UMask. The rest (namespaces, the
    system-call filter) needs systemd."""
    settings = service_settings(unit_text)
    chosen = [f"{key}={settings[key][-1]}" for key in
              ("NoNewPrivileges", "MemoryDenyWriteExecute", "LimitNOFILE", "UMask") if key in settings]
    return [sys.executable, "-c", _SELF_APPLIED, *chosen, "--", *argv]
