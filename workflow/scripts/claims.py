"""Snakemake adapter: test the paper's claims on the zoo."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import claims_job, run_logged

run_logged(
    claims_job,
    snakemake.log[0],
    runs_path=snakemake.input.runs,
    stats_path=snakemake.input.stats,
    analysis_cfg=snakemake.params.analysis,
    outputs=dict(snakemake.output.items()),
)
