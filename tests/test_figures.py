"""The figures: each builds from small synthetic frames, embeds aggregates (not runs or
weights) where it can, copes with empty input, and renders; save_chart writes offline files."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import vl_convert

from weightzoo import figures, vega
from weightzoo.tables import RUN_KEYS

DATASETS = ("digits", "mnist")
FAMILIES = ("mlp", "cnn", "vit")
WIDTHS = (1, 4, 16)  # three architectures per family: suboptimal, intermediate, optimal
GROUP_OF = {0: "suboptimal", 1: "intermediate", 2: "optimal"}
TENSORS = {
    "mlp": ["hidden.0.weight", "head.weight"],
    "cnn": ["blocks.0.conv.weight", "blocks.1.conv.weight", "head.weight"],
    "vit": [
        "patch_embed.proj.weight",
        "blocks.0.attn.q.weight",
        "blocks.0.mlp.fc1.weight",
        "head.weight",
    ],
}
MAP_SHAPES = {"mlp": (1, 4, 4), "vit": (2, 2, 2)}  # MLP: a 1x4x4 image; ViT: a 2-channel 2x2 patch
BINS = 20
HIST_RANGE = (-1.0, 1.0)
FINAL_EPOCH = 10


# --------------------------------------------------------------------------------------------
# Synthetic inputs, shaped like the tables of weightzoo.stats / weightzoo.analysis
# --------------------------------------------------------------------------------------------


def make_groups(seeds: int = 3, datasets=DATASETS) -> pl.DataFrame:
    """One row per run: accuracy 0.1 / 0.5 / 0.9 (+ 0.01 * seed) for widths 1 / 4 / 16."""
    rows = []
    for dataset in datasets:
        for family in FAMILIES:
            for a, width in enumerate(WIDTHS):
                for seed in range(seeds):
                    rows.append(
                        {
                            "dataset": dataset,
                            "family": family,
                            "arch": f"{family}-w{width}",
                            "setting": "default",
                            "seed": seed,
                            "n_params": 100 * 10**a,
                            "final_test_acc": 0.1 + 0.4 * a + 0.01 * seed,
                            "status": "ok",
                            "group": GROUP_OF[a],
                        }
                    )
    runs = pl.DataFrame(rows)
    keys = ["dataset", "family", "arch"]
    return runs.with_columns(
        arch_mean_acc=pl.col("final_test_acc").mean().over(keys),
    ).with_columns(best_arch_acc=pl.col("arch_mean_acc").max().over("dataset", "family"))


def gaussian_hist(sigma: float) -> list[float]:
    """A normalised histogram of N(0, sigma) on HIST_RANGE; tails far out are exactly 0."""
    lo, hi = HIST_RANGE
    centres = lo + (np.arange(BINS) + 0.5) * (hi - lo) / BINS
    h = np.exp(-0.5 * (centres / sigma) ** 2)
    h[h < 1e-9] = 0
    return (h / h.sum()).astype(np.float32).tolist()


def make_final(groups: pl.DataFrame) -> pl.DataFrame:
    """Final-epoch statistics: the pool and every weight tensor, targets w and delta. The
    histograms depend only on the group (optimal narrow, suboptimal wide; delta narrower)."""
    sigma = {"optimal": 0.1, "intermediate": 0.15, "suboptimal": 0.2}
    rows = []
    for run in groups.iter_rows(named=True):
        acc = run["final_test_acc"]
        scopes = [("all_weights", "pool", "pool")] + [
            (t, "tensor", "weight") for t in TENSORS[run["family"]]
        ]
        for k, (scope, scope_type, kind) in enumerate(scopes):
            for target, shrink in (("w", 1.0), ("delta", 0.5)):
                rows.append(
                    {
                        **{c: run[c] for c in ("dataset", "family", "arch", "setting", "seed")},
                        "epoch": FINAL_EPOCH,
                        "scope": scope,
                        "scope_type": scope_type,
                        "kind": kind,
                        "layer": "",
                        "target": target,
                        "count": 100,
                        "mean": 0.0,
                        "std": shrink * (0.05 + 0.1 * acc),
                        "in_abs_mean": (k + 1) * (1 + acc),
                        "out_abs_mean": (k + 1) * (2 + acc) * 10 ** run["seed"],
                        "hist": gaussian_hist(shrink * sigma[run["group"]]),
                        "final_test_acc": acc,
                        "group": run["group"],
                        "status": run["status"],
                        "n_params": run["n_params"],
                        "epochs_run": FINAL_EPOCH,
                        **spectral_fit(kind, target, k, acc),
                    }
                )
    return pl.DataFrame(rows).with_columns(pl.col("hist").cast(pl.List(pl.Float32)))


def spectral_fit(kind: str, target: str, k: int, acc: float) -> dict:
    """Heavy-tail fit columns: weight matrices of w only; the first tensor's fit is flagged
    (too few eigenvalues), the others valid with alpha = 2 + 3 * acc against a null of 4-6."""
    if kind != "weight" or target != "w":
        return {
            "alpha": None,
            "fit_status": None,
            "alpha_null_low": None,
            "alpha_null_high": None,
            "heavy_tailed": None,
        }
    status = "too_few_evals" if k == 1 else "ok"
    alpha = 2 + 3 * acc
    return {
        "alpha": alpha,
        "fit_status": status,
        "alpha_null_low": 4.0,
        "alpha_null_high": 6.0,
        "heavy_tailed": status == "ok" and alpha < 4.0,
    }


def make_maps(groups: pl.DataFrame, epochs=(FINAL_EPOCH,)) -> pl.DataFrame:
    """First-layer maps of the MLP and ViT runs: value = (seed + 1) * (pixel index + 1)."""
    frames = []
    for run in groups.filter(pl.col("family").is_in(list(MAP_SHAPES))).iter_rows(named=True):
        shape = MAP_SHAPES[run["family"]]
        channel, row, col = np.indices(shape).reshape(3, -1)
        value = (run["seed"] + 1) * (np.arange(channel.size) + 1.0)
        for epoch in epochs:
            frames.append(
                pl.DataFrame(
                    {"channel": channel, "row": row, "col": col, "value": value}
                ).with_columns(
                    dataset=pl.lit(run["dataset"]),
                    family=pl.lit(run["family"]),
                    arch=pl.lit(run["arch"]),
                    setting=pl.lit(run["setting"]),
                    seed=pl.lit(run["seed"]),
                    epoch=pl.lit(epoch),
                    tensor=pl.lit("first"),
                )
            )
    empty = {"channel": pl.Int64, "row": pl.Int64, "col": pl.Int64, "value": pl.Float64}
    return pl.concat(frames) if frames else pl.DataFrame(schema=empty)


def make_medians(progress=(0.0, 0.25, 0.5, 0.75, 1.0)) -> pl.DataFrame:
    rows = [
        {
            "dataset": d,
            "family": f,
            "progress": p,
            "rel_std": 1 + (i + 1) * 0.2 * p,
            "rel_dist": 0.5 * p,
            "runs": 9,
        }
        for d in (*DATASETS, "all")
        for i, f in enumerate(FAMILIES)
        for p in progress
    ]
    return pl.DataFrame(rows)


def make_distances(n: int, seed: int = 0) -> pl.DataFrame:
    """A full n x n W1 matrix of n runs with shuffled accuracies; w1 = |acc_a - acc_b|."""
    rng = np.random.default_rng(seed)
    acc = rng.permutation(n) / n
    runs = [f"mlp-w{i % 7}/s{i}" for i in range(n)]
    a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a, b = a.ravel(), b.ravel()
    return pl.DataFrame(
        {
            "dataset": "digits",
            "family": "mlp",
            "run_a": np.array(runs)[a],
            "run_b": np.array(runs)[b],
            "acc_a": acc[a],
            "acc_b": acc[b],
            "w1": np.abs(acc[a] - acc[b]),
        }
    )


PREDICTION_SETS = ("size", "arch", "layer7", "size+layer7")


def make_prediction() -> pl.DataFrame:
    """The prediction table's columns a figure reads: τ rises along the ladder; the dataset
    split has too few cells (null numbers, a note)."""
    rows = []
    for split in ("architecture", "dataset", "seed"):
        # the ranking by size fits nothing (no folds, no held-out rows) and ranks best here:
        # the scatter's best set must still be a fitted one
        tau = None if split == "dataset" else 0.99
        rows.append(
            {
                "feature_set": "size_rank",
                "predictor": "rank",
                "split": split,
                "epoch": "final",
                "n_folds": None,
                "tau": tau,
                "tau_low": None if tau is None else tau - 0.1,
                "tau_high": tau,
            }
        )
        for i, fset in enumerate(PREDICTION_SETS):
            for predictor in ("ridge", "hgb"):
                tau = None if split == "dataset" else 0.5 + 0.1 * i + 0.02 * (predictor == "hgb")
                rows.append(
                    {
                        "feature_set": fset,
                        "predictor": predictor,
                        "split": split,
                        "epoch": "final",
                        "n_folds": 5,
                        "tau": tau,
                        "tau_low": None if tau is None else tau - 0.1,
                        "tau_high": None if tau is None else tau + 0.05,
                    }
                )
    return pl.DataFrame(
        rows,
        schema_overrides={
            "tau": pl.Float64,
            "tau_low": pl.Float64,
            "tau_high": pl.Float64,
            "n_folds": pl.Int64,
        },
    )


def make_oof(groups: pl.DataFrame) -> pl.DataFrame:
    """Held-out predictions of every run for every row: predicted = actual + the set's error."""
    frames = [
        groups.select(*RUN_KEYS, actual="final_test_acc").with_columns(
            feature_set=pl.lit(fset),
            predictor=pl.lit(p),
            split=pl.lit(split),
            epoch=pl.lit("final"),
            predicted=pl.col("actual") + 0.3 / (i + 1),
        )
        for split in ("architecture", "seed")
        for i, fset in enumerate(PREDICTION_SETS)
        for p in ("ridge", "hgb")
    ]
    return pl.concat(frames)


