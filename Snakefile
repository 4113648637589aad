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
include: "rules/report.smk"


# A run stopped by SIGTERM (a scheduler) or SIGINT (Ctrl-C) ends with one line saying so and
# what running it again does, and exits with 128 + the signal, instead of reporting a failure.
STOPS = RunWatch()


onstart:
    STOPS.install()


onerror:
    if (line := STOPS.summary()) is not None:
        print(line, file=sys.stderr)
        sys.exit(STOPS.exit_code)


# Every job is a target, and a job whose file is missing runs again, so a run after an
# interrupted one rebuilds any file that is missing (a figure's image, say, that no later job
# reads; a job that writes many files is named by its first: `job_inputs`). The inputs are plain
# positional lists: a named list of N files in a rule that also refers to other rules'
# outputs costs Snakemake O(N) per file (it hashes the whole list), O(N^2) per plan.
rule all:
    default_target: True
    input:
        job_inputs("weights", PACKS),
        job_inputs("metrics", PACKS),
        missing_outputs(),
        rules.aggregate_runs.output,
        rules.aggregate_stats.output,
        rules.aggregate_strength_maps.output,
        rules.claims.output,
        rules.predict_accuracy.output,
        figure_files(),
        rules.dashboard.output,
        rules.report.output,
