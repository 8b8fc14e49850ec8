"""Reading the project's Markdown as data: sections, tables and inline code.

The documentation tests compare what the documents say with what the programs do;
this is the little they need to find a section by its heading and read its tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_CODE = re.compile(r"`([^`\n]+)`")


def read(relative: str) -> str:
    path = ROOT / relative
    assert path.is_file(), f"{relative} does not exist"
    return path.read_text(encoding="utf-8")


def without_fences(text: str) -> str:
    """The text with its fenced code blocks blanked to spaces (so offsets hold)."""
    return _FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def section(relative: str, heading: str) -> str:
    """The text under the heading ``heading`` (exact, backticks included) of a document,
    up to the next heading of the same or a higher level. AssertionError naming the
    document and the heading when there is none."""
    text = read(relative)
    plain = without_fences(text)
    for match in _HEADING.finditer(plain):
        if match.group(2) == heading:
            level = len(match.group(1))
            end = len(text)
            for later in _HEADING.finditer(plain, match.end()):
                if len(later.group(1)) <= level:
                    end = later.start()
                    break
            return text[match.end():end]
    raise AssertionError(f"{relative} has no heading {heading!r}")


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def column(self, name: str) -> int:
        return self.header.index(name)


def _cells(line: str) -> tuple[str, ...]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") else body
    # A "|" inside inline code is text, not a column separator.
    cells, current, in_code = [], "", False
    for char in body:
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(current.strip())
            current = ""
        else:
            current += char
    cells.append(current.strip())
    return tuple(cells)


def tables(text: str) -> list[Table]:
    """Every pipe table of ``text`` (outside fenced code), in order."""
    found: list[Table] = []
    lines = without_fences(text).splitlines()
    i = 0
    while i < len(lines) - 1:
        if lines[i].lstrip().startswith("|") and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[i + 1]) \
                and "-" in lines[i + 1]:
            header = tuple(cell.lower() for cell in _cells(lines[i]))
            rows = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            found.append(Table(header, tuple(rows)))
        else:
            i += 1
    return found


def table_with(text: str, *columns: str, where: str = "") -> Table:
    """The first table of ``text`` whose header starts with ``columns``."""
    for table in tables(text):
        if table.header[:len(columns)] == columns:
            return table
    raise AssertionError(f"{where} has no table with the columns {' | '.join(columns)}")


def inline_code(text: str) -> list[str]:
    """The contents of every `inline code` span of ``text`` (outside fenced code)."""
    return _CODE.findall(without_fences(text))
