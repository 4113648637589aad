# Figures (Altair: offline HTML + SVG/PNG) and the offline dashboard results/index.html.
from weightzoo.jobs import FIGURE_TABLES

FIGURES = list(FIGURE_TABLES)
IMAGE = config["figures"]["image_format"]
TABLES = {
    "groups": "results/tables/groups.parquet",
    "final": "results/tables/final_stats.parquet",
    "trajectories": "results/tables/trajectories.parquet",
    "maps": "results/tables/strength_maps.parquet",
}


wildcard_constraints:
    figure="|".join(FIGURES),


rule figure:
    input:
        unpack(lambda w: {t: TABLES[t] for t in FIGURE_TABLES[w.figure]}),
    output:
        html="results/figures/{figure}.html",
        image=report(
            f"results/figures/{{figure}}.{IMAGE}",
            caption="../report/figure.rst",
            category="Figures",
        ),
        spec="results/figures/{figure}.vl.json",
    params:
        settings=config["figures"],
        hist_range=config["analysis"]["hist"]["range"],
    log:
        "results/logs/figure/{figure}.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow/scripts/figure.py"


rule dashboard:
    input:
        specs=expand("results/figures/{figure}.vl.json", figure=FIGURES),
        claims="results/tables/claims.parquet",
        groups="results/tables/groups.parquet",
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
