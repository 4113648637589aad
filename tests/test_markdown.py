"""The one table-cell formatter and Markdown renderer of claims.md, prediction.md and the
dashboard."""

from __future__ import annotations

import math

from weightzoo.markdown import finite, fmt, md_table


def test_cells_format_numbers_missing_values_and_booleans():
    assert fmt(0.123456) == "0.123" and fmt(1234.5) == "1.23e+03" and fmt(2 / 3, 2) == "0.67"
    assert fmt(None) == fmt(math.nan) == fmt(-math.inf) == "–"
    assert (fmt(True), fmt(False)) == ("yes", "no")
    assert (fmt(7), fmt("mlp vs cnn")) == ("7", "mlp vs cnn")


def test_finite_turns_nan_and_inf_into_missing():
    assert finite(0.5) == 0.5 and finite(3) == 3.0
    assert finite(None) is None and finite(math.nan) is None and finite(math.inf) is None


def test_markdown_table_formats_every_cell_and_escapes_pipes():
    lines = md_table(["stat", "rho", "ok", "note"], [["mean", -0.51234, True, "a | b"]])
    assert lines == [
        "| stat | rho | ok | note |",
        "|---|---|---|---|",
        "| mean | -0.512 | yes | a \\| b |",
    ]
    assert md_table(["a"], []) == ["| a |", "|---|"]
