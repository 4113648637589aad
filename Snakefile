# weightzoo: train zoos of MLPs, CNNs and ViTs, dump their learnable parameters, study them.
# Usage: `make run` (or `snakemake --cores 8`); see README.md.
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


configfile: Path(workflow.basedir) / "config" / "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/imports.smk"
include: "rules/aggregate.smk"
include: "rules/stats.smk"
include: "rules/claims.smk"
include: "rules/predict.smk"
include: "rules/figures.smk"


rule all:
    default_target: True
    input:
        weights=weight_files(),
        metrics=metric_files(),
        runs=rules.aggregate_runs.output.parquet,
        stats=rules.aggregate_stats.output[0],
        maps=rules.aggregate_strength_maps.output[0],
        claims=rules.claims.output.claims,
        prediction=rules.predict_accuracy.output.md,
        dashboard=rules.dashboard.output[0],
