"""Snakemake adapter: the offline dashboard results/index.html."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import dashboard_job, run_logged

run_logged(
    dashboard_job,
    snakemake.log[0],
    spec_files=list(snakemake.input.specs),
    claims_path=snakemake.input.claims,
    groups_path=snakemake.input.groups,
    prediction_path=snakemake.input.prediction,
    output=snakemake.output[0],
)
