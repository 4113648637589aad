# Test accuracy predicted from the weights, held out by cell, against a ladder of baselines.


rule predict_accuracy:
    input:
        runs=rules.aggregate_runs.output.parquet,
        stats=rules.aggregate_stats.output[0],
    output:
        table="results/tables/prediction.parquet",
        oof="results/tables/predictions_oof.parquet",
        md=report(
            "results/prediction.md",
            caption="../report/prediction.rst",
            category="Prediction",
        ),
    log:
        "results/logs/predict_accuracy.log",
    benchmark:
        "results/benchmarks/predict_accuracy.tsv"
    localrule: True
    conda:
        "../envs/analysis.yaml"
    threads: 1
    params:
        prediction=config["analysis"]["prediction"],
        code=code_of("predict_accuracy.py"),
    script:
        "../workflow/scripts/predict_accuracy.py"
