# Statistics of the dumped weights: one job per training job, then one table.


rule weight_stats:
    input:
        weights=f"results/weights/{UNIT}.parquet",
    output:
        stats=f"results/stats/{UNIT}.parquet",
        maps=f"results/strength_maps/{UNIT}.parquet",
    log:
        "results/logs/weight_stats/{dataset}/{arch}/{setting}/seeds-{seeds}.log",
    benchmark:
        "results/benchmarks/weight_stats/{dataset}/{arch}/{setting}/seeds-{seeds}.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        job=stats_settings,
        hist=config["analysis"]["hist"],
        spectral=config["analysis"]["spectral"],
        code=code_of("weight_stats.py"),
    script:
        "../workflow/scripts/weight_stats.py"


rule aggregate_stats:
    input:
        train_outputs("stats"),
    output:
        "results/tables/stats.parquet",
    log:
        "results/logs/aggregate_stats.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        code=code_of("concat_tables.py"),
    script:
        "../workflow/scripts/concat_tables.py"


rule aggregate_strength_maps:
    input:
        train_outputs("strength_maps"),
    output:
        "results/tables/strength_maps.parquet",
    log:
        "results/logs/aggregate_strength_maps.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        code=code_of("concat_tables.py"),
    script:
        "../workflow/scripts/concat_tables.py"
