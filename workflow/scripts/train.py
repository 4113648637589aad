"""Snakemake adapter: train one block of seeds of one architecture on one dataset."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import run_logged, train_job

run_logged(
    train_job,
    snakemake.log[0],
    data_path=snakemake.input.data,
    dataset=snakemake.wildcards.dataset,
    family=snakemake.params.family,
    arch=snakemake.wildcards.arch,
    arch_params=snakemake.params.arch,
    train=snakemake.params.train,
    seeds=snakemake.params.seeds,
    dump_epochs=snakemake.params.dump_epochs,
    device=snakemake.params.device,
    threads=snakemake.threads,
    weights_out=snakemake.output.weights,
    metrics_out=snakemake.output.metrics,
    runs_out=snakemake.output.runs,
    resume_dir=snakemake.params.resume,
    vectorise=snakemake.params.vectorise,
)