def inline_tables(spec: dict) -> dict[str, pl.DataFrame]:
    """Every inline dataset of a spec, by name (Altair collects them under `datasets`)."""
    out = {}
    for name, values in spec.get("datasets", {}).items():
        if isinstance(values, str):
            out[name] = pl.read_csv(io.StringIO(values))
        else:
            out[name] = pl.DataFrame(values)
    return out


def data_of(spec: dict, part: dict) -> pl.DataFrame:
    """The inline dataset a (sub)chart of the spec refers to by name."""
    return inline_tables(spec)[part["data"]["name"]]


def table_with(spec: dict, *columns: str) -> pl.DataFrame:
    """The one inline dataset that has all these columns."""
    found = [t for t in inline_tables(spec).values() if set(columns) <= set(t.columns)]
    assert len(found) == 1, f"{len(found)} inline datasets have columns {columns}"
    return found[0]


def expr_list(expr: str) -> list:
    """The JSON array a figure indexes in a Vega expression: '["a", "b"][datum.value]'."""
    return json.loads(expr[: expr.rindex("[datum.")])


def render_svg(spec: dict) -> str:
    return vl_convert.vegalite_to_svg(spec, vl_version=vega.VL_VERSION)


@pytest.fixture(scope="module")
def groups() -> pl.DataFrame:
    return make_groups()


