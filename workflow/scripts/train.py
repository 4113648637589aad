"""Snakemake adapter: train one block of seeds of one architecture on one dataset."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import run_logged, train_job

run_logged(
    train_job,
    snakemake.log[0],
    data_path=snakemake.input.data,
    dataset=snakemake.wildcards.dataset,
    arch=snakemake.wildcards.arch,
    **snakemake.params.job,  # the cell (weightzoo.config.cell_params) and its seeds
    device=snakemake.params.device,
    threads=snakemake.threads,
    weights_out=snakemake.output.weights,
    metrics_out=snakemake.output.metrics,
    runs_out=snakemake.output.runs,
    resume_dir=snakemake.params.resume,
    vectorise=snakemake.params.vectorise,
)
