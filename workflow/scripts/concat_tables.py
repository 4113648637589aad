"""Snakemake adapter: one table from the per-job Parquet files."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import concat_tables, run_logged

run_logged(
    concat_tables, snakemake.log[0], files=list(snakemake.params.files), output=snakemake.output[0]
)
