# Datasets: fetch (or verify pre-staged) raw files, then one compact prepared form each.


rule download_dataset:
    output:
        manifest="results/data/raw/{dataset}.json",
    params:
        folder=lambda w: str(raw_folder(config, w.dataset)),
        download=config["data"]["download"],
        timeout_s=config["data"]["timeout_s"],
        retries=config["data"]["retries"],
    log:
        "results/logs/download_dataset/{dataset}.log",
    retries: 1
    localrule: True
    conda:
        "../envs/data.yaml"
    script:
        "../workflow/scripts/download_dataset.py"


rule prepare_dataset:
    input:
        dataset_inputs,
    output:
        "results/data/{dataset}.npz",
    params:
        source=dataset_source,
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow/scripts/prepare_dataset.py"
