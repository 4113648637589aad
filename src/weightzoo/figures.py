"""Altair figures of the zoo: one chart function per figure, polars frames in, a chart out,
and one registry, `FIGURES`, from which the workflow's figure rule and job take everything.

Every chart function aggregates with polars before it builds the chart, so a figure's inline
data stay small at three times the paper's scale (19,440 runs): no per-weight data ever,
per-run points only where the figure is about runs (a few columns, written as compact
inline CSV). Each
chart function's docstring is the figure's caption (`caption`). A figure is one `Figure`
record: its name, title, the tables it reads with the columns it needs, the settings it
takes and its chart function; `draw` applies the input guard (no rows: a "no data" chart;
missing columns: a ValueError naming them) once, for every figure. Adding a figure is one
chart function and one record. `weightzoo.vega` writes the files.

Input frames (see weightzoo.stats and weightzoo.analysis): `groups` (one row per run with its
group), `final` (statistics of each run's final epoch joined with its group), `maps`
(first-layer out-strength maps, long), `medians` (median trajectories), `distances` (a
run x run 1-Wasserstein matrix of one dataset x family, long), and from weightzoo.prediction
`prediction` (one row per feature set x predictor x split x epoch) and `predictions_oof` (the
held-out prediction of every run behind each row).
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from weightzoo.families import FAMILY_CONFIGS
from weightzoo.tables import CELL_KEYS, RUN_KEYS, with_setting
from weightzoo.tables import WEIGHT_POOL as POOL
from weightzoo.zoo import SPLIT_KINDS


class _Altair:
    """altair, imported on first use: planning reads FIGURES without paying for it."""

    def __getattr__(self, name: str):
        import altair

        return getattr(altair, name)


alt = _Altair()

GROUPS = ("optimal", "intermediate", "suboptimal", "at chance")
GROUP_COLORS = ("#1b9e77", "#9e9e9e", "#d95f02", "#cccccc")
FAMILIES = tuple(FAMILY_CONFIGS)  # the paper's order: mlp, cnn, vit
TARGET_TITLES = {"w": "weights w", "delta": "change from initialisation w − w0"}
STRENGTH_TITLES = {
    "in_abs_mean": "mean absolute in-strength",
    "out_abs_mean": "mean absolute out-strength",
}
SIG_DIGITS = 4  # significant digits of the floats written into a figure's inline data
TRIM = 1e-3  # histogram bins below TRIM x the panel's peak in every group are trimmed off the ends


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def caption(function: Callable) -> str:
    """A figure function's docstring as a caption: paragraphs, each joined into one line."""
    text = inspect.cleandoc(function.__doc__ or "")
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n") if p.strip())


def no_data(reason: str = "", width: int = 300, height: int = 100) -> alt.Chart:
    """A chart with a single text mark saying "no data" (and why), for empty inputs."""
    text = f"no data: {reason}" if reason else "no data"
    return (
        alt.Chart(alt.InlineData(values=[{"text": text}]))
        .mark_text(fontSize=14, color="gray")
        .encode(text="text:N")
        .properties(width=width, height=height)
    )


def _inline(df: pl.DataFrame) -> alt.InlineData:
    """The frame as compact inline CSV: floats rounded to SIG_DIGITS significant digits,
    NaN/inf written as empty (null) cells, numeric columns parsed as numbers."""
    numeric = [c for c, t in df.schema.items() if t.is_numeric()]
    floats = [c for c, t in df.schema.items() if t.is_float()]
    df = df.with_columns(
        pl.when(pl.col(c).is_finite()).then(pl.col(c).round_sig_figs(SIG_DIGITS)).alias(c)
        for c in floats
    )
    return alt.InlineData(
        values=df.write_csv(),
        format=alt.DataFormat(type="csv", parse=dict.fromkeys(numeric, "number")),
    )


def _require(schema: pl.Schema, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in schema]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; has {list(schema)}")


def _finite(column: str) -> pl.Expr:
    """The column with NaN/inf turned into null."""
    return pl.when(pl.col(column).is_finite()).then(pl.col(column)).alias(column)


def _cell_columns(df: pl.DataFrame) -> list[str]:
    """The cell keys a per-run figure carries: `setting` only where the zoo varies it (the
    inline data of 20,000 runs stay small)."""
    varies = "setting" in df.columns and df["setting"].n_unique() > 1
    return [k for k in CELL_KEYS if k != "setting" or varies]


def _ok_runs(df: pl.DataFrame) -> pl.DataFrame:
    return df.filter(pl.col("status") == "ok") if "status" in df.columns else df


def _order(values: Iterable[str], first: Sequence[str] = (), last: Sequence[str] = ()) -> list:
    """Distinct values: those in `first` in that order, the rest sorted, `last` at the end."""
    present = set(values)
    head = [v for v in first if v in present]
    tail = [v for v in last if v in present and v not in head]
    return head + sorted(present - set(head) - set(tail)) + tail


def _group_color(groups: Sequence[str] = GROUPS) -> alt.Color:
    colors = dict(zip(GROUPS, GROUP_COLORS, strict=True))
    return alt.Color(
        "group:N",
        title="group",
        scale=alt.Scale(domain=list(groups), range=[colors[g] for g in groups]),
    )


def _facets(df: pl.DataFrame) -> dict:
    """Facet rows by dataset and columns by family, in the paper's family order."""
    return {
        "row": alt.Row("dataset:N", title=None, sort=_order(df["dataset"])),
        "column": alt.Column("family:N", title=None, sort=_order(df["family"], FAMILIES)),
    }


def _acc_axis(values: pl.Series) -> alt.Axis:
    """Accuracies in [0, 1] are shown as percentages."""
    top = values.max()
    return alt.Axis(format=".0%") if top is not None and top <= 1 else alt.Axis()


