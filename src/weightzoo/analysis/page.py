"""results/claims.md: the generated bottom line, the legend, the verdicts of each level, then
every test of each claim."""

from __future__ import annotations

import polars as pl

from weightzoo.analysis.claim_settings import ClaimSettings
from weightzoo.analysis.ladder import VERDICTS
from weightzoo.analysis.rows import CLAIMS
from weightzoo.markdown import md_table

# The columns of claims.md: its verdict table, and each claim's table of tests.
PAGE_VERDICT_COLUMNS = ["claim", "within", "dataset", "family", "verdict", "statistic", "direction",
                        "estimate", "ci_low", "ci_high", "q_value", "cells / runs",
                        "size_partial", "size_ci_low", "size_ci_high", "raw_minus_partial",
                        "raw_minus_partial_low", "raw_minus_partial_high", "detectable",
                        "equivalence", "cells_needed", "beyond_size", "beyond_init",
                        "consistent", "exploratory", "detail"]  # fmt: skip
PAGE_TEST_COLUMNS = ["within", "dataset", "family", "target", "statistic", "test", "role",
                     "declared", "n_cells", "n_runs", "estimate", "ci_low", "ci_high", "p_value",
                     "q_value", "supported", "difference", "difference_ci_low",
                     "difference_ci_high", "detectable", "equivalence_low", "equivalence_high",
                     "negligible", "cells_needed", "run_estimate", "run_p_value",
                     "note"]  # fmt: skip


def claims_markdown(
    claims: pl.DataFrame,
    verdict_table: pl.DataFrame,
    *,
    rule: str,
    settings: ClaimSettings,
    zoo: str,
) -> str:
    """results/claims.md: the generated bottom line (with the zoo in a sentence), how the
    claims were tested, the legend, the verdicts of each level in a table of their own, then
    every test."""
    from weightzoo.bottom_line import findings, levels, to_markdown

    cells_runs = pl.format("{} / {}", "n_cells", "n_runs").alias("cells / runs")
    columns = [c for c in PAGE_VERDICT_COLUMNS if c != "within"]
    lines = [
        "# The paper's claims, tested",
        "",
        "## Bottom line",
        "",
        to_markdown(findings(verdict_table), zoo).strip(),
        "",
        "## How they were tested",
        "",
        f"Groups: {rule}. Unit of inference: the architecture "
        "cell (its seeds' mean); permutations and bootstraps move whole cells; pooled rows "
        "(`all`) weight each dataset × family by its cells and never mix cells across them. "
        f"α = {settings.alpha}, {settings.n_perm} permutations (Freedman–Lane for partials), "
        f"{settings.n_boot} bootstrap draws, Benjamini–Hochberg q within each claim and test. "
        f"Declared before the data (analysis.primary): claim 1 `{settings.primary_statistic}`, "
        f"claim 2 the seed W1 of `{settings.primary_target}`. Equivalence bounds "
        f"(analysis.equivalence): a control is negligible when its 90 % interval lies inside "
        f"±{settings.correlation_bound:g}; claim 3's shape within ±{settings.shape_bound:g} "
        f"of training, size within [1/{settings.size_bound:g}, {settings.size_bound:g}]. "
        "How to read this page, and how often each verdict is wrong on simulated zoos: "
        "docs/claims.md.",
        "",
        "## Verdicts",
        "",
        "What each verdict means:",
        "",
        *(f"- **{k}**: {v}" for k, v in VERDICTS.items()),
        "",
        "Each verdict is the declared statistic's; `size_partial` "
        "(with its bootstrap CI), `raw_minus_partial` (same resamples of cells), "
        "`detectable` (the smallest partial found with 80 % power at these cells) and "
        "`equivalence` (the TOST of the size partial) are its size control; `cells_needed`: "
        "cells at which the raw effect would be detectable. `exploratory`: the strongest of "
        "claim 1's statistics with its p adjusted for that choice (maxT). `detail` lists "
        "each statistic as ρ (cells), given size, relative to epoch 0 given size (* q < α) "
        "and, pooled, the significant directions per family / dataset (· none, ± both). "
        "Claim 2 expects −: better architectures, less seed spread.",
        "",
    ]
    for title, part in levels(verdict_table):
        if title:
            lines += [f"### {title}", ""]
        lines += [*_table(part.with_columns(cells_runs), columns), ""]
    for claim, text in CLAIMS.items():
        lines += [f"## Claim {claim}: {text}", ""]
        lines += [*_table(claims.filter(claim=claim), PAGE_TEST_COLUMNS), ""]
    lines.append(
        "run_estimate / run_p_value: the run-level reading (every run an independent "
        "sample) — secondary, never part of a verdict."
    )
    return "\n".join(lines) + "\n"


def _table(frame: pl.DataFrame, columns: list[str]) -> list[str]:
    """The frame's columns as a Markdown table, the verdict in bold."""
    rows = (
        [f"**{r[c]}**" if c == "verdict" else r[c] for c in columns]
        for r in frame.iter_rows(named=True)
    )
    return md_table(columns, rows)
