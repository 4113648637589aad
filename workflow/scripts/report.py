"""Snakemake adapter: write the replication report from the run's tables."""

from pathlib import Path

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import run_logged
from weightzoo.report import write_report

run_logged(
    write_report,
    snakemake.log[0],
    runs=snakemake.input.runs,
    claims=snakemake.input.claims,
    final=snakemake.input.final,
    prediction=snakemake.input.prediction,
    figures=snakemake.input.figures,
    output=snakemake.output[0],
    results=Path(snakemake.output[0]).parent,  # results/: its benchmarks and folders
)
