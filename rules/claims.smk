# The paper's claims, tested on the zoo.


rule claims:
    input:
        runs=rules.aggregate_runs.output.parquet,
        stats=rules.aggregate_stats.output[0],
    output:
        groups="results/tables/groups.parquet",
        final="results/tables/final_stats.parquet",
        trajectories="results/tables/trajectories.parquet",
        cells="results/tables/cells.parquet",
        claims="results/tables/claims.parquet",
        claims_md=report(
            "results/claims.md",
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        "results/logs/claims.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        analysis=claims_params(config),
        code=code_of("claims.py"),
    script:
        "../workflow/scripts/claims.py"
