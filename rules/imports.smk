# Zoos trained elsewhere (config: imports): each run of an imported zoo becomes the weights,
# metrics and runs files of a trained one under dataset=<its name>, then their statistics.
# One job per run, or per shard of a large zoo (imports.<name>.jobs): one rule each, its
# files listed (weights first: the jobs after it name only a shard's first file, `job_inputs`
# in rules/common.smk), so adding checkpoints reruns only the jobs that hold them.


for name, plan in IMPORTS.items():
    for shard, runs in plan.shards().items():

        rule:
            name:
                f"import_{shard}"
            input:
                checkpoints=plan.inputs(runs),
                shared=[ancient(f) for f in plan.shared_files],
            output:
                weights=[plan.file(r, "weights") for r in runs],
                metrics=[plan.file(r, "metrics") for r in runs],
                runs=[plan.file(r, "runs") for r in runs],
            log:
                f"results/logs/import/{shard}.log",
            benchmark:
                f"results/benchmarks/import/{shard}.tsv"
            conda:
                "../envs/analysis.yaml"
            params:
                job=plan.job(runs),
            script:
                "../workflow/scripts/import_zoo.py"

        rule:
            name:
                f"import_stats_{shard}"
            input:  # the shard's first file: its import job, all of whose files it reads
                weights=plan.file(runs[0], "weights"),
            output:
                stats=[plan.file(r, "stats") for r in runs],
                maps=[plan.file(r, "strength_maps") for r in runs],
            log:
                f"results/logs/import_stats/{shard}.log",
            benchmark:
                f"results/benchmarks/import_stats/{shard}.tsv"
            conda:
                "../envs/analysis.yaml"
            params:
                weights=[plan.file(r, "weights") for r in runs],
                hist=config["analysis"]["hist"],
                spectral=config["analysis"]["spectral"],
            script:
                "../workflow/scripts/import_stats.py"
