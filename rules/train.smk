# Training: one job per (dataset, architecture, block of seeds).


rule train:
    input:
        data="results/data/{dataset}.npz",
    output:
        weights="results/weights/dataset={dataset}/arch={arch}/seeds-{seeds}.parquet",
        metrics="results/metrics/dataset={dataset}/arch={arch}/seeds-{seeds}.parquet",
        runs="results/runs/dataset={dataset}/arch={arch}/seeds-{seeds}.parquet",
    params:
        job=train_settings,
        device=config["device"],
        vectorise=config["vectorise_seeds"],
        resume="results/resume/{dataset}/{arch}/seeds-{seeds}",
    threads: config["threads"]
    resources:
        gpu=lambda w: training_resources(config, ARCHS[w.arch].family)["gpu"],
        gpu_model=lambda w: training_resources(config, ARCHS[w.arch].family)["gpu_model"],
        mem_mb=lambda w, attempt: training_resources(config, ARCHS[w.arch].family, attempt)["mem_mb"],
        runtime=lambda w, attempt: training_resources(config, ARCHS[w.arch].family, attempt)["runtime"],
    log:
        "results/logs/train/{dataset}/{arch}/seeds-{seeds}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{arch}/seeds-{seeds}.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/train.py"
