"""The documents against the code, for what needs no process: flags and error codes.

Everything is derived from the code (the argparse parsers, the error-code enums,
pyproject's console scripts), so a flag or a code added anywhere fails here until
it is documented, with a message that names the flag or code and the document.

The rule for flags: the flag table of program ``P`` is the first table whose
columns start with ``flag | default`` under the heading ``Flags of `P` `` of
P's document (``DOCS`` below). Its first column holds the flags in inline code
(```--bind URI```, ```-n N`, `--count N```, ```--coalesce` / `--no-coalesce```),
its second the default: the parser's default written out (``1000`` or
``1,000``, ``1.0``, ``on`` for a true switch), or any words for a flag whose
default is nothing (None, off, a repeatable flag).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import zmq

from seqgen_admin.app import MAX_CONNECTIONS, MAX_IDLE_CONNECTIONS
from seqgen_admin.config import _build_parser as admin_parser
from seqgen_admin.guard import MAX_BODY_BYTES
from seqgen_client import AsyncClient, Client, cli
from seqgen_client.cli import build_parser as cli_parser
from seqgen_common.control import Counters
from seqgen_common.errors import ControlCode, ErrorCode
from seqgen_common.limits import MAX_FRAME_BYTES
from seqgen_common.outbox import DEFAULT_LIMIT as OUTBOX_LIMIT
from seqgen_common.sockets import MAX_CONTROL_REPLY_BYTES, PUBLIC
from seqgen_proxy.config import _build_parser as proxy_parser
from seqgen_server.config import _build_parser as server_parser
from seqgen_server.tasks import MAX_TASKS
from tests.markdown import ROOT, Table, inline_code, read, section, table_with

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "seqgen-server": server_parser,
    "seqgen-proxy": proxy_parser,
    "seqgen-admin": admin_parser,
    "seqgen": cli_parser,
}
"""Each console script of pyproject.toml and the function that builds its parser."""

DOCS: dict[str, str] = {
    "seqgen-server": "docs/server.md",
    "seqgen-proxy": "docs/proxy.md",
    "seqgen-admin": "docs/admin.md",
    "seqgen": "docs/client.md",
}
"""The document of each program (its subcommands' flag tables are in the same one)."""

_FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
_HELP = {"-h", "--help"}


@dataclass(frozen=True)
class Program:
    name: str
    """``seqgen-proxy``, or ``seqgen next`` for a subcommand."""
    parser: argparse.ArgumentParser
    doc: str

    @property
    def heading(self) -> str:
        return f"Flags of `{self.name}`"

    def options(self) -> list[argparse.Action]:
        return [a for a in self.parser._actions
                if a.option_strings and not _HELP.issuperset(a.option_strings)]


def programs() -> Iterator[Program]:
    """Every program and every subcommand, from the parsers themselves."""
    for script, build in PARSERS.items():
        parser = build()
        yield Program(script, parser, DOCS[script])
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for command, sub in action.choices.items():
                    yield Program(f"{script} {command}", sub, DOCS[script])


PROGRAMS = list(programs())


def test_every_console_script_has_its_parser_and_document() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == set(PARSERS) == set(DOCS), (
        f"pyproject's console scripts {sorted(scripts)} and this test's PARSERS/DOCS differ: "
        "add the new program's parser and document here")


def flag_table(program: Program) -> Table:
    where = f"{program.doc}, section {program.heading!r}"
    return table_with(section(program.doc, program.heading), "flag", "default", where=where)


def documented_flags(table: Table) -> dict[str, str]:
    """Each flag of the table and its row's default cell."""
    found: dict[str, str] = {}
    for row in table.rows:
        for code in inline_code(row[0]):
            for flag in _FLAG.findall(code):
                found[flag] = row[1]
    return found


def default_spellings(action: argparse.Action) -> list[str] | None:
    """How a document may write the default of ``action``; None: any words (no value)."""
    value = action.default
    if value is None or value is False or value == argparse.SUPPRESS or value == []:
        return None
    if value is True:
        return ["on", "true", "yes"]
    if isinstance(value, int):
        return [str(value), f"{value:,}"]
    if isinstance(value, float):
        return [repr(value)] + ([str(int(value))] if value.is_integer() else [])
    return [str(value)]


def says(cell: str, spellings: list[str]) -> bool:
    text = cell.replace("`", "")
    return any(re.search(rf"(?<![\w.,]){re.escape(s)}(?![\w,]|\.\d|/\w)", text) for s in spellings)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_every_flag_of_the_parser_is_documented_with_its_default(program: Program) -> None:
    table = documented_flags(flag_table(program))
    problems = []
    for action in program.options():
        shown = "/".join(action.option_strings)
        missing = [flag for flag in action.option_strings if flag not in table]
        if missing:
            problems.append(f"{' and '.join(missing)} (of {shown}, default {action.default!r}) "
                            "is not in the table")
            continue
        spellings = default_spellings(action)
        cell = table[action.option_strings[0]]
        if not cell.strip(" -`"):
            problems.append(f"{shown}: the default cell is empty")
        elif action.default is None and re.fullmatch(r"[\d,.]+", cell.strip(" `")):
            problems.append(f"{shown}: the default cell says {cell!r}, but the parser has no "
                            "default value (say what happens without the flag)")
        elif spellings is not None and not says(cell, spellings):
            problems.append(f"{shown}: the default cell says {cell!r}, the parser's default is "
                            f"{action.default!r} (write {' or '.join(spellings)})")
    assert not problems, (f"{program.doc}, table under {program.heading!r}:\n  "
                          + "\n  ".join(problems))


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_every_documented_flag_is_in_the_parser(program: Program) -> None:
    known = {flag for action in program.parser._actions for flag in action.option_strings}
    extra = sorted(set(documented_flags(flag_table(program))) - known)
    assert not extra, (f"{program.doc}, table under {program.heading!r}, documents "
                       f"{', '.join(extra)}, which `{program.name}` does not have")


def readme_synopsis(command: str) -> str:
    """The README's one-line synopsis of ``seqgen COMMAND`` (inline code that starts so)."""
    for code in inline_code(section("README.md", "Client library and CLI")):
        if code.startswith(f"seqgen {command} "):
            return code
    raise AssertionError(f"README.md, section 'Client library and CLI', has no `seqgen {command} ...`")


@pytest.mark.parametrize("program", [p for p in PROGRAMS if p.name.startswith("seqgen ")],
                         ids=lambda p: p.name)
def test_the_readme_synopsis_of_each_subcommand_has_every_option(program: Program) -> None:
    synopsis = readme_synopsis(program.name.split()[1])
    shown = set(_FLAG.findall(synopsis))
    missing = [flag for action in program.options() for flag in action.option_strings
               if flag not in shown]
    assert not missing, (f"README.md's synopsis {synopsis!r} leaves out {', '.join(missing)} "
                         f"of `{program.name}`")


def test_every_exit_status_of_the_cli_is_documented() -> None:
    statuses = {value for name, value in vars(cli).items() if name.startswith("EXIT_")}
    table = table_with(section("docs/client.md", "The `seqgen` command"), "exit status", "meaning",
                       where="docs/client.md, section 'The `seqgen` command'")
    documented = {int(row[0]) for row in table.rows}
    assert documented == statuses, (f"docs/client.md's exit-status table lists {sorted(documented)}, "
                                    f"seqgen_client.cli has {sorted(statuses)}")
    readme = next(line for line in section("README.md", "Client library and CLI").split("- **")
                  if "Exit status" in line)
    missing = [s for s in sorted(statuses) if not re.search(rf"(?<![\w.]){s} ", readme)]
    assert not missing, f"README.md's CLI paragraph leaves out the exit statuses {missing}"


def code_table(doc: str, heading: str) -> dict[str, str]:
    """code -> condition, from the ``code | when`` table under ``heading``."""
    table = table_with(section(doc, heading), "code", "when", where=f"{doc}, section {heading!r}")
    rows = {}
    for row in table.rows:
        codes = inline_code(row[0])
        assert len(codes) == 1, f"{doc}, {heading!r}: a row's code cell {row[0]!r} is not one `CODE`"
        rows[codes[0]] = row[1]
    return rows


@pytest.mark.parametrize(("enum", "heading"), [
    (ErrorCode, "Replies and error codes"),
    (ControlCode, "Control error codes"),
], ids=["public", "control"])
def test_every_error_code_is_documented_with_its_condition(
        enum: type[ErrorCode] | type[ControlCode], heading: str) -> None:
    documented = code_table("docs/protocol.md", heading)
    missing = [code.value for code in enum if code.value not in documented]
    assert not missing, f"docs/protocol.md, table under {heading!r}, lacks {', '.join(missing)}"
    unknown = sorted(set(documented) - {code.value for code in enum})
    assert not unknown, (f"docs/protocol.md, table under {heading!r}, documents {unknown}, "
                         f"which {enum.__name__} does not have")
    empty = [code for code, when in documented.items() if len(when.split()) < 3]
    assert not empty, f"docs/protocol.md, {heading!r}: no condition for {', '.join(empty)}"


class _PytestOptions:
    """Collects the option names a conftest's ``pytest_addoption`` registers."""

    def __init__(self) -> None:
        self.flags: set[str] = set()

    def getgroup(self, *args: object, **kwargs: object) -> _PytestOptions:
        return self

    def addoption(self, *names: str, **kwargs: object) -> None:
        self.flags.update(names)


EXTERNAL_FLAGS = {
    "--test": "node --test (the Node.js client's suite)",
    "--offline": "systemd-analyze security --offline=yes (docs/operations.md, systemd)",
    "--replicas": "kubectl scale --replicas (docs/operations.md, Kubernetes)",
    "--cacert": "curl --cacert (the admin over TLS)",
    "--cert": "curl --cert (the admin over mutual TLS)",
    "--key": "curl --key (the admin over mutual TLS)",
}
"""Flags of other tools that the documents name in inline code."""


def every_known_flag() -> set[str]:
    """The flags of seqgen's programs, of the benchmark programs (from their --help) and of
    the test suite's pytest options."""
    known = {flag for p in PROGRAMS for a in p.parser._actions for flag in a.option_strings}
    for module in sorted((ROOT / "benchmarks").glob("*.py")):
        if "ArgumentParser(" in module.read_text():
            done = subprocess.run([sys.executable, "-m", f"benchmarks.{module.stem}", "--help"],
                                  capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
            assert done.returncode == 0, f"benchmarks.{module.stem} --help fails:\n{done.stderr}"
            known.update(_FLAG.findall(done.stdout))
    options = _PytestOptions()
    for conftest in ROOT.glob("tests/**/conftest.py"):
        module = importlib.import_module(".".join(conftest.relative_to(ROOT).with_suffix("").parts))
        if hasattr(module, "pytest_addoption"):
            module.pytest_addoption(options)
    return known | options.flags | set(EXTERNAL_FLAGS)


def test_every_flag_a_document_names_exists() -> None:
    """A flag in inline code anywhere in the documents is one that some program has."""
    known = every_known_flag()
    documents = [ROOT / "README.md", ROOT / "SECURITY.md", ROOT / "benchmarks" / "README.md",
                 *sorted((ROOT / "docs").glob("*.md"))]
    unknown = [f"{path.relative_to(ROOT)}: {flag} (in `{code}`)"
               for path in documents for code in inline_code(path.read_text(encoding="utf-8"))
               for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", code) if flag not in known]
    assert not unknown, "documented flags that no program has:\n  " + "\n  ".join(unknown)


def test_the_readme_lists_every_public_error_code() -> None:
    paragraph = next(p for p in read("README.md").split("\n\n") if p.startswith("Error codes:"))
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in paragraph]
    assert not missing, f"README.md's 'Error codes:' paragraph leaves out {', '.join(missing)}"


def test_protocol_md_lists_every_counter_of_the_status() -> None:
    paragraph = next(p for p in section("docs/protocol.md", "Control protocol").split("\n\n")
                     if p.startswith("`counters`"))
    missing = [name for name in Counters.__struct_fields__ if f"`{name}`" not in paragraph]
    assert not missing, f"docs/protocol.md's `counters` paragraph leaves out {', '.join(missing)}"


BOUNDS: dict[str, int] = {
    "public socket, replies queued per connection": PUBLIC.options[zmq.SNDHWM],
    "outbox of a server or proxy, replies in all": OUTBOX_LIMIT,
    "public socket, requests queued per connection": PUBLIC.options[zmq.RCVHWM],
    "one frame": MAX_FRAME_BYTES,
    "control socket, reply size at the admin": MAX_CONTROL_REPLY_BYTES,
    "admin, HTTP request body": MAX_BODY_BYTES,
    "admin, connections at once": MAX_CONNECTIONS,
    "admin, idle connections (no request being answered)": MAX_IDLE_CONNECTIONS,
    "server, slow control requests in hand": MAX_TASKS,
}
"""The bounds of docs/protocol.md's table that are constants of the code, not flags."""
_UNITS = {"": 1, "KiB": 1024, "MiB": 1024 * 1024}


def test_the_bounds_table_quotes_the_code() -> None:
    """Each bound is a constant of the code or a flag's default (``--flag`` (N)), as written."""
    table = table_with(section("docs/protocol.md", "Bounds"), "where", "bound",
                       where="docs/protocol.md, section 'Bounds'")
    defaults = {flag: a.default for p in PROGRAMS for a in p.options() for flag in a.option_strings}
    problems = []
    for where, bound, *_ in table.rows:
        flag = re.search(r"`(--[\w-]+)` \(([\d,]+)\)", bound)
        amount = re.fullmatch(r"([\d,]+) ?(KiB|MiB)?", bound.strip())
        if flag:
            if defaults.get(flag.group(1)) != int(flag.group(2).replace(",", "")):
                problems.append(f"{where!r}: {bound!r}, but {flag.group(1)} defaults to "
                                f"{defaults.get(flag.group(1))!r}")
        elif amount:
            value = int(amount.group(1).replace(",", "")) * _UNITS[amount.group(2) or ""]
            if where not in BOUNDS:
                problems.append(f"{where!r}: {bound!r} is a number this test does not know: add "
                                "the constant it quotes to BOUNDS")
            elif BOUNDS[where] != value:
                problems.append(f"{where!r}: {bound!r} ({value}), the code says {BOUNDS[where]}")
    missing = set(BOUNDS) - {row[0] for row in table.rows}
    assert not problems and not missing, ("docs/protocol.md, 'Bounds':\n  "
                                          + "\n  ".join([*problems, *sorted(missing)]))


@pytest.mark.parametrize("client", [Client, AsyncClient], ids=lambda c: c.__name__)
def test_the_client_signature_in_client_md_is_the_code_s(client: type) -> None:
    """docs/client.md's ``Client(endpoints, *, ...)`` block: every option with its default."""
    text = section("docs/client.md", "Failover and timeouts")
    block = re.search(r"```python\n(Client\(.*?\))\n```", text, re.DOTALL)
    assert block, "docs/client.md, 'Failover and timeouts', has no ```python Client(...)``` block"
    signature = ast.parse(f"def f{block.group(1).removeprefix('Client')}: pass").body[0]
    assert isinstance(signature, ast.FunctionDef)
    arguments = signature.args
    documented = {a.arg: ast.literal_eval(d) if d is not None else inspect.Parameter.empty
                  for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)}
    actual = {name: p.default for name, p in inspect.signature(client).parameters.items()
              if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert documented == actual, (f"docs/client.md's signature says {documented}; "
                                  f"{client.__name__} takes {actual}")
