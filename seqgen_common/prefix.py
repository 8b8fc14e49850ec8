"""Name ranges for paging by prefix in SQLite (the server's store, the admin's witness record)."""

from __future__ import annotations

__all__ = ["after_prefix", "name_range"]


def after_prefix(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``; None when there is none.

    Trailing U+10FFFF (the largest code point) cannot be incremented: drop them
    and increment what comes before. Surrogates cannot be stored: skip them.
    """
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return None  # "" or only U+10FFFF: every string >= prefix starts with it
    following = ord(stem[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:
        following = 0xE000
    return stem[:-1] + chr(following)


def name_range(prefix: str, after: str | None) -> tuple[str, list[object]]:
    """SQL conditions on a ``name`` column (and their arguments): names that start with
    ``prefix`` and sort after ``after``. SQLite's BINARY collation compares UTF-8 bytes,
    the order of Python's str."""
    conditions = "name >= ?"
    args: list[object] = [prefix]
    bound = after_prefix(prefix)
    if bound is not None:
        conditions += " AND name < ?"
        args.append(bound)
    if after is not None:
        conditions += " AND name > ?"
        args.append(after)
    return conditions, args
