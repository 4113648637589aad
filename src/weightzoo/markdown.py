"""Table cells and Markdown tables for every page the library writes: claims.md,
prediction.md and the dashboard's HTML cells share one number formatter and one renderer."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

MISSING = "–"  # a cell with no number: null, NaN or infinite


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of a Markdown table: the header, the rule, one line per row. Each cell goes
    through `fmt` (text stays as it is) with "|" escaped, so a note cannot split a cell."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |")
    return lines


def fmt(value: object, digits: int = 3) -> str:
    """One table cell: floats to `digits` significant digits, null / NaN / inf as "–",
    booleans as yes / no, anything else as its text."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def finite(value: float | None) -> float | None:
    """The value as a float, None where it is missing, NaN or infinite (a table's null)."""
    return float(value) if value is not None and math.isfinite(value) else None


def replace_between(text: str, start: str, end: str, section: str) -> str:
    """`text` with what lies between the markers `start` and `end` replaced by `section`
    (a generated part of a hand-written page, e.g. the README's)."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"the markers {start!r} … {end!r} are missing")
    return f"{text[: i + len(start)]}\n{section.strip()}\n{text[j:]}"