@pytest.fixture(scope="module")
def final(groups) -> pl.DataFrame:
    return make_final(groups)


SETTINGS = {
    "width": 200,
    "height": 150,
    "statistic": "std",
    "hist_range": HIST_RANGE,
    "max_heatmap_runs": 80,
}


def build_all(groups: pl.DataFrame, final: pl.DataFrame, empty: bool = False) -> dict:
    """Every figure of FIGURES, built through the registry from the synthetic zoo (all inputs
    with no rows if `empty`: the frames keep their columns)."""
    if empty:
        groups, final = groups.head(0), final.head(0)
    rows = 0 if empty else -1
    tables = {
        "groups": groups,
        "final": final,
        "maps": make_maps(groups),
        "trajectories": make_medians().head(rows),
        "prediction": make_prediction().head(rows),
        "predictions_oof": make_oof(groups).head(rows),
    }
    return {name: figures.draw(name, tables, SETTINGS) for name in figures.FIGURES}


# --------------------------------------------------------------------------------------------
# Each figure
# --------------------------------------------------------------------------------------------


def test_accuracy_vs_params_has_one_point_per_architecture(groups):
    spec = figures.accuracy_vs_params_chart(groups, 200, 150).to_dict()
    archs = table_with(spec, "arch", "acc_mean")
    assert archs.height == len(DATASETS) * len(FAMILIES) * len(WIDTHS)  # not one per seed
    best = archs.filter(dataset="mnist", arch="cnn-w16").row(0, named=True)
    assert best["acc_mean"] == pytest.approx(0.91)
    assert (best["acc_min"], best["acc_max"], best["seeds"]) == (0.9, 0.92, 3)
    assert spec["facet"]["column"]["sort"] == list(FAMILIES)


