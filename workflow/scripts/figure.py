"""Snakemake adapter: one figure from its tables."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.jobs import figure_job, run_logged

run_logged(
    figure_job,
    snakemake.log[0],
    name=snakemake.wildcards.figure,
    tables=dict(snakemake.input.items()),
    settings=snakemake.params.settings,
    hist=snakemake.params.hist,
    html_out=snakemake.output.html,
    image_out=snakemake.output.image,
    spec_out=snakemake.output.spec,
)
