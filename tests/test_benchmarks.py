"""The benchmark suite runs (tiny sizes) and writes its tables; figures are not checked here."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.e2e  # the suite's runner in a fresh process, training included


def test_quick_benchmark_writes_the_seed_and_dump_tables(tmp_path):
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/run.py"),
            "--quick",
            "--repeats",
            "1",
            "--only",
            "seeds,dumps",
            "--output",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert "## (b) Seed-batched training" in text and "## (c) Weight-dump overhead" in text
    assert "--quick: tiny sizes, not for reporting" in text
    # a row per family in each table, each with a measured speed-up or cost
    for family in ("mlp", "cnn", "vit"):
        rows = [line for line in text.splitlines() if f"| {family} {{" in line]
        assert len(rows) == 2, (family, rows)
        assert rows[0].startswith("| CPU |") and re.search(r"\d+\.\d\d× \(", rows[0])
        assert re.search(r"[+-]\d+\.\d%", rows[1])


def test_unknown_section_is_named(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/run.py"),
            "--only",
            "nope",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "unknown section(s) ['nope']" in proc.stderr
