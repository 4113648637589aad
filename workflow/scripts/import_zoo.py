"""Snakemake adapter: import the runs of one job of a zoo trained elsewhere."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.imports import import_shard
from weightzoo.jobs import run_logged

run_logged(import_shard, snakemake.log[0], **snakemake.params.job)
