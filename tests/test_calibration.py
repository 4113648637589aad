"""Simulated zoos: they hold the structure they promise, and their tables are written."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from weightzoo import calibration, controls


def test_simulated_zoo_has_the_planted_partial_and_the_size_loadings():
    rng = np.random.default_rng(0)
    x, y, c = calibration.simulate(1, 20000, -0.4, rng)
    # Spearman of Gaussian variables: (6 / pi) asin(r / 2); size loads -0.73 and +0.78
    spearman = 6 / math.pi * math.asin(-0.4 / 2)
    assert controls.partial_estimate(x, y, c)[0] == pytest.approx(spearman, abs=0.02)
    assert controls.partial_estimate(x, c, None)[0] == pytest.approx(
        6 / math.pi * math.asin(-0.73 / 2), abs=0.02
    )
    assert controls.partial_estimate(y, c, None)[0] == pytest.approx(
        6 / math.pi * math.asin(0.78 / 2), abs=0.02
    )
    assert ((y > 0) & (y < 1)).all()  # accuracies


def test_band_is_two_monte_carlo_standard_errors():
    # 0.05 +- 2 sqrt(0.05 * 0.95 / 500) = 0.05 +- 0.0195
    assert calibration.band(0.05, 500) == pytest.approx((0.0305, 0.0695), abs=1e-4)


def test_null_zoos_never_read_explained_by_size_at_19_cells_and_rarely_beyond_it():
    rates = calibration.verdict_rates(
        19, 0.0, zoos=400, n_perm=199, alpha=0.05, bound=0.2, rng=np.random.default_rng(2)
    )
    assert rates.zoos == 400 and rates.n == 19
    # at 19 cells the 90 % CI of a partial is wider than +-0.2: TOST cannot pass
    assert rates.negligible == 0.0 and rates.verdicts.get("explained by size", 0.0) == 0.0
    assert rates.verdicts.get("beyond size", 0.0) <= calibration.band(0.05, 400)[1]
    assert sum(rates.verdicts.values()) == pytest.approx(1.0)


def test_a_planted_partial_at_the_bound_is_rarely_called_negligible():
    # the equivalence test's type-I error: true partial 0.2 = the bound, 45 cells
    rates = calibration.verdict_rates(
        45, 0.2, zoos=400, n_perm=99, alpha=0.05, bound=0.2, rng=np.random.default_rng(3)
    )
    assert rates.negligible <= calibration.band(0.05, 400)[1]


def test_quick_calibration_section_is_written(tmp_path):
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/run.py"), "--quick", "--only", "calibration",
         "--output", str(out), "--workdir", str(tmp_path / "work")],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert "## (j) Calibration and power of the verdicts" in text
    rows = [line for line in text.splitlines() if line.startswith(("| 5 | 0.", "| 8 | 0."))]
    assert len(rows) == 8  # 2 cell counts x 4 true partials


def test_docs_page_holds_the_generated_calibration_block(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_calibration

    text = (ROOT / "docs" / "claims.md").read_text()
    block = bench_calibration.BLOCK.search(text).group(0)
    assert "| 19 | 0.0 |" in block and "maxT-adjusted" in block  # generated, not a stub
    page = tmp_path / "claims.md"
    page.write_text("intro\n<!-- calibration:start -->\nold\n<!-- calibration:end -->\nafter\n")
    bench_calibration.update_docs("new table\n", page)
    assert page.read_text() == (
        "intro\n<!-- calibration:start -->\nnew table\n\n<!-- calibration:end -->\nafter\n"
    )
