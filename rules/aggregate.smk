# Tables over the whole zoo.


rule aggregate_runs:
    input:
        job_inputs("runs", PACKS),
    output:
        parquet="results/tables/runs.parquet",
        csv="results/tables/runs.csv",
    log:
        "results/logs/aggregate_runs.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        files=run_files(),
        code=code_of("aggregate_runs.py"),
    script:
        "../workflow/scripts/aggregate_runs.py"