# --------------------------------------------------------------------------------------------
# The figures
# --------------------------------------------------------------------------------------------


def accuracy_vs_params_chart(
    groups: pl.DataFrame, width: int = 220, height: int = 180
) -> alt.Chart:
    """Final test accuracy against the number of parameters (log scale), one panel per
    dataset (rows) and model family (columns). Each point is one architecture: the mean
    over its seeds, with a bar from the worst to the best seed; its colour is the
    architecture's group (optimal: within the chosen margin of the best architecture;
    suboptimal: far below it). Read it as the sweep's learning curve in model size: where
    accuracy saturates, and how much seeds disagree at each size.
    """
    status = pl.col("status") if "status" in groups.columns else pl.lit("ok")
    archs = (
        groups.with_columns(_finite("final_test_acc"))
        .group_by(CELL_KEYS)
        .agg(
            n_params=pl.col("n_params").max(),
            group=pl.col("group").first(),
            acc_mean=pl.col("final_test_acc").mean(),
            acc_min=pl.col("final_test_acc").min(),
            acc_max=pl.col("final_test_acc").max(),
            seeds=pl.len(),
            diverged=(status == "diverged").sum(),
        )
        .filter(pl.col("n_params") > 0)
        .sort("dataset", "family", "n_params", "arch", "setting")
    )
    if archs.height == 0:
        return no_data("no architecture with a parameter count", width, height)
    x = alt.X(
        "n_params:Q",
        title="parameters",
        scale=alt.Scale(type="log", padding=8),
        axis=alt.Axis(format="~s"),
    )
    axis = _acc_axis(archs["acc_max"])
    tooltip = [
        "arch:N",
        "setting:N",
        "n_params:Q",
        "group:N",
        alt.Tooltip("acc_mean:Q", title="mean acc", format=".3f"),
        alt.Tooltip("acc_min:Q", title="worst seed", format=".3f"),
        alt.Tooltip("acc_max:Q", title="best seed", format=".3f"),
        "seeds:Q",
        "diverged:Q",
    ]
    base = alt.Chart().encode(x=x, color=_group_color())
    bars = base.mark_rule(opacity=0.6).encode(
        y=alt.Y("acc_min:Q", title="final test accuracy", axis=axis), y2="acc_max:Q"
    )
    points = base.mark_circle(size=40, opacity=0.9).encode(
        y=alt.Y("acc_mean:Q", title="final test accuracy", axis=axis), tooltip=tooltip
    )
    return (
        alt.layer(bars, points, data=_inline(archs))
        .properties(width=width, height=height)
        .facet(**_facets(archs))
    )


def statistic_vs_accuracy_chart(
    final: pl.DataFrame, statistic: str = "std", width: int = 220, height: int = 180
) -> alt.Chart:
    """A statistic of each network's final weights (all weight matrices pooled) against its
    final test accuracy, one point per run, coloured by the run's group; one panel per
    dataset (rows) and model family (columns). If weight statistics track performance
    (claim 1), the points follow a trend within a panel; optimal runs that bunch together
    while suboptimal runs spread out support claim 2. Diverged runs are left out, as in
    the tests of the claims.
    """
    if statistic not in final.columns:
        raise ValueError(f"statistic_vs_accuracy: no statistic column {statistic!r} in final")
    runs = (
        _ok_runs(final)
        .filter(scope=POOL, target="w")
        .select(*_cell_columns(final), "group", acc="final_test_acc", value=statistic)
        .with_columns(_finite("acc"), _finite("value"))
        .drop_nulls(["acc", "value"])
        .sort("dataset", "family", "acc")
    )
    if runs.height == 0:
        return no_data(f"no finite {statistic} of pooled weights", width, height)
    tooltip = ["arch:N", "group:N", alt.Tooltip("acc:Q", format=".3f"), "value:Q"]
    if "setting" in runs.columns:
        tooltip.insert(1, "setting:N")
    return (
        alt.Chart(_inline(runs))
        .mark_circle(size=14, opacity=0.55)
        .encode(
            x=alt.X("acc:Q", title="final test accuracy", axis=_acc_axis(runs["acc"])),
            y=alt.Y(
                "value:Q", title=f"{statistic} of the pooled weights", scale=alt.Scale(zero=False)
            ),
            color=_group_color(),
            tooltip=tooltip,
        )
        .properties(width=width, height=height)
        .facet(**_facets(runs))
        .resolve_scale(y="independent")
    )


