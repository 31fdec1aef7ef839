"""What a benchmark hands back (rows of figures, its goal, notes), the printed table and the JSON."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class Row:
    measure: str
    value: float | None
    unit: str = ""
    baseline: float | None = None  # measured in the same run, unless the note says otherwise
    baseline_label: str = ""
    ratio: float | None = None  # value / baseline (or as the benchmark defines it; see the note)
    note: str = ""
    # Figures measured beside the value, by name (bench 10: the page's SQL time on the server, this
    # process's CPU time, the load average): in the JSON, not in the table.
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    goal: str = ""
    goal_met: bool | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (p50, p99) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return value / baseline


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def table(results: list[Result]) -> str:
    """A Markdown table: pastes into the README as it is."""
    lines = [
        "| benchmark | measure | value | baseline (same run) | ratio | goal |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        goal = result.goal
        if result.goal_met is not None:
            goal += " — " + ("met" if result.goal_met else "not met")
        if result.error:
            lines.append(f"| {result.title} | error | - | - | - | {result.error[:120]} |")
            continue
        for index, row in enumerate(result.rows):
            baseline = "-"
            if row.baseline is not None:
                baseline = f"{_fmt(row.baseline)} {row.unit} {row.baseline_label}".strip()
            value = "-" if row.value is None else f"{_fmt(row.value)} {row.unit}".strip()
            measure = row.measure + (f" ({row.note})" if row.note else "")
            lines.append(
                f"| {result.title if index == 0 else ''} | {measure} | {value} | {baseline} | "
                f"{'-' if row.ratio is None else _fmt(row.ratio) + 'x'} | {goal if index == 0 else ''} |"
            )
    return "\n".join(lines)


def write_json(path: Path, results: list[Result], *, meta: dict[str, Any]) -> None:
    document = {
        "generated_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": _cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        **meta,
        "results": [asdict(result) for result in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def _cpu_count() -> int | None:
    return os.cpu_count()
