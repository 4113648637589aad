"""One claim test as a typed record, `ClaimTest`, and the claims table made of them.

A record is built once with every field it has; the decision step (q-values, significant,
supported) returns new records (`dataclasses.replace`), never edits one in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from weightzoo.tables import WEIGHT_POOL

CLAIMS = {
    1: "Weight statistics correlate with performance",
    2: "Successful networks resemble each other in weight statistics and distribution; "
    "poor ones scatter",
    3: "MLP, CNN and ViT parameters show similar learning characteristics",
}
EXPECTED_SIGN = {1: 0, 2: -1}  # claim 2: better cells, less seed spread; claim 1: any sign
MINUS = "−"

CLAIMS_SCHEMA = {
    "claim": pl.Int32, "claim_text": pl.String, "within": pl.String, "dataset": pl.String,
    "family": pl.String,
    "scope": pl.String, "target": pl.String, "statistic": pl.String, "test": pl.String,
    "role": pl.String, "unit": pl.String, "n_cells": pl.Int64, "n_runs": pl.Int64,
    "n_a": pl.Int64, "n_b": pl.Int64, "estimate": pl.Float64, "ci_low": pl.Float64,
    "ci_high": pl.Float64, "p_value": pl.Float64, "q_value": pl.Float64,
    "significant": pl.Boolean, "supported": pl.Boolean, "direction": pl.String,
    "run_estimate": pl.Float64, "run_p_value": pl.Float64, "note": pl.String,
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ClaimTest:
    """One test of one claim on one subset (a row of the claims table, `CLAIMS_SCHEMA`).

    `within`: whether cells are compared within a family or within an architecture;
    `test` "none": no test (the note says why). Unset numbers are the table's nulls.
    """

    claim: int
    within: str
    dataset: str
    family: str
    test: str
    scope: str = WEIGHT_POOL
    target: str = "w"
    statistic: str | None = None
    role: str = "primary"
    unit: str = "architecture"
    n_cells: int | None = None
    n_runs: int | None = None
    n_a: int | None = None  # between-architecture test: optimal cells
    n_b: int | None = None  # ... and suboptimal cells
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    q_value: float | None = None
    significant: bool | None = None
    supported: bool | None = None
    direction: str | None = None
    run_estimate: float | None = None  # the run-level reading (runs as independent samples)
    run_p_value: float | None = None
    note: str = ""

    @property
    def claim_text(self) -> str:
        return CLAIMS[self.claim]

    @property
    def expected_sign(self) -> int:
        """The sign that supports the claim (0: either); between architectures, optimal
        cells closer together (a log ratio below 0)."""
        return -1 if self.test == "between_w1_cells" else EXPECTED_SIGN.get(self.claim, 0)

    def record(self) -> dict:
        """The row of the claims table."""
        return {"claim_text": self.claim_text, **asdict(self)}


def claims_table(rows: Sequence[ClaimTest]) -> pl.DataFrame:
    """The claims table (`CLAIMS_SCHEMA`), one row per test, rows in a fixed order."""
    records = [r.record() for r in rows]
    return pl.DataFrame(records, schema=CLAIMS_SCHEMA).sort("claim", maintain_order=True)


def sign(v: float | None) -> str | None:
    """The direction of an estimate: "+", "−" or "0" (None when missing or not finite)."""
    if v is None or not np.isfinite(v):
        return None
    return "+" if v > 0 else MINUS if v < 0 else "0"


def join_notes(*notes: str) -> str:
    """Notes joined with "; ", empty ones left out."""
    return "; ".join(n for n in notes if n)