def test_statistic_vs_accuracy_has_one_point_per_healthy_run(groups):
    runs = groups.with_columns(
        status=pl.when(pl.col("seed") == 0, arch="mlp-w1")
        .then(pl.lit("diverged"))
        .otherwise("status")
    )
    spec = figures.statistic_vs_accuracy_chart(make_final(runs), "std", 200, 150).to_dict()
    points = table_with(spec, "acc", "value")
    assert points.height == groups.height - len(DATASETS)  # the diverged runs are left out
    assert set(points.columns) == {"dataset", "family", "group", "arch", "acc", "value"}
    with pytest.raises(ValueError, match="no_such_stat"):
        figures.statistic_vs_accuracy_chart(make_final(runs), "no_such_stat")


def test_statistic_vs_accuracy_stays_small_with_20000_runs():
    n = 20_000
    rng = np.random.default_rng(0)
    acc = rng.uniform(0.1, 0.99, n)
    final = pl.DataFrame(
        {
            "dataset": np.array(["mnist", "fashion_mnist", "cifar10"])[np.arange(n) % 3],
            "family": np.array(FAMILIES)[(np.arange(n) // 3) % 3],
            "arch": [f"mlp-d{i % 4 + 1}-w{i % 1000}" for i in range(n)],
            "seed": np.arange(n) % 30,
            "scope": "all_weights",
            "target": "w",
            "status": "ok",
            "final_test_acc": acc,
            "group": np.where(
                acc > 0.9, "optimal", np.where(acc < 0.5, "suboptimal", "intermediate")
            ),
            "std": rng.normal(0.05, 0.01, n),
        }
    )
    spec = figures.statistic_vs_accuracy_chart(final, "std", 200, 150).to_dict()
    assert table_with(spec, "acc", "value").height == n
    assert len(json.dumps(spec)) < 3_000_000


def test_weight_histograms_average_each_group_and_trim_empty_bins(final):
    spec = figures.weight_histograms_chart(final, HIST_RANGE, 200, 120).to_dict()
    assert len(spec["vconcat"]) == 2  # w above, delta below
    w_rows, delta_rows = (data_of(spec, part) for part in spec["vconcat"])
    for rows in (w_rows, delta_rows):
        assert set(rows["group"]) == {"optimal", "suboptimal"}  # intermediate is not drawn
        assert rows.height < len(DATASETS) * len(FAMILIES) * 2 * BINS  # bins were trimmed
        assert rows["runs"].unique().to_list() == [3]
    # delta is narrower (sigma 0.05, 0.1) than w (0.1, 0.2): fewer bins survive trimming
    assert delta_rows.height < w_rows.height
    # the mean of identical histograms is that histogram, at the bin centres lo + (i + .5) w
    width = (HIST_RANGE[1] - HIST_RANGE[0]) / BINS
    centres = (HIST_RANGE[0] + (np.arange(BINS) + 0.5) * width).round(4)
    expected = dict(zip(centres, gaussian_hist(0.1), strict=True))
    opt = w_rows.filter(dataset="digits", family="vit", group="optimal")
    for value, share in opt.select("value", "share").iter_rows():
        assert share == pytest.approx(expected[round(value, 4)], rel=1e-3)
    assert opt["share"].sum() == pytest.approx(1, abs=1e-3)  # only ~empty bins were trimmed


def test_weight_histograms_data_do_not_grow_with_runs():
    small = figures.weight_histograms_chart(make_final(make_groups(seeds=2)), HIST_RANGE).to_dict()
    large = figures.weight_histograms_chart(make_final(make_groups(seeds=40)), HIST_RANGE).to_dict()
    rows = [sum(t.height for t in inline_tables(s).values()) for s in (small, large)]
    assert rows[0] == rows[1]
    assert len(json.dumps(large)) < 1.05 * len(json.dumps(small))


def test_weight_histograms_with_a_missing_group(final):
    only_optimal = final.filter(pl.col("group") != "suboptimal")
    spec = figures.weight_histograms_chart(only_optimal, HIST_RANGE).to_dict()
    assert set(data_of(spec, spec["vconcat"][0])["group"]) == {"optimal"}
    none = figures.weight_histograms_chart(final.filter(group="intermediate"), HIST_RANGE).to_dict()
    assert "no data" in json.dumps(none)


def test_node_strength_summarises_runs_as_boxes(final):
    spec = figures.node_strength_chart(final, 200, 150).to_dict()
    boxes = [data_of(spec, part) for part in spec["vconcat"]]  # in-, then out-strength
    n_tensors = sum(len(t) for t in TENSORS.values())
    for table in boxes:  # one box per (dataset, tensor, group), per measure
        assert table.height == len(DATASETS) * n_tensors * len(GROUP_OF)
    in_box = boxes[0].filter(dataset="digits", scope="head.weight", family="mlp", group="optimal")
    # in_abs_mean of head.weight (scope k = 2) is 3 * (1 + acc), acc = 0.90, 0.91, 0.92
    assert in_box.row(0, named=True)["median"] == pytest.approx(3 * 1.91)
    assert in_box["runs"].item() == 3
    # out-strengths span 3 decades (10 ** seed): that panel's y axis is logarithmic
    scales = [
        layer["encoding"]["y"].get("scale", {}).get("type")
        for chart in spec["vconcat"]
        for layer in chart["spec"]["layer"][:1]
    ]
    assert scales == [None, "log"]
    # the groups' boxes sit side by side in each panel (a shared xOffset would stack them)
    assert spec["vconcat"][0]["resolve"]["scale"]["xOffset"] == "independent"
    x_sort = spec["vconcat"][0]["spec"]["layer"][0]["encoding"]["x"]["sort"]
    assert x_sort.index("patch_embed.proj.weight") < x_sort.index("blocks.0.attn.q.weight")
    assert x_sort.index("blocks.1.conv.weight") < x_sort.index("head.weight") == len(x_sort) - 1


def test_strength_maps_show_the_best_and_worst_architecture_averaged_over_seeds(groups):
    maps = make_maps(groups, epochs=(0, FINAL_EPOCH))  # epoch 0 must be ignored
    spec = figures.strength_maps_chart(maps, groups, 80, 80).to_dict()
    pixels = table_with(spec, "panel", "row", "col", "value")
    labels = expr_list(spec["facet"]["row"]["header"]["labelExpr"])  # panel i: labels[i]
    pixels_per_arch = {f: math.prod(s) for f, s in MAP_SHAPES.items()}
    assert pixels.height == len(DATASETS) * 2 * sum(pixels_per_arch.values())
    assert labels[:2] == [
        "digits · mlp · best: mlp-w16 (0.91)",
        "digits · mlp · worst: mlp-w1 (0.11)",
    ]
    assert len(labels) == len(DATASETS) * len(MAP_SHAPES) * 2 == pixels["panel"].n_unique()
    # each architecture's map is divided by its maximum: the last pixel is 1, the first 1/16
    first = pixels.filter(panel=0).sort("channel", "row", "col")
    assert first["value"].to_list() == pytest.approx((np.arange(16) + 1) / 16, rel=1e-3)
    assert sorted(pixels.filter(panel=2)["channel"].unique()) == [0, 1]  # ViT: two channels


def test_trajectories_put_the_pooled_dataset_last():
    spec = figures.trajectories_chart(make_medians(), 200, 150).to_dict()
    points = table_with(spec, "progress", "value")
    assert points.height == (len(DATASETS) + 1) * len(FAMILIES) * 5 * 2
    assert spec["facet"]["column"]["sort"] == [*DATASETS, "all"]


def test_distance_heatmap_orders_runs_by_accuracy():
    distances = make_distances(12)
    spec = figures.distance_heatmap_chart(distances, 300, 300).to_dict()
    cells = table_with(spec, "a", "b", "w1")
    assert cells.height == 12 * 12
    order = expr_list(spec["encoding"]["x"]["axis"]["labelExpr"])  # cell i: order[i]
    accs = dict(distances.select("run_a", "acc_a").unique().iter_rows())
    assert [accs[r] for r in order] == sorted(accs.values())
    assert spec["encoding"]["x"]["sort"] == "ascending"
    # a cell's w1 is the distance between the runs its indices name: |acc_a - acc_b|
    for a, b, w1 in cells.sample(10, seed=0).iter_rows():
        assert w1 == pytest.approx(abs(accs[order[a]] - accs[order[b]]), abs=1e-4)


def test_distance_heatmap_merges_runs_beyond_max_runs():
    distances = make_distances(100)
    spec = figures.distance_heatmap_chart(distances, 300, 300, max_runs=10).to_dict()
    cells = table_with(spec, "a", "b", "w1")
    labels = expr_list(spec["encoding"]["x"]["axis"]["labelExpr"])
    assert (cells.height, len(labels)) == (100, 10)
    # runs 0-9 by accuracy (acc 0.00-0.09) form group 0: their mean distance to each other,
    # over distinct pairs, is the mean |i - j| / 100 = 11/3 / 100
    assert cells.filter(a=0, b=0)["w1"].item() == pytest.approx(11 / 300, rel=1e-3)
    assert labels[0] == "#0 acc 0.0–0.09"


def test_distance_heatmap_refuses_several_subsets():
    mixed = pl.concat([make_distances(3), make_distances(3).with_columns(family=pl.lit("cnn"))])
    with pytest.raises(ValueError, match="digits/cnn, digits/mlp"):
        figures.distance_heatmap_chart(mixed)


def test_prediction_scatter_shows_size_and_the_best_set_per_cell(groups):
    tables = {"prediction": make_prediction(), "predictions_oof": make_oof(groups)}
    spec = vega.chart_spec(figures.draw("prediction_scatter", tables, SETTINGS))
    cells = table_with(spec, "panel", "actual", "predicted")
    # one point per architecture cell (datasets x families x widths), in two panels
    assert cells.height == 2 * len(DATASETS) * len(FAMILIES) * len(WIDTHS)
    assert sorted(cells["panel"].unique()) == [
        "size (hgb): τ = 0.52",
        "size+layer7 (hgb): τ = 0.82",
    ]
    best = cells.filter(pl.col("panel").str.starts_with("size+layer7"))
    assert (best["predicted"] - best["actual"]).round(6).unique().to_list() == [0.075]


def test_prediction_tau_has_a_bar_per_set_and_predictor_of_each_split_with_numbers():
    spec = vega.chart_spec(figures.prediction_tau_chart(make_prediction()))
    bars = table_with(spec, "feature_set", "tau", "tau_low")
    # 2 splits with numbers (dataset: too few cells, left out) x (4 sets x 2 predictors + the
    # ranking by size, a bar of its own)
    assert bars.height == 2 * (len(PREDICTION_SETS) * 2 + 1)
    assert set(bars["split"]) == {"architecture", "seed"}
    assert bars.filter(feature_set="size_rank")["predictor"].to_list() == ["rank", "rank"]
    empty = make_prediction().with_columns(tau=pl.lit(None, pl.Float64))
    assert "too few cells" in json.dumps(figures.prediction_tau_chart(empty).to_dict())


# --------------------------------------------------------------------------------------------
# All figures
# --------------------------------------------------------------------------------------------


def test_spectral_alpha_has_one_point_per_architecture_and_layer_with_flags(final):
    spec = figures.spectral_alpha_chart(final, 200, 150).to_dict()
    points = table_with(spec, "acc", "alpha", "null_low", "fit")
    # per dataset x family x architecture: the layer positions of its weight tensors
    per_arch = {"mlp": 2, "cnn": 3, "vit": 3}  # mlp: first, last; cnn/vit: first, middle, last
    assert points.height == len(DATASETS) * len(WIDTHS) * sum(per_arch.values())
    first = points.filter(layer_position="first")
    assert set(first["fit"]) == {"flagged"}  # the first tensor's fits are too_few_evals
    assert set(points.filter(layer_position="last")["fit"]) == {"valid"}
    assert (points["null_low"] == 4.0).all() and (points["null_high"] == 6.0).all()
    best = points.filter(arch="mlp-w16", dataset="digits", layer_position="last")
    assert best["alpha"][0] == pytest.approx(2 + 3 * 0.91)  # mean over seeds 0.9, 0.91, 0.92


def test_every_figure_is_listed_with_a_title_and_a_caption(groups, final):
    assert set(figures.FIGURES) == set(build_all(groups, final, empty=True))
    for fig in figures.FIGURES.values():
        assert fig.title and len(figures.caption(fig.chart)) > 100


@pytest.mark.parametrize(
    "build",
    [
        lambda name=name: figures.draw(
            name, {t: pl.DataFrame() for t in figures.FIGURES[name].tables}, SETTINGS
        )
        for name in figures.FIGURES
    ],
    ids=list(figures.FIGURES),
)
def test_empty_input_gives_a_no_data_chart(build):
    spec = build().to_dict()
    assert "no data" in json.dumps(spec)
    assert render_svg(spec).startswith("<svg")


def test_empty_frames_with_columns_give_no_data_charts(groups, final):
    for name, chart in build_all(groups, final, empty=True).items():
        assert "no data" in json.dumps(chart.to_dict()), name


def test_every_figure_renders(groups, final):
    for name, chart in build_all(groups, final).items():
        spec = vega.chart_spec(chart)
        assert "no data" not in json.dumps(spec), name
        svg = render_svg(spec)
        assert svg.startswith("<svg") and svg.count("<path") > 10, name


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_save_chart_writes_offline_html_and_an_image(tmp_path: Path, groups, suffix):
    chart = figures.accuracy_vs_params_chart(groups, 200, 150)
    html, image = vega.save_chart(chart, tmp_path / "f.html", tmp_path / f"f{suffix}")
    page = html.read_text()
    assert "vegaEmbed(" in page and "<script src" not in page.replace(" ", "")
    vega.check_offline(page)  # no script, style sheet or image from the network
    data = image.read_bytes()
    if suffix == ".svg":
        assert data.startswith(b"<svg")
    else:
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["f.html", f"f{suffix}"])


def test_save_chart_refuses_other_image_formats(tmp_path: Path, groups):
    with pytest.raises(ValueError, match=r"svg or \.png"):
        chart = figures.accuracy_vs_params_chart(groups)
        vega.save_chart(chart, tmp_path / "f.html", tmp_path / "f.gif")
    assert not list(tmp_path.iterdir())


def test_check_offline_catches_a_cdn_script():
    with pytest.raises(RuntimeError, match="network"):
        vega.check_offline('<script src="https://cdn.jsdelivr.net/npm/vega@6"></script>')
    vega.check_offline('<a href="https://example.org">a link is fine</a>')
