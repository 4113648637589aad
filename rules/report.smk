# The replication report: what this run says about the paper, from its own tables.
from weightzoo.report import FIGURES as REPORT_FIGURES


rule report:
    input:
        runs=rules.aggregate_runs.output.parquet,
        claims=rules.claims.output.claims,
        final=rules.claims.output.final,
        prediction=rules.predict_accuracy.output.table,
        figures=expand(f"results/figures/{{figure}}.{IMAGE}", figure=REPORT_FIGURES),
    output:
        report(
            "results/report.md",
            caption="../report/report.rst",
            category="Report",
        ),
    log:
        "results/logs/report.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        code=code_of("report.py"),
    script:
        "../workflow/scripts/report.py"
