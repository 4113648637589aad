# Datasets: fetch (from the local mirror, the official mirrors, or verify pre-staged) raw
# files, then one compact prepared form each.


rule download_dataset:
    output:
        manifest="results/data/raw/{dataset}.json",
    log:
        "results/logs/download_dataset/{dataset}.log",
    retries: 1
    localrule: True
    conda:
        "../envs/data.yaml"
    params:
        folder=lambda w: str(raw_folder(config, w.dataset)),
        download=config["data"]["download"],
        timeout_s=config["data"]["timeout_s"],
        retries=config["data"]["retries"],
        mirror=config["data"]["mirror"],
        code=code_of("download_dataset.py"),
    script:
        "../workflow/scripts/download_dataset.py"


rule prepare_dataset:
    input:
        lambda w: dataset_inputs(config, w.dataset),
    output:
        "results/data/{dataset}.npz",
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../envs/data.yaml"
    params:
        source=lambda w: dataset_source(config, w.dataset),
        code=code_of("prepare_dataset.py"),
    script:
        "../workflow/scripts/prepare_dataset.py"
