"""results/claims.md: the verdict table first, the vocabulary, then every test of each claim."""

from __future__ import annotations

import json

import polars as pl

from weightzoo.analysis.claim_settings import ClaimSettings
from weightzoo.analysis.ladder import VERDICTS
from weightzoo.analysis.rows import CLAIMS
from weightzoo.markdown import md_table

# The columns of claims.md: its verdict table, and each claim's table of tests.
PAGE_VERDICT_COLUMNS = ["claim", "within", "dataset", "family", "verdict", "statistic", "direction",
                        "estimate", "ci_low", "ci_high", "q_value", "cells / runs",
                        "beyond_size", "beyond_init", "consistent", "detail"]  # fmt: skip
PAGE_TEST_COLUMNS = ["within", "dataset", "family", "target", "statistic", "test", "role",
                     "n_cells", "n_runs", "estimate", "ci_low", "ci_high", "p_value", "q_value",
                     "supported", "run_estimate", "run_p_value", "note"]  # fmt: skip


def claims_markdown(
    claims: pl.DataFrame,
    verdict_table: pl.DataFrame,
    *,
    rule: str,
    settings: ClaimSettings,
    counts: dict,
) -> str:
    """results/claims.md: the one verdict table first, the vocabulary, then every test."""
    cells_runs = pl.format("{} / {}", "n_cells", "n_runs").alias("cells / runs")
    vocabulary = "; ".join(f"**{k}**: {v}" for k, v in VERDICTS.items())
    lines = [
        "# The paper's claims, tested",
        "",
        f"Zoo: {json.dumps(counts)}. Groups: {rule}. Unit of inference: the architecture "
        "cell (its seeds' mean); permutations and bootstraps move whole cells; pooled rows "
        "(`all`) weight each dataset × family by its cells and never mix cells across them. "
        f"α = {settings.alpha}, {settings.n_perm} permutations, {settings.n_boot} bootstrap "
        "draws, Benjamini–Hochberg q within each claim and test.",
        "",
        "## Verdicts",
        "",
        *_table(verdict_table.with_columns(cells_runs), PAGE_VERDICT_COLUMNS),
        "",
        f"Verdicts: {vocabulary}. Claim 1's headline is its strongest statistic; `detail` "
        "lists each as ρ (cells), given size, relative to epoch 0 given size (* q < α) and, "
        "pooled, the significant directions per family / dataset (· none, ± both). Claim 2's "
        "headline is the seed dispersion of w (expected −: better architectures, less seed "
        "spread).",
        "",
    ]
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
