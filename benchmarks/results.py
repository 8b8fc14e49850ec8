"""Samples, rows and targets of the benchmark, and the table they print as.

A ``Row`` is one scenario: samples of seqgen and of its floor (measured
alternately), the targets it is held to, and notes. Ratios are taken between
medians. The table is Markdown, so a run can be pasted into benchmarks/README.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NOT_IMPLEMENTED", "Row", "Sample", "Target", "markdown_table"]

NOT_IMPLEMENTED = "n/a (not implemented)"


@dataclass
class Sample:
    """One measurement of one side."""

    rate: float
    """Numbers per second (calls per second in the client scenarios)."""
    cpu_us: float | None
    """CPU µs of the process under test per request it answered (per call for clients)."""
    answered: int
    unanswered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass
class Target:
    """``measure(row)`` compared with ``limit``; ``measure`` returns None when not measurable."""

    label: str
    limit: float
    at_most: bool
    measure: Callable[[Row], float | None]
    unavailable: str = NOT_IMPLEMENTED
    """What to print when ``measure`` gives None."""

    def value(self, row: Row) -> float | None:
        return self.measure(row)

    def verdict(self, row: Row) -> str:
        value = self.measure(row)
        if value is None:
            return self.unavailable
        met = value <= self.limit if self.at_most else value >= self.limit
        return "ok" if met else "MISSED"

    def describe(self, row: Row) -> str:
        value = self.measure(row)
        shown = "" if value is None else f" ({value:,.2f})"
        return f"{self.label} {'<=' if self.at_most else '>='} {self.limit:g}: {self.verdict(row)}{shown}"


def cpu_ratio(row: Row) -> float | None:
    ours, theirs = row.median("cpu_us", "seqgen"), row.median("cpu_us", "floor")
    return ours / theirs if ours is not None and theirs else None


def rate_ratio(row: Row) -> float | None:
    ours, theirs = row.median("rate", "seqgen"), row.median("rate", "floor")
    return ours / theirs if ours is not None and theirs else None


@dataclass
class Row:
    name: str
    title: str
    process: str
    """The process under test, whose CPU is counted."""
    floor_title: str | None
    unit: str = "numbers/s"
    seqgen: list[Sample] = field(default_factory=list)
    floor: list[Sample] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def samples(self, side: str) -> list[Sample]:
        return self.seqgen if side == "seqgen" else self.floor

    def values(self, key: str, side: str = "seqgen") -> list[float]:
        out: list[float] = []
        for sample in self.samples(side):
            value = getattr(sample, key) if key in ("rate", "cpu_us") else sample.extra.get(key)
            if value is not None:
                out.append(float(value))
        return out

    def median(self, key: str, side: str = "seqgen") -> float | None:
        return median(self.values(key, side))

    @property
    def cpu_ratio(self) -> float | None:
        return cpu_ratio(self)

    @property
    def rate_ratio(self) -> float | None:
        return rate_ratio(self)

    def to_json(self) -> dict[str, Any]:
        def side(samples: list[Sample]) -> list[dict[str, Any]]:
            return [vars(s) for s in samples]

        return {
            "name": self.name, "title": self.title, "process": self.process, "floor": self.floor_title,
            "unit": self.unit, "seqgen_samples": side(self.seqgen), "floor_samples": side(self.floor),
            "rate": {"seqgen": self.median("rate"), "floor": self.median("rate", "floor"),
                     "ratio": self.rate_ratio},
            "cpu_us": {"seqgen": self.median("cpu_us"), "floor": self.median("cpu_us", "floor"),
                       "ratio": self.cpu_ratio},
            "targets": [{"label": t.label, "limit": t.limit, "at_most": t.at_most, "value": t.value(self),
                         "verdict": t.verdict(self)} for t in self.targets],
            "notes": self.notes,
        }


def _spread(values: list[float], digits: int) -> str:
    if not values:
        return "—"
    mid = statistics.median(values)
    if len(values) == 1:
        return f"{mid:,.{digits}f}"
    return f"{mid:,.{digits}f} ({min(values):,.{digits}f}..{max(values):,.{digits}f})"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def markdown_table(rows: list[Row]) -> str:
    """The results as a Markdown table: medians (min..max), ratios, targets."""
    lines = [
        "| scenario | seqgen /s | floor /s | ratio | seqgen CPU µs/req | floor CPU µs/req | CPU ratio "
        "| target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        targets = "; ".join(t.describe(row) for t in row.targets) or "—"
        lines.append(
            f"| {row.name}: {row.title} | {_spread(row.values('rate'), 0)} "
            f"| {_spread(row.values('rate', 'floor'), 0)} | {_ratio(row.rate_ratio)} "
            f"| {_spread(row.values('cpu_us'), 1)} | {_spread(row.values('cpu_us', 'floor'), 1)} "
            f"| {_ratio(row.cpu_ratio)} | {targets} |"
        )
    return "\n".join(lines)