def weight_histograms_chart(
    final: pl.DataFrame,
    hist_range: tuple[float, float],
    width: int = 220,
    height: int = 140,
) -> alt.Chart:
    """The distribution of each network's final weights (all weight matrices pooled), as
    the mean normalised histogram over the runs of the optimal group and of the suboptimal
    group, one panel per dataset (rows) and family (columns): on top the weights w, below
    their change from initialisation w − w0. The y axis is the share of a network's weights
    in each bin; empty bins at both ends are trimmed, and values outside the histogram range
    are counted in its edge bins. Where the two curves differ, successful and failing
    networks have learned differently shaped weights.
    """
    lo, hi = hist_range
    panel = ["dataset", "family", "target"]
    runs = (
        _ok_runs(final)
        .filter(
            pl.col("scope") == POOL,
            pl.col("target").is_in(list(TARGET_TITLES)),
            pl.col("group").is_in(["optimal", "suboptimal"]),
            pl.col("hist").list.len() > 0,
        )
        .select(*panel, "group", "hist", bins=pl.col("hist").list.len())
    )
    if runs.height == 0:
        return no_data("no optimal or suboptimal runs with a histogram", width, height)
    mean = (
        runs.with_columns(bin=pl.int_ranges(pl.col("bins")))
        .explode("hist", "bin")
        .group_by(*panel, "group", "bins", "bin")
        .agg(share=pl.col("hist").cast(pl.Float64).mean(), runs=pl.len())
    )
    # Trim from both ends the bins that are ~0 in every group of the panel.
    kept = (
        mean.group_by(*panel, "bin")
        .agg(top=pl.col("share").max())
        .with_columns(peak=pl.col("top").max().over(panel))
        .filter(pl.col("top") >= TRIM * pl.col("peak"), pl.col("peak") > 0)
        .group_by(panel)
        .agg(first=pl.col("bin").min(), last=pl.col("bin").max())
    )
    hists = (
        mean.join(kept, on=panel)
        .filter(pl.col("bin").is_between(pl.col("first"), pl.col("last")))
        .with_columns(value=lo + (pl.col("bin") + 0.5) * (hi - lo) / pl.col("bins"))
        .select(*panel, "group", "value", "share", "runs")
        .sort(*panel, "group", "value")
    )
    charts = []
    for target, title in TARGET_TITLES.items():
        part = hists.filter(target=target).drop("target")
        if part.height == 0:
            continue
        base = alt.Chart().encode(
            x=alt.X("value:Q", title=title),
            y=alt.Y("share:Q", title="share of weights per bin"),
            color=_group_color(("optimal", "suboptimal")),
        )
        tooltip = [
            "group:N",
            alt.Tooltip("value:Q", format=".3g"),
            alt.Tooltip("share:Q", format=".3g"),
            "runs:Q",
        ]
        layer = alt.layer(
            base.mark_area(opacity=0.25, interpolate="step"),
            base.mark_line(interpolate="step", strokeWidth=1.5).encode(tooltip=tooltip),
            data=_inline(part),
        ).properties(width=width, height=height)
        charts.append(
            layer.facet(**_facets(part), title=title).resolve_scale(
                x="independent", y="independent"
            )
        )
    if not charts:
        return no_data("no histogram has any mass", width, height)
    return charts[0] if len(charts) == 1 else alt.vconcat(*charts)


def _tensor_order(name: str) -> tuple:
    """Sort key putting a network's weight tensors in forward order: input embedding first,
    then blocks/hidden layers by index (q, k, v, proj, fc1, fc2 within a ViT block), head last."""
    if name.startswith("head"):
        return (2, 0, 0, name)
    number = re.search(r"\.(\d+)\.", name)
    if number is None:
        return (0, 0, 0, name)
    roles = ("attn.q.", "attn.k.", "attn.v.", "attn.proj.", "fc1", "fc2")
    role = next((i for i, r in enumerate(roles) if r in name), len(roles))
    return (1, int(number.group(1)), role, name)


def node_strength_chart(final: pl.DataFrame, width: int = 220, height: int = 160) -> alt.Chart:
    """Node strength of every weight tensor of the final networks: for each tensor, the mean
    over its neurons of the summed absolute incoming weights (in-strength, top) and
    outgoing weights (out-strength, bottom), whose distribution across runs is drawn as a
    box per group: the box spans the middle half of the runs, the tick is the median and
    the whisker runs from the smallest to the largest run. One panel per dataset (rows) and
    family (columns), tensors in forward order; the y axis is logarithmic when the values
    span more than two decades. Higher, tighter boxes for the optimal group show that
    successful networks build stronger, more uniform connections.
    """
    keys = ["dataset", "family", "scope", "group"]
    long = (
        _ok_runs(final)
        .filter(scope_type="tensor", kind="weight", target="w")
        .select(*keys, *STRENGTH_TITLES)
        .unpivot(index=keys, variable_name="measure", value_name="value")
        .with_columns(_finite("value"))
        .drop_nulls("value")
    )
    if long.height == 0:
        return no_data("no weight tensors", width, height)
    q = pl.col("value")
    boxes = (
        long.group_by(*keys, "measure")
        .agg(
            low=q.min(),
            q1=q.quantile(0.25, "linear"),
            median=q.median(),
            q3=q.quantile(0.75, "linear"),
            high=q.max(),
            runs=pl.len(),
        )
        .sort(*keys, "measure")
    )
    tensors = sorted(boxes["scope"].unique(), key=_tensor_order)
    groups = [g for g in GROUPS if g in set(boxes["group"])]
    charts = []
    for measure, title in STRENGTH_TITLES.items():
        part = boxes.filter(measure=measure).drop("measure")
        if part.height == 0:
            continue
        positive = part.filter(pl.col("low") > 0)
        log = positive.height == part.height and part["high"].max() > 100 * positive["low"].min()
        scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
        base = alt.Chart().encode(
            # a band scale (not the point scale a rule would get) leaves room for the groups
            x=alt.X("scope:N", title="weight tensor", sort=tensors, scale=alt.Scale(type="band")),
            xOffset=alt.XOffset("group:N", sort=groups),
            color=_group_color(),
        )
        tooltip = ["scope:N", "group:N", "runs:Q"] + [
            alt.Tooltip(f"{c}:Q", format=".3g") for c in ("low", "q1", "median", "q3", "high")
        ]
        layer = alt.layer(
            base.mark_rule().encode(y=alt.Y("low:Q", title=title, scale=scale), y2="high:Q"),
            base.mark_bar(size=8, opacity=0.7).encode(y="q1:Q", y2="q3:Q", tooltip=tooltip),
            base.mark_tick(size=8, thickness=1.5).encode(y="median:Q", color=alt.value("black")),
            data=_inline(part),
        ).properties(width=width, height=height)
        # xOffset must be resolved with x: a shared one cannot see each panel's band width
        charts.append(
            layer.facet(**_facets(part), title=title).resolve_scale(
                x="independent", xOffset="independent", y="independent"
            )
        )
    return charts[0] if len(charts) == 1 else alt.vconcat(*charts)


