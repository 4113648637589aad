# Training: one job per (dataset, architecture, setting, block of seeds), or, with
# pack.jobs_per_family > 0, one job per pack of such blocks (one rule each, its files listed;
# the jobs after it name only the pack's first file: `pack_inputs` in rules/common.smk).
# Weights and metrics are `update` outputs: Snakemake keeps a finished file while its job runs
# again (the job writes the new one beside it and renames it into place when complete), so a
# retrain that is stopped or fails leaves the previous weights in place. The runs file is
# removed before the job as usual: while it is missing, the next run still retrains the job.


if not PACKS:

    rule train:
        input:
            data="results/data/{dataset}.npz",
        output:
            weights=update(f"results/weights/{UNIT}.parquet"),
            metrics=update(f"results/metrics/{UNIT}.parquet"),
            runs=f"results/runs/{UNIT}.parquet",
        log:
            "results/logs/train/{dataset}/{arch}/{setting}/seeds-{seeds}.log",
        benchmark:
            "results/benchmarks/train/{dataset}/{arch}/{setting}/seeds-{seeds}.tsv"
        conda:
            "../envs/train.yaml"
        threads: config["threads"]
        resources:
            gpu=train_resource("gpu"),
            gpu_model=train_resource("gpu_model"),
            mem_mb=train_resource("mem_mb"),
            runtime=train_resource("runtime"),
        params:
            job=train_settings,
            device=config["device"],
            vectorise=config["vectorise_seeds"],
            resume="results/resume/{dataset}/{arch}/{setting}/seeds-{seeds}",
            code=code_of("train.py"),
        script:
            "../workflow/scripts/train.py"


for pack_id, units in PACKS.items():

    rule:
        name:
            f"train_{pack_id}"
        input:
            data=f"results/data/{units[0].dataset}.npz",
        output:  # weights first: the file that stands for the pack (rules/common.smk)
            weights=[update(u.path("weights")) for u in units],
            metrics=[update(u.path("metrics")) for u in units],
            runs=[u.path("runs") for u in units],
        log:
            f"results/logs/train/pack-{pack_id}.log",
        benchmark:
            f"results/benchmarks/train/pack-{pack_id}.tsv"
        conda:
            "../envs/train.yaml"
        threads: config["threads"]
        resources:
            gpu=pack_resource(units, "gpu"),
            gpu_model=pack_resource(units, "gpu_model"),
            mem_mb=pack_resource(units, "mem_mb"),
            runtime=pack_resource(units, "runtime"),
        params:
            units=[unit_params(config, u) for u in units],
            device=config["device"],
            vectorise=config["vectorise_seeds"],
            code=code_of("train_pack.py"),
        script:
            "../workflow/scripts/train_pack.py"
