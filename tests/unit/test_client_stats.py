"""One statistics shape for both clients: the Python ``Stats`` fields, the Node.js client's
``stats`` keys (clients/node/lib/stats.js, run with node when it is installed), its TypeScript
``Stats`` interface and README, and the table of docs/client.md name the same counters."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from seqgen_client import AsyncClient, Client
from seqgen_client.lanes import Stats

ROOT = Path(__file__).resolve().parents[2]
NODE_PACKAGE = ROOT / "clients" / "node"
NODE = shutil.which("node")

PYTHON_FIELDS = [field.name for field in dataclasses.fields(Stats)]


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def statistics_table() -> list[tuple[str, str]]:
    """(Python name, Node.js name) of each row of docs/client.md's Statistics table."""
    text = (ROOT / "docs" / "client.md").read_text(encoding="utf-8")
    section = text.split("### Statistics", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"^\| `(\w+)` \| `(\w+)` \|", section, re.MULTILINE)


def test_the_python_clients_report_every_stats_field() -> None:
    assert PYTHON_FIELDS, "Stats has fields"
    for kind in (Client, AsyncClient):
        stats = kind("tcp://127.0.0.1:1").stats
        assert isinstance(stats, Stats)
        assert [f.name for f in dataclasses.fields(stats)] == PYTHON_FIELDS


@pytest.mark.skipif(NODE is None, reason="node is not installed (scripts/test installs it as root)")
def test_the_node_client_counts_the_same_counters_in_camel_case() -> None:
    assert NODE is not None
    script = "process.stdout.write(JSON.stringify(Object.keys(require('./lib/stats.js').newStats())))"
    done = subprocess.run([NODE, "-e", script], cwd=NODE_PACKAGE, capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == [camel(name) for name in PYTHON_FIELDS]


def test_the_node_client_takes_its_counters_from_lib_stats() -> None:
    source = (NODE_PACKAGE / "lib" / "client.js").read_text(encoding="utf-8")
    assert "this._stats = newStats();" in source
    for name in PYTHON_FIELDS:
        assert re.search(rf"^\s+{camel(name)}: 0,$", (NODE_PACKAGE / "lib" / "stats.js").read_text(),
                         re.MULTILINE), name


def test_the_typescript_stats_interface_and_readme_list_the_same_counters() -> None:
    declarations = (NODE_PACKAGE / "index.d.ts").read_text(encoding="utf-8")
    interface = declarations.split("interface Stats {", 1)[1].split("\n  }", 1)[0]
    assert re.findall(r"^\s+(\w+): number;$", interface, re.MULTILINE) == [
        camel(name) for name in PYTHON_FIELDS]
    readme = " ".join((NODE_PACKAGE / "README.md").read_text(encoding="utf-8").split())
    assert "`client.stats`: `{ " + ", ".join(camel(name) for name in PYTHON_FIELDS) + " }`" in readme


def test_docs_client_md_has_one_row_per_counter_with_both_names() -> None:
    assert statistics_table() == [(name, camel(name)) for name in PYTHON_FIELDS]
