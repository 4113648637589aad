# Statistics of the dumped weights: one job per block of seeds, or, with pack.stats, one
# job per training pack (one rule each, its files listed), then one table.


if not STATS_PACKS:

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


for pack_id, units in STATS_PACKS.items():

    rule:
        name:
            f"weight_stats_{pack_id}"
        input:  # the pack's first file: the training pack job, all of whose files it reads
            weights=units[0].path("weights"),
        output:  # stats first: the file that stands for the pack
            stats=[u.path("stats") for u in units],
            maps=[u.path("strength_maps") for u in units],
        log:
            f"results/logs/weight_stats/pack-{pack_id}.log",
        benchmark:
            f"results/benchmarks/weight_stats/pack-{pack_id}.tsv"
        conda:
            "../envs/analysis.yaml"
        params:
            weights=[u.path("weights") for u in units],
            job=pack_stats_settings(units),
            hist=config["analysis"]["hist"],
            spectral=config["analysis"]["spectral"],
            code=code_of("weight_stats_pack.py"),
        script:
            "../workflow/scripts/weight_stats_pack.py"


rule aggregate_stats:
    input:
        job_inputs("stats", STATS_PACKS),
    output:
        "results/tables/stats.parquet",
    log:
        "results/logs/aggregate_stats.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        files=train_outputs("stats"),
        code=code_of("concat_tables.py"),
    script:
        "../workflow/scripts/concat_tables.py"


rule aggregate_strength_maps:
    input:
        job_inputs("strength_maps", STATS_PACKS),
    output:
        "results/tables/strength_maps.parquet",
    log:
        "results/logs/aggregate_strength_maps.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        files=train_outputs("strength_maps"),
        code=code_of("concat_tables.py"),
    script:
        "../workflow/scripts/concat_tables.py"
