# weightzoo: train zoos of MLPs, CNNs and ViTs, dump their learnable parameters, study them.
# Usage: `make run` (or `snakemake --cores 8`); see README.md.
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


configfile: Path(workflow.basedir) / "config" / "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/aggregate.smk"
include: "rules/stats.smk"
include: "rules/claims.smk"
include: "rules/figures.smk"


rule all:
    input:
        weights=weight_files(),
        metrics=metric_files(),
        runs="results/tables/runs.parquet",
        stats="results/tables/stats.parquet",
        maps="results/tables/strength_maps.parquet",
        claims="results/tables/claims.parquet",
        dashboard="results/index.html",
    default_target: True
