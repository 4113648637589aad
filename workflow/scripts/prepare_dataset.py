"""Snakemake adapter: build the prepared form of one dataset."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import prepare_dataset, run_logged

run_logged(
    prepare_dataset,
    snakemake.log[0],
    name=snakemake.wildcards.dataset,
    source=snakemake.params.source,
    output=snakemake.output[0],
)
