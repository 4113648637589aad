# The paper's claims, tested on the zoo.


rule claims:
    input:
        runs="results/tables/runs.parquet",
        stats="results/tables/stats.parquet",
    output:
        groups="results/tables/groups.parquet",
        final="results/tables/final_stats.parquet",
        trajectories="results/tables/trajectories.parquet",
        claims="results/tables/claims.parquet",
        claims_md=report(
            "results/claims.md",
            caption="../report/claims.rst",
            category="Claims",
        ),
    params:
        analysis=config["analysis"],
    log:
        "results/logs/claims.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/claims.py"
