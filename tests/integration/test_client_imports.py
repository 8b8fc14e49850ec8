"""The client needs only seqgen_common, pyzmq and msgspec (README, "Install")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import msgspec

import seqgen_client

PACKAGE = Path(seqgen_client.__file__).parent
ALLOWED = {"seqgen_client", "seqgen_common", "zmq", "msgspec"}
FORBIDDEN = {
    "fastapi", "uvicorn", "supervisor", "starlette", "pydantic", "prometheus_client",
    "fastapi_offline", "httpx", "seqgen_server", "seqgen_proxy", "seqgen_admin",
}


def test_importing_the_client_loads_no_server_side_module() -> None:
    code = (
        "import sys, json\n"
        "import seqgen_client, seqgen_client.cli\n"
        "from seqgen_client import Client, AsyncClient, SeqgenError, Unavailable\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    loaded = set(msgspec.json.decode(done.stdout))
    assert {"seqgen_client", "seqgen_common", "zmq", "msgspec"} <= loaded
    assert loaded & FORBIDDEN == set()


def test_the_client_s_source_imports_only_the_standard_library_zmq_and_msgspec() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    seen = set()
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                seen.add(top)
                assert top in stdlib or top in ALLOWED, f"{path.name} imports {name}"
    assert {"zmq", "seqgen_common"} <= seen


def test_the_package_ships_its_type_marker() -> None:
    assert (PACKAGE / "py.typed").is_file()
