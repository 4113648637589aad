"""Snakemake adapter: statistics of one training job's weight dumps."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import run_logged, stats_job

run_logged(
    stats_job,
    snakemake.log[0],
    weights_path=snakemake.input.weights,
    **snakemake.params.job,  # family, in_shape
    hist=snakemake.params.hist,
    spectral=snakemake.params.spectral,
    stats_out=snakemake.output.stats,
    maps_out=snakemake.output.maps,
)
