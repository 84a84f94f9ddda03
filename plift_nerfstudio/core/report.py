"""Numbers and tables as people read them: one formatter (``n/a`` for a missing value), Markdown tables for the
results files, and the same tables printed with rich."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, List, Optional, Sequence

from rich.console import Console
from rich.table import Table

MISSING = "n/a"
"""What a table shows where a value does not exist (a metric without ground truth, an edit left out)."""


def fmt(value: Any, digits: int = 2) -> str:
    """A value for a table: a number with ``digits`` decimals (``inf`` for infinity), ``n/a`` for None, anything else
    as ``str`` does."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    """Lines of a Markdown table (cells that are not strings go through :func:`fmt`)."""
    cells = [[cell if isinstance(cell, str) else fmt(cell) for cell in row] for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in cells]


def print_markdown_table(console: Console, title: str, lines: Sequence[str]) -> None:
    """Print the Markdown table ``lines`` (header, separator, rows) as a rich table."""
    header = [c.strip() for c in lines[0].strip().strip("|").split("|")]
    table = Table(title=title)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right")
    for line in lines[2:]:
        table.add_row(*[c.strip() for c in line.strip().strip("|").split("|")])
    console.print(table)


def write_results(folder: Path, results: Any, markdown: Optional[Sequence[str]] = None) -> None:
    """``results.json`` (and ``results.md`` from ``markdown`` lines) in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2, default=str))
    if markdown is not None:
        (folder / "results.md").write_text("\n".join(markdown) + "\n")
