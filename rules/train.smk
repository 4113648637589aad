# Training: one job per (dataset, architecture, block of seeds).


rule train:
    input:
        data="results/data/{dataset}.npz",
    output:
        weights=f"results/weights/{UNIT}.parquet",
        metrics=f"results/metrics/{UNIT}.parquet",
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
    script:
        "../workflow/scripts/train.py"
