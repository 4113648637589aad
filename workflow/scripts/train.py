"""Snakemake adapter: train one block of seeds of one architecture on one dataset."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import run_logged, train_job

run_logged(
    train_job,
    snakemake.log[0],
    data_path=snakemake.input.data,
    unit={  # the cell (weightzoo.config.cell_params) and its seeds, on one dataset
        "dataset": snakemake.wildcards.dataset,
        "arch": snakemake.wildcards.arch,
        **snakemake.params.job,
    },
    outputs={
        "weights_out": snakemake.output.weights,
        "metrics_out": snakemake.output.metrics,
        "runs_out": snakemake.output.runs,
        "resume_dir": snakemake.params.resume,
    },
    device=snakemake.params.device,
    threads=snakemake.threads,
    vectorise=snakemake.params.vectorise,
)
