"""Snakemake adapter: statistics of every block of one training pack (config: pack.stats)."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import run_logged, stats_pack_job

run_logged(
    stats_pack_job,
    snakemake.log[0],
    weights_paths=list(snakemake.params.weights),
    **snakemake.params.job,  # family, in_shape
    hist=snakemake.params.hist,
    spectral=snakemake.params.spectral,
    stats_outs=list(snakemake.output.stats),
    maps_outs=list(snakemake.output.maps),
)