def strength_maps_chart(
    maps: pl.DataFrame, groups: pl.DataFrame, width: int = 110, height: int = 110
) -> alt.Chart:
    """What the first layer looks at: each input pixel's absolute out-strength (the summed
    absolute weights leaving it into the first layer), averaged over seeds at the final
    epoch, for the best and the worst architecture (by mean test accuracy) of each dataset
    and family. An MLP's map has the shape of the image; a ViT's has the shape of one patch,
    since its projection is shared by every patch (CNNs have no per-pixel weights). One
    panel per architecture (rows) and input channel (columns), each map divided by its
    architecture's largest value, so bright means "most used pixel". A trained network
    concentrates on the informative pixels; an untrained-looking, uniform map suggests the
    layer has learned little.
    """
    run, arch = RUN_KEYS, CELL_KEYS
    mean = (
        maps.filter(pl.col("epoch") == pl.col("epoch").max().over(run))
        .group_by(*arch, "channel", "row", "col")
        .agg(value=pl.col("value").mean())
    )
    accs = groups.group_by(arch).agg(acc=pl.col("arch_mean_acc").first())
    ranked = (
        mean.select(arch)
        .unique()
        .join(accs, on=arch)
        .drop_nulls("acc")
        .filter(pl.col("acc").is_finite())
        .sort("dataset", "family", "acc", "arch", "setting")
    )
    if ranked.height == 0:
        return no_data("no maps of a labelled architecture", width, height)
    chosen = pl.concat(
        [
            ranked.group_by("dataset", "family").last().with_columns(rank=pl.lit("best")),
            ranked.group_by("dataset", "family").first().with_columns(rank=pl.lit("worst")),
        ]
    ).unique(arch, keep="first", maintain_order=True)  # one architecture: shown once, as best
    family_rank = {f: i for i, f in enumerate(FAMILIES)}
    chosen = (
        chosen.with_columns(
            f=pl.col("family").replace_strict(family_rank, default=len(FAMILIES)),
            r=(pl.col("rank") == "worst").cast(pl.Int32),
        )
        .sort("dataset", "f", "family", "r")
        .with_row_index("panel")
        .with_columns(
            label=pl.format(
                "{} · {} · {}: {}{} ({})",
                "dataset",
                "family",
                "rank",
                "arch",
                pl.when(pl.col("setting") == "default")
                .then(pl.lit(""))
                .otherwise(pl.lit(" ") + pl.col("setting")),
                pl.col("acc").round_sig_figs(3).cast(pl.String),
            )
        )
    )
    pixels = (
        mean.join(chosen.select(*arch, "panel"), on=arch)
        .with_columns(value=pl.col("value") / pl.col("value").max().over("panel"))
        .select("panel", "channel", "row", "col", "value")
        .sort("panel", "channel", "row", "col")
    )
    labels = chosen["label"].to_list()  # panel i is labels[i]
    heat = (
        alt.Chart(_inline(pixels))
        .mark_rect()
        .encode(
            x=alt.X("col:O", axis=None),
            y=alt.Y("row:O", axis=None),
            color=alt.Color(
                "value:Q",
                title="relative out-strength",
                scale=alt.Scale(scheme="viridis", domain=[0, 1]),
            ),
            tooltip=["row:O", "col:O", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=width, height=height)
    )
    # Panels are numbered; the header turns a number into its label, so the pixel rows
    # carry a small integer rather than a long string.
    header = alt.Header(
        labelExpr=f"{json.dumps(labels)}[datum.value]", labelAngle=0, labelAlign="left"
    )
    return heat.facet(
        row=alt.Row("panel:O", title=None, header=header),
        column=alt.Column("channel:O", title="input channel"),
    ).resolve_scale(x="independent", y="independent")


def trajectories_chart(medians: pl.DataFrame, width: int = 200, height: int = 150) -> alt.Chart:
    """How the weights move during training, per model family: the median over
    architectures (each the mean of its seeds) of std(w_t)/std(w_0) (top; 1 = the initial
    spread) and of ||w_t − w_0|| / ||w_0|| (bottom; 0 = still at the initialisation) of the
    whole network's weights, against training progress (epoch / final epoch). One column per
    dataset, and "all" pooling every dataset. Curves of the three families that rise or fall
    together have the same shape (claim 3); where they end shows whether the size of the
    change is alike too.
    """
    titles = {"rel_std": "std(w_t) / std(w_0)", "rel_dist": "‖w_t − w_0‖ / ‖w_0‖"}
    extra = ["runs"] if "runs" in medians.columns else []
    long = (
        medians.select("dataset", "family", "progress", *titles, *extra)
        .unpivot(index=["dataset", "family", "progress", *extra], variable_name="measure")
        .with_columns(_finite("value"), measure=pl.col("measure").replace_strict(titles))
        .drop_nulls(["value", "progress"])
        .sort("dataset", "family", "measure", "progress")
    )
    if long.height == 0:
        return no_data("no finite trajectory values", width, height)
    families = _order(long["family"], FAMILIES)
    tooltip = [
        "family:N",
        alt.Tooltip("progress:Q", format=".2f"),
        alt.Tooltip("value:Q", format=".3g"),
    ]
    tooltip += [f"{c}:Q" for c in extra]
    base = alt.Chart().encode(
        x=alt.X("progress:Q", title="training progress", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("family:N", title="family", sort=families),
    )
    return (
        alt.layer(
            base.mark_line(strokeWidth=2),
            base.mark_circle(size=25).encode(tooltip=tooltip),
            data=_inline(long),
        )
        .properties(width=width, height=height)
        .facet(
            row=alt.Row("measure:N", title=None, sort=list(titles.values())),
            column=alt.Column("dataset:N", title=None, sort=_order(long["dataset"], last=["all"])),
        )
        .resolve_scale(y="independent")
    )


def distance_heatmap_chart(
    distances: pl.DataFrame, width: int = 360, height: int = 360, max_runs: int = 80
) -> alt.Chart:
    """How alike the networks' weight distributions are: the 1-Wasserstein distance between
    the final-weight histograms of every pair of runs of one dataset and family, runs
    ordered by final test accuracy (worst at the left and top). Dark cells are similar
    networks. A dark block in the high-accuracy corner and a light, patchy low-accuracy
    corner mean that successful networks resemble each other while poor ones scatter
    (claim 2). With many runs, neighbouring runs (in accuracy order) are merged into at most
    `max_runs` groups and a cell is the mean distance between two groups' runs.
    """
    subsets = distances.select("dataset", "family").unique().sort("dataset", "family")
    if subsets.height > 1:
        raise ValueError(
            "distance_heatmap takes the runs of one dataset x family, got "
            + ", ".join(f"{d}/{f}" for d, f in subsets.iter_rows())
        )
    if max_runs < 1:
        raise ValueError(f"distance_heatmap: max_runs must be >= 1, got {max_runs}")
    pairs = distances.select("run_a", "run_b", "acc_a", "acc_b", "w1").with_columns(_finite("w1"))
    mirrored = pairs.select(
        run_a="run_b", run_b="run_a", acc_a="acc_b", acc_b="acc_a", w1="w1"
    )  # the matrix may be given as one triangle
    pairs = pl.concat([pairs, mirrored]).unique(["run_a", "run_b"], keep="first")
    runs = (
        pl.concat([pairs.select(run="run_a", acc="acc_a"), pairs.select(run="run_b", acc="acc_b")])
        .group_by("run")
        .agg(pl.col("acc").first())
        .sort("acc", "run", nulls_last=True)
        .with_row_index("rank")
    )
    n = runs.height
    if n <= max_runs:
        runs = runs.with_columns(cell=pl.col("rank"), label=pl.col("run"))
        labels = runs.select("cell", "label", "acc")
    else:
        runs = runs.with_columns(cell=(pl.col("rank") * max_runs // n))
        labels = (
            runs.group_by("cell")
            .agg(lo=pl.col("acc").min(), hi=pl.col("acc").max(), acc=pl.col("acc").mean())
            .with_columns(
                label=pl.format(
                    "#{} acc {}–{}",
                    pl.col("cell").cast(pl.String).str.zfill(len(str(max_runs - 1))),
                    pl.col("lo").round(3).cast(pl.String),
                    pl.col("hi").round(3).cast(pl.String),
                )
            )
            .select("cell", "label", "acc")
        )
        pairs = pairs.filter(pl.col("run_a") != pl.col("run_b"))
    index = runs.select("run", "cell")
    cells = (
        pairs.join(index.rename({"run": "run_a", "cell": "a"}), on="run_a")
        .join(index.rename({"run": "run_b", "cell": "b"}), on="run_b")
        .group_by("a", "b")
        .agg(w1=pl.col("w1").mean())
        .sort("a", "b")
    )
    labels = labels.sort("cell")  # cell i (0 = least accurate) is names[i]
    names = json.dumps(labels["label"].to_list())
    accs = json.dumps([None if a is None else float(f"{a:.4g}") for a in labels["acc"].to_list()])
    dataset, family = distances["dataset"][0], distances["family"][0]
    axis = {"title": "run (by final test accuracy)", "sort": "ascending"}
    labels_axis = alt.Axis(labelExpr=f"{names}[datum.value]", labelOverlap=True, labelLimit=120)
    return (
        alt.Chart(_inline(cells))
        .transform_calculate(
            run_a=f"{names}[datum.a]",
            run_b=f"{names}[datum.b]",
            acc_a=f"{accs}[datum.a]",
            acc_b=f"{accs}[datum.b]",
        )
        .mark_rect()
        .encode(
            x=alt.X("a:O", **axis, axis=labels_axis),
            y=alt.Y("b:O", **axis, axis=labels_axis),
            color=alt.Color("w1:Q", title="W1", scale=alt.Scale(scheme="viridis")),  # dark: alike
            tooltip=[
                "run_a:N",
                alt.Tooltip("acc_a:Q", format=".3f"),
                "run_b:N",
                alt.Tooltip("acc_b:Q", format=".3f"),
                alt.Tooltip("w1:Q", format=".3g"),
            ],
        )
        .properties(width=width, height=height, title=f"{dataset} · {family}: {n} runs")
    )


def heatmap_distances(
    final: pl.DataFrame, hist_range: tuple[float, float], max_runs: int
) -> pl.DataFrame:
    """Run x run W1 distances of the pooled weights for one dataset x family, long format
    (the heatmap's `distances`).

    Picks the first dataset's family with the most runs; above `max_runs` runs, keeps runs
    evenly spaced in accuracy rank, so the figure stays small at any scale.
    """
    pool = with_setting(final).filter(scope=POOL, target="w", status="ok")
    schema = {
        "dataset": pl.String,
        "family": pl.String,
        "run_a": pl.String,
        "run_b": pl.String,
        "acc_a": pl.Float64,
        "acc_b": pl.Float64,
        "w1": pl.Float64,
    }
    if pool.height == 0:
        return pl.DataFrame(schema=schema)
    dataset = pool["dataset"].sort()[0]
    counts = pool.filter(dataset=dataset).group_by("family").len()
    family = counts.sort("len", "family", descending=[True, False])[0, "family"]
    runs = pool.filter(dataset=dataset, family=family).sort("final_test_acc", *RUN_KEYS)
    if runs.height > max_runs:
        runs = runs[np.unique(np.linspace(0, runs.height - 1, max_runs).round().astype(int))]
    dist = w1_matrix(np.stack(runs["hist"].to_numpy()), hist_range)
    setting = (
        pl.when(pl.col("setting") == "default").then(pl.lit("")).otherwise("/" + pl.col("setting"))
    )
    labels = runs.select(pl.col("arch") + setting + "/s" + pl.col("seed").cast(pl.String))
    labels = labels.to_series().to_numpy()
    acc = runs["final_test_acc"].to_numpy()
    i, j = np.indices(dist.shape).reshape(2, -1)
    return pl.DataFrame(
        {
            "dataset": dataset,
            "family": family,
            "run_a": labels[i],
            "run_b": labels[j],
            "acc_a": acc[i],
            "acc_b": acc[j],
            "w1": dist.ravel(),
        },
        schema=schema,
    )


def w1_matrix(hists: np.ndarray, hist_range: tuple[float, float]) -> np.ndarray:
    """Pairwise 1-Wasserstein distances between normalised histograms on one fixed grid.

    W1 = integral |F_a - F_b| dx, the L1 distance between the cumulative distributions
    times the bin width. For the heatmap's few runs only: the claim tests never build it.
    """
    from scipy.spatial.distance import pdist, squareform

    hists = np.asarray(hists, dtype=np.float64)
    width = (hist_range[1] - hist_range[0]) / hists.shape[1]
    return squareform(pdist(np.cumsum(hists, axis=1), "cityblock")) * width


def _layer_position(scope: pl.Expr) -> pl.Expr:
    """first (the input layer), last (the head) or middle, from a weight tensor's name."""
    first = scope.str.contains(r"^(hidden\.0|blocks\.0\.conv|patch_embed)\.")
    return (
        pl.when(scope.str.starts_with("head."))
        .then(pl.lit("last"))
        .when(first)
        .then(pl.lit("first"))
        .otherwise(pl.lit("middle"))
    )


def spectral_alpha_chart(final: pl.DataFrame, width: int = 220, height: int = 180) -> alt.Chart:
    """The heavy-tail exponent α of each weight matrix's eigenvalue spectrum (WeightWatcher's
    fit) against test accuracy: one point per architecture and layer (the mean over its
    seeds), coloured by where the layer sits (input, middle, output), with a grey bar from the
    lowest to the highest α of the same matrix with its entries shuffled (the null: what
    noise of the same marginal gives). Fits that cannot be trusted are drawn as grey open
    circles: a power-law tail fitted to fewer than `analysis.spectral.min_evals` eigenvalues
    (50 by default), or to a tail shorter than `min_tail`, lands almost anywhere, even inside
    the "well-trained" band 2–6 for random matrices, so small layers are flagged and left out
    of the claims rather than read. A layer is heavy-tailed only where its α lies below its
    null's band.
    """
    keys = [*CELL_KEYS, "layer_position"]
    layers = (
        _ok_runs(final)
        .filter(scope_type="tensor", kind="weight", target="w")
        .filter(pl.col("fit_status").is_not_null())
        .with_columns(_finite("alpha"), layer_position=_layer_position(pl.col("scope")))
        .group_by(keys)
        .agg(
            acc=pl.col("final_test_acc").mean(),
            alpha=pl.col("alpha").mean(),
            null_low=pl.col("alpha_null_low").mean(),
            null_high=pl.col("alpha_null_high").mean(),
            valid=(pl.col("fit_status") == "ok").mean(),
            heavy=pl.col("heavy_tailed").cast(pl.Float64).mean(),
            runs=pl.len(),
        )
        .drop_nulls(["acc", "alpha"])
        .with_columns(
            fit=pl.when(pl.col("valid") >= 0.5).then(pl.lit("valid")).otherwise(pl.lit("flagged"))
        )
        .sort(keys)
    )
    if layers.height == 0:
        return no_data("no spectral fits of weight matrices", width, height)
    positions = ["first", "middle", "last"]
    x = alt.X("acc:Q", title="final test accuracy", axis=_acc_axis(layers["acc"]))
    y = alt.Y("alpha:Q", title="α of the eigenvalue spectrum", scale=alt.Scale(type="log"))
    valid = alt.datum.fit == "valid"
    tooltip = [
        "arch:N",
        "layer_position:N",
        "fit:N",
        alt.Tooltip("acc:Q", format=".3f"),
        alt.Tooltip("alpha:Q", format=".3g"),
        alt.Tooltip("null_low:Q", format=".3g"),
        alt.Tooltip("null_high:Q", format=".3g"),
        alt.Tooltip("valid:Q", format=".2f"),
        "runs:Q",
    ]
    band = (
        alt.Chart()
        .mark_rule(color="#bbbbbb", strokeWidth=4, opacity=0.6)
        .encode(x=x, y=alt.Y("null_low:Q", scale=alt.Scale(type="log")), y2="null_high:Q")
    )
    points = (
        alt.Chart()
        .mark_point(size=40, filled=True)
        .encode(
            x=x,
            y=y,
            color=alt.condition(
                valid,
                alt.Color("layer_position:N", title="layer", sort=positions),
                alt.value("#9e9e9e"),
            ),
            fill=alt.condition(
                valid, alt.Color("layer_position:N", sort=positions), alt.value("white")
            ),
            tooltip=tooltip,
        )
    )
    return (
        alt.layer(band, points, data=_inline(layers))
        .properties(width=width, height=height)
        .facet(**_facets(layers))
        .resolve_scale(y="independent")
    )


SPLIT_ORDER = tuple(SPLIT_KINDS)  # the order of zoo.SPLIT_KINDS


def prediction_scatter_chart(
    predictions: pl.DataFrame, width: int = 220, height: int = 220
) -> alt.Chart:
    """How well held-out predictions of final test accuracy match the truth: one point per
    cell (an architecture under one training setting on a dataset; the mean over its seeds
    of the actual and of the held-out predicted accuracy), coloured by family, against the
    diagonal of exact prediction. Left: parameter count alone (`size`); right: the feature
    set with the highest held-out Kendall τ on held-out architectures, with the same
    predictor. Every point was predicted by a model that never saw its cell; the right
    panel's set is picked by its held-out score, so it is a little optimistic (the headline
    of prediction.md uses a set fixed in the config instead).
    """
    cells = (
        predictions.group_by("panel", *CELL_KEYS)
        .agg(
            actual=pl.col("actual").mean(),
            predicted=pl.col("predicted").mean(),
            seeds=pl.len(),
        )
        .sort("panel", *CELL_KEYS)
    )
    if cells.height == 0:
        return no_data("no held-out predictions", width, height)
    axis = _acc_axis(cells["actual"])
    base = alt.Chart().encode(
        x=alt.X("actual:Q", title="actual final test accuracy", axis=axis),
        y=alt.Y("predicted:Q", title="held-out prediction", axis=axis),
    )
    diagonal = base.mark_line(color="#999", strokeDash=[4, 3]).encode(y="actual:Q")
    points = base.mark_circle(size=40, opacity=0.8).encode(
        color=alt.Color("family:N", title="family", sort=_order(cells["family"], FAMILIES)),
        tooltip=[
            *(f"{k}:N" for k in CELL_KEYS if k != "family"),
            alt.Tooltip("actual:Q", format=".3f"),
            alt.Tooltip("predicted:Q", format=".3f"),
            "seeds:Q",
        ],
    )
    return (
        alt.layer(diagonal, points, data=_inline(cells))
        .properties(width=width, height=height)
        .facet(column=alt.Column("panel:N", title=None, sort=_order(cells["panel"])))
    )


def _scatter_inputs(frames: dict[str, pl.LazyFrame], settings: dict) -> list[pl.DataFrame]:
    """The held-out predictions of `size` and of the best feature set by τ (final epoch, the
    first split with numbers), labelled with their τ; only those rows are read."""
    table = (
        frames["prediction"]
        .filter(pl.col("epoch") == "final", pl.col("tau").is_not_null())
        .collect()
    )
    splits = [s for s in SPLIT_ORDER if s in table["split"].to_list()]
    empty = pl.DataFrame(schema=dict.fromkeys(["panel", *CELL_KEYS], pl.String))
    if not splits:
        return [empty.with_columns(actual=pl.lit(0.0), predicted=pl.lit(0.0)).head(0)]
    part = table.filter(split=splits[0])
    # a fitted set (size_rank fits nothing and has no held-out predictions) other than size
    fitted = part.filter(pl.col("n_folds").is_not_null(), pl.col("feature_set") != "size")
    best = fitted.sort("tau", descending=True)
    chosen = best.head(1) if best.height else part.head(1)
    predictor = chosen["predictor"][0]
    rows = pl.concat([part.filter(feature_set="size", predictor=predictor), chosen])
    labels = rows.select(
        "feature_set",
        "predictor",
        panel=pl.format(
            "{} ({}): τ = {}", "feature_set", "predictor", pl.col("tau").round(2).cast(pl.String)
        ),
    )
    oof = (
        frames["predictions_oof"]
        .filter(pl.col("epoch") == "final", pl.col("split") == splits[0])
        .join(labels.lazy(), on=["feature_set", "predictor"])
        .select("panel", *CELL_KEYS, "actual", "predicted")
        .collect()
    )
    return [oof]


def prediction_tau_chart(
    prediction: pl.DataFrame, width: int = 220, height: int = 180
) -> alt.Chart:
    """How well each feature set ranks networks it has not seen: Kendall τ between held-out
    predictions and actual final test accuracy, one bar per feature set and predictor, with
    its 95 % bootstrap CI over architecture cells; one panel per split (held-out
    architectures, families, datasets; seeds, where every architecture is on both sides of
    the split and the score shows what leakage would give). `size` (parameter count) and
    `arch` (family and sweep numbers) are the baselines; `init`, the weights at
    initialisation, is the control: a set that does no better than it says the architecture,
    not learning.
    """
    rows = (
        prediction.filter(pl.col("epoch") == "final")
        .with_columns(_finite("tau"), _finite("tau_low"), _finite("tau_high"))
        .drop_nulls("tau")
        .select("split", "feature_set", "predictor", "tau", "tau_low", "tau_high")
    )
    if rows.height == 0:
        return no_data("too few cells for a split", width, height)
    sets = list(dict.fromkeys(rows["feature_set"].to_list()))
    lowest = rows.select(pl.min_horizontal("tau", "tau_low").min()).item()
    low = min(-0.2, math.floor(lowest * 10) / 10)  # every CI inside the axis
    x = alt.X("feature_set:N", title=None, sort=sets, axis=alt.Axis(labelAngle=-45))
    base = alt.Chart().encode(x=x, xOffset=alt.XOffset("predictor:N"))
    bars = base.mark_bar().encode(
        y=alt.Y("tau:Q", title="Kendall τ (held out)", scale=alt.Scale(domain=[low, 1])),
        color=alt.Color("predictor:N", title="predictor"),
        tooltip=[
            "feature_set:N",
            "predictor:N",
            alt.Tooltip("tau:Q", format=".3f"),
            alt.Tooltip("tau_low:Q", format=".3f"),
            alt.Tooltip("tau_high:Q", format=".3f"),
        ],
    )
    ci = base.mark_rule(color="black").encode(y="tau_low:Q", y2="tau_high:Q")
    return (
        alt.layer(bars, ci, data=_inline(rows))
        .properties(width=width, height=height)
        .facet(column=alt.Column("split:N", title=None, sort=_order(rows["split"], SPLIT_ORDER)))
    )


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


def _final_maps(frames: dict[str, pl.LazyFrame], settings: dict) -> list[pl.DataFrame]:
    """Only each run's final dumped epoch of the strength maps is read into memory."""
    maps = frames["maps"].filter(pl.col("epoch") == pl.col("epoch").max().over(RUN_KEYS))
    return [maps.collect(), frames["groups"].collect()]


def _distances(frames: dict[str, pl.LazyFrame], settings: dict) -> list[pl.DataFrame]:
    """The run x run distances the heatmap shows, from the final statistics."""
    final = frames["final"].collect()
    return [heatmap_distances(final, settings["hist_range"], settings["max_heatmap_runs"])]


@dataclass(frozen=True)
class Figure:
    """One figure: its name and title, the tables it reads with the columns it needs, the
    chart function that draws it (whose docstring is its caption), the figure settings it
    takes (chart argument -> settings key), and how its inputs are made from the tables
    (default: each table read whole, in the order of `columns`)."""

    name: str
    title: str
    chart: Callable[..., alt.TopLevelMixin]
    columns: dict[str, tuple[str, ...]]
    settings: dict[str, str] = field(default_factory=dict)
    inputs: Callable[[dict[str, pl.LazyFrame], dict], list[pl.DataFrame]] | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def caption(self) -> str:
        return caption(self.chart)


RUN = tuple(CELL_KEYS)
SPECTRAL_INPUTS = ("scope", "scope_type", "kind", "target", "final_test_acc", "alpha",
                   "fit_status", "alpha_null_low", "alpha_null_high", "heavy_tailed")  # fmt: skip
FIGURES: dict[str, Figure] = {
    f.name: f
    for f in [
        Figure(
            "accuracy_vs_params",
            "Accuracy against model size",
            accuracy_vs_params_chart,
            {"groups": (*RUN, "n_params", "final_test_acc", "group")},
        ),
        Figure(
            "statistic_vs_accuracy",
            "A weight statistic against accuracy",
            statistic_vs_accuracy_chart,
            {"final": (*RUN, "scope", "target", "final_test_acc", "group")},
            settings={"statistic": "statistic"},
        ),
        Figure(
            "weight_histograms",
            "Weight distributions, optimal vs suboptimal",
            weight_histograms_chart,
            {"final": ("dataset", "family", "scope", "target", "group", "hist")},
            settings={"hist_range": "hist_range"},
        ),
        Figure(
            "node_strength",
            "Node strength of each weight tensor",
            node_strength_chart,
            {
                "final": (
                    "dataset",
                    "family",
                    "scope",
                    "scope_type",
                    "kind",
                    "target",
                    "group",
                    *STRENGTH_TITLES,
                )
            },
        ),
        Figure(
            "strength_maps",
            "First-layer strength maps of the best and worst models",
            strength_maps_chart,
            {
                "maps": (*RUN_KEYS, "epoch", "channel", "row", "col", "value"),
                "groups": (*RUN, "arch_mean_acc"),
            },
            inputs=_final_maps,
        ),
        Figure(
            "trajectories",
            "How the weights move during training",
            trajectories_chart,
            {"trajectories": ("dataset", "family", "progress", "rel_std", "rel_dist")},
        ),
        Figure(
            "distance_heatmap",
            "Distances between runs' weight distributions",
            distance_heatmap_chart,
            {"final": (*RUN_KEYS, "scope", "target", "status", "final_test_acc", "hist")},
            settings={"max_runs": "max_heatmap_runs"},
            inputs=_distances,
        ),
        Figure(
            "spectral_alpha",
            "Heavy-tailed spectra: α per layer against accuracy, with its null",
            spectral_alpha_chart,
            {"final": (*RUN, *SPECTRAL_INPUTS)},
        ),
        Figure(
            "prediction_scatter",
            "Held-out predictions of test accuracy",
            prediction_scatter_chart,
            {
                "predictions_oof": (
                    *RUN,
                    "feature_set",
                    "predictor",
                    "split",
                    "epoch",
                    "actual",
                    "predicted",
                ),
                "prediction": ("feature_set", "predictor", "split", "epoch", "tau"),
            },
            inputs=_scatter_inputs,
        ),
        Figure(
            "prediction_tau",
            "How well each feature set ranks unseen networks",
            prediction_tau_chart,
            {
                "prediction": (
                    "feature_set",
                    "predictor",
                    "split",
                    "epoch",
                    "tau",
                    "tau_low",
                    "tau_high",
                )
            },
        ),
    ]
}


def draw(
    name: str, tables: dict[str, pl.DataFrame | pl.LazyFrame], settings: dict
) -> alt.TopLevelMixin:
    """Figure `name` from its tables (frames or lazy scans) and the figure settings (width,
    height, hist_range and the keys its record names). The input guard of every figure: a
    table without rows gives a "no data" chart, a missing column a ValueError naming it."""
    fig = FIGURES[name]
    size = {"width": settings["width"], "height": settings["height"]}
    frames = {t: tables[t].lazy() for t in fig.tables}
    for table, columns in fig.columns.items():
        if frames[table].select(pl.len()).collect().item() == 0:
            return no_data(f"no rows in {table}", **size)
        _require(frames[table].collect_schema(), columns, f"{name}({table})")
    inputs = fig.inputs(frames, settings) if fig.inputs else [f.collect() for f in frames.values()]
    extra = {arg: settings[key] for arg, key in fig.settings.items()}
    return fig.chart(*inputs, **extra, **size)
