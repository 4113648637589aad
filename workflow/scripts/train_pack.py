"""Snakemake adapter: train a pack of blocks of seeds of one dataset in one process."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import run_logged, train_pack_job

run_logged(
    train_pack_job,
    snakemake.log[0],
    data_path=snakemake.input.data,
    units=snakemake.params.units,
    device=snakemake.params.device,
    threads=snakemake.threads,
    vectorise=snakemake.params.vectorise,
)
