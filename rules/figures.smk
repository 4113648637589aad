# Figures (Altair: offline HTML + SVG/PNG) and the offline dashboard results/index.html.
# Each figure is one record of weightzoo.figures.FIGURES: its name, the tables it reads.
from weightzoo.figures import FIGURES

IMAGE = config["figures"]["image_format"]
TABLES = {
    "groups": rules.claims.output.groups,
    "final": rules.claims.output.final,
    "trajectories": rules.claims.output.trajectories,
    "maps": rules.aggregate_strength_maps.output[0],
    "prediction": rules.predict_accuracy.output.table,
    "predictions_oof": rules.predict_accuracy.output.oof,
}


wildcard_constraints:
    figure="|".join(FIGURES),


rule figure:
    input:
        unpack(lambda w: {t: TABLES[t] for t in FIGURES[w.figure].tables}),
    output:
        html="results/figures/{figure}.html",
        image=report(
            f"results/figures/{{figure}}.{IMAGE}",
            caption="../report/figure.rst",
            category="Figures",
        ),
        spec="results/figures/{figure}.vl.json",
    log:
        "results/logs/figure/{figure}.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        settings=config["figures"],
        hist=config["analysis"]["hist"],
    script:
        "../workflow/scripts/figure.py"


rule dashboard:
    input:
        specs=expand("results/figures/{figure}.vl.json", figure=FIGURES),
        claims=rules.claims.output.claims,
        groups=rules.claims.output.groups,
        prediction=rules.predict_accuracy.output.table,
    output:
        report(
            "results/index.html",
            caption="../report/dashboard.rst",
            category="Dashboard",
        ),
    log:
        "results/logs/dashboard.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/dashboard.py"
