"""Snakemake adapter: fetch or verify the raw files of one torchvision dataset."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import download_dataset, run_logged

run_logged(
    download_dataset,
    snakemake.log[0],
    name=snakemake.wildcards.dataset,
    folder=snakemake.params.folder,
    download=snakemake.params.download,
    timeout_s=snakemake.params.timeout_s,
    retries=snakemake.params.retries,
    mirror=snakemake.params.mirror,
    manifest_out=snakemake.output.manifest,
)
