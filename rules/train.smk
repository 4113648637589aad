# Training: one job per (dataset, architecture, block of seeds).


rule train:
    input:
        data="results/data/{dataset}.npz",
    output:
        weights="results/weights/dataset={dataset}/arch={arch}/seeds-{seeds}.parquet",
        metrics="results/metrics/dataset={dataset}/arch={arch}/seeds-{seeds}.parquet",
        runs="results/runs/dataset={dataset}/arch={arch}/seeds-{seeds}.parquet",
    log:
        "results/logs/train/{dataset}/{arch}/seeds-{seeds}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{arch}/seeds-{seeds}.tsv"
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
        resume="results/resume/{dataset}/{arch}/seeds-{seeds}",
    script:
        "../workflow/scripts/train.py"
