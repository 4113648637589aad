"""Snakemake adapter: test accuracy predicted from the weights."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import predict_job, run_logged

run_logged(
    predict_job,
    snakemake.log[0],
    runs_path=snakemake.input.runs,
    stats_path=snakemake.input.stats,
    prediction_cfg=snakemake.params.prediction,
    threads=snakemake.threads,
    table_out=snakemake.output.table,
    oof_out=snakemake.output.oof,
    md_out=snakemake.output.md,
)
