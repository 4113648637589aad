"""Snakemake adapter: one runs table over the whole zoo."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import aggregate_runs, run_logged

run_logged(
    aggregate_runs,
    snakemake.log[0],
    run_files=list(snakemake.params.files),
    parquet_out=snakemake.output.parquet,
    csv_out=snakemake.output.csv,
)
