"""Accuracy predicted from the weights: features, held-out splits, bootstrap metrics and the
increments over size, on synthetic zoos whose answers are known."""

from __future__ import annotations

import copy
import itertools
import json
import math
import re

import numpy as np
import polars as pl
import pytest
import yaml
from conftest import ROOT, SCHEMA
from scipy import stats as sps

from weightzoo import prediction as P
from weightzoo.config import ConfigError, validate_config
from weightzoo.zoo import SPLIT_KINDS, fold_ids

DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["analysis"]["prediction"]
TENSORS = [
    ("hidden.0.weight", "weight"),
    ("hidden.0.bias", "bias"),
    ("head.weight", "weight"),
    ("head.bias", "bias"),
]
ARCHS = {"mlp": "mlp-d1-w{}", "cnn": "cnn-b1-c{}", "vit": "vit-d1-h1-e{}-p2"}
FINAL = 10


def quick_config(**changes) -> dict:
    """The default prediction config, made quick: ridge, no early epochs, 199 resamples."""
    cfg = copy.deepcopy(DEFAULT)
    cfg.update(
        predictors=["ridge"],
        bootstrap=199,
        positions=1,
        early={**cfg["early"], "epochs": []},
        headline={"feature_set": "size", "predictor": "ridge"},
    )
    cfg.update(changes)
    return cfg


SCOPES = [(t, "tensor", k) for t, k in TENSORS] + [("all_weights", "pool", "pool")]
DUMPS = list(itertools.product((0, FINAL), ("w", "delta"), SCOPES))


def synthetic_zoo(
    beta: float, cells=12, seeds=3, datasets=("digits",), seed=0, cell_noise=1.0, run_noise=1.0
):
    """Runs and statistics of a zoo whose accuracy is a sigmoid of log size plus `beta` x a
    per-cell statistic z (+ seed noise), z planted as the std of the first weight tensor at
    the final epoch. Every other statistic is a fixed multiple of log size (as initial
    scales follow fan-in) plus `cell_noise` x noise of its cell and `run_noise` x noise of
    its run."""
    rng = np.random.default_rng(seed)
    slopes = rng.normal(size=9)
    runs, stats = [], []
    for dataset, (f, family), c in itertools.product(datasets, enumerate(ARCHS), range(cells)):
        z, of_cell = rng.normal(), cell_noise * rng.normal(size=(len(DUMPS), 9))
        n_params = int(100 * 2 ** (c * 10 / cells + f / 3))
        size_term = 0.5 / (1 + np.exp(-(np.log10(n_params) - 3) * 3))
        for s in range(seeds):
            acc = np.clip(0.3 + size_term + beta * 0.15 * z + 0.03 * rng.normal(), 0.01, 1)
            keys = {
                "dataset": dataset,
                "family": family,
                "arch": ARCHS[family].format(c + 1),
                "seed": s,
            }
            runs.append(
                {
                    **keys,
                    "n_params": n_params,
                    "status": "ok",
                    "final_test_acc": float(acc),
                    "epochs_run": FINAL,
                }
            )
            of_run = run_noise * rng.normal(size=of_cell.shape)
            drawn = slopes * np.log10(n_params) + of_cell + of_run
            for (epoch, target, (scope, scope_type, kind)), v in zip(DUMPS, drawn, strict=True):
                values = dict(zip(P.STATS7 + P.SPECTRAL, v, strict=True))
                if (scope, epoch, target) == ("hidden.0.weight", FINAL, "w"):
                    values["std"] = 0.1 + 0.02 * (z + 0.05 * rng.normal())
                stats.append(
                    {
                        **keys,
                        "epoch": epoch,
                        "scope": scope,
                        "scope_type": scope_type,
                        "kind": kind,
                        "target": target,
                        **values,
                    }
                )
    ints = pl.col("seed", "epoch").cast(pl.Int32)
    return pl.DataFrame(runs).with_columns(pl.col("seed").cast(pl.Int32)), pl.DataFrame(
        stats
    ).with_columns(ints)


def row(table: pl.DataFrame, **keys) -> dict:
    return table.filter(**keys).row(0, named=True)


# --------------------------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [1.5, -1.5])
def test_a_statistic_beyond_size_is_found_with_its_sign(beta):
    runs, stats = synthetic_zoo(beta)
    cfg = quick_config(feature_sets=["size", "size+layer7"], splits=["architecture"])
    table, oof = P.predict_accuracy(stats.lazy(), runs, P.PredictionConfig.from_config(cfg))
    full = row(table, feature_set="size+layer7", predictor="ridge", epoch="final")
    assert full["tau_over_size"] > 0.1 and full["tau_over_size_low"] > 0
    assert full["r2_over_size"] > 0 and full["r2_over_size_low"] > 0
    assert full["n_cells"] == 36 and full["n_runs"] == 108 and full["n_folds"] == 5
    # the direction: what the weights add to size follows the planted statistic's sign
    preds = oof.filter(pl.col("feature_set").is_in(["size", "size+layer7"])).pivot(
        on="feature_set", index=["arch", "family", "seed"], values="predicted"
    )
    z = stats.filter(scope="hidden.0.weight", epoch=FINAL, target="w").select(
        "arch", "family", "seed", "std"
    )
    added = preds.join(z, on=["arch", "family", "seed"])
    rho = sps.spearmanr(added["size+layer7"] - added["size"], added["std"]).statistic
    assert np.sign(rho) == np.sign(beta) and abs(rho) > 0.5


def test_gradient_boosting_finds_the_statistic_too():
    runs, stats = synthetic_zoo(1.0)
    cfg = quick_config(
        feature_sets=["size", "size+layer7"],
        splits=["architecture"],
        predictors=["hgb"],
        headline={"feature_set": "size", "predictor": "hgb"},
    )
    table, _ = P.predict_accuracy(stats.lazy(), runs, P.PredictionConfig.from_config(cfg))
    full = row(table, feature_set="size+layer7")
    assert full["tau_over_size_low"] > 0
    assert set(re.findall(r'"(\w+)":', full["hyperparameters"])) == {"max_leaf_nodes", "max_iter"}


@pytest.mark.parametrize("predictor", ["ridge", "hgb"])
def test_weights_add_nothing_when_accuracy_depends_on_size_only(predictor):
    # the statistics re-encode size (plus a little noise of each cell), as initial scales do
    runs, stats = synthetic_zoo(0.0, seed=4, cell_noise=0.05, run_noise=0.0)
    cfg = quick_config(
        feature_sets=["size", "size+global7"],
        splits=["architecture"],
        predictors=[predictor],
        headline={"feature_set": "size", "predictor": predictor},
    )
    table, _ = P.predict_accuracy(stats.lazy(), runs, P.PredictionConfig.from_config(cfg))
    full = row(table, feature_set="size+global7")
    # no gain over parameter count at its strongest (a fitted model may rank a little worse
    # than the plain ranking by size: the increment may fall below 0, never clearly above)
    assert full["tau_over_size"] < 0.02 and full["tau_over_size_low"] < 0
    assert full["r2_over_size_low"] < 0 < full["r2_over_size_high"]
    size = row(table, feature_set="size")
    assert size["tau"] > 0.7  # size itself ranks the networks
    rank = row(table, feature_set=P.SIZE_RANK)
    # size's own increment is over the strongest size baseline: 0 when it is that, else below
    assert size["tau_over_size"] == pytest.approx(min(0.0, size["tau"] - rank["tau"]))


def test_too_few_cells_are_said_per_row_not_failed():
    runs, stats = synthetic_zoo(1.0, cells=2, seeds=1)
    runs, stats = (t.filter(family="mlp") for t in (runs, stats))
    cfg = quick_config(splits=["architecture", "family", "dataset", "seed"])
    table, oof = P.predict_accuracy(stats.lazy(), runs, P.PredictionConfig.from_config(cfg))
    assert table.height == len(P.plan(P.PredictionConfig.from_config(cfg), ["final"]))
    assert table["tau"].is_null().all() and oof.height == 0
    assert all(note.startswith(P.TOO_FEW) for note in table["note"])
    assert P.headline(table).startswith("No held-out prediction could be made: too few cells")
    assert "No numbers: too few cells for a split" in P.prediction_markdown(
        table, P.PredictionConfig.from_config(cfg)
    )


def test_size_rank_is_kendall_tau_of_accuracy_and_parameter_count():
    runs, stats = synthetic_zoo(0.0, cells=8, seeds=2)
    cfg = P.PredictionConfig.from_config(quick_config(splits=["architecture"]))
    table, oof = P.predict_accuracy(stats.lazy(), runs, cfg)
    rank = row(table, feature_set=P.SIZE_RANK, epoch="final")
    ok = runs.sort("dataset", "family", "arch", "seed")
    tau = sps.kendalltau(ok["final_test_acc"], ok["n_params"]).statistic
    rho = sps.spearmanr(ok["final_test_acc"], ok["n_params"]).statistic
    assert rank["tau"] == pytest.approx(tau, abs=1e-12)
    assert rank["rho"] == pytest.approx(rho, abs=1e-12)
    assert rank["predictor"] == P.RANK and rank["n_folds"] is None
    assert rank["r2"] is None and rank["mae"] is None and rank["r2_over_size"] is None
    assert rank["tau_low"] < rank["tau"] < rank["tau_high"]
    assert oof.filter(feature_set=P.SIZE_RANK).height == 0  # a ranking, not a prediction


def test_increments_are_over_the_strongest_size_baseline():
    runs, stats = synthetic_zoo(1.0, cells=10, seeds=2)
    cfg = quick_config(feature_sets=["size", "size+layer7"], splits=["architecture"])
    table, _ = P.predict_accuracy(stats.lazy(), runs, P.PredictionConfig.from_config(cfg))
    full = row(table, feature_set="size+layer7")
    bases = {
        "size_rank": row(table, feature_set="size_rank"),
        "size (ridge)": row(table, feature_set="size"),
    }
    strongest_tau = max(bases, key=lambda b: bases[b]["tau"])
    strongest_r2 = "size (ridge)"  # size_rank has no R²
    chosen = json.loads(full["size_baselines"])
    assert chosen["tau"] == strongest_tau and chosen["r2"] == strongest_r2
    assert full["tau_over_size"] == pytest.approx(full["tau"] - bases[strongest_tau]["tau"])
    assert full["rho_over_size"] == pytest.approx(
        full["rho"] - max(b["rho"] for b in bases.values())
    )
    assert full["r2_over_size"] == pytest.approx(full["r2"] - bases["size (ridge)"]["r2"])
    # the ranking by parameter count beats the fitted size baseline here, as in real zoos
    assert bases["size_rank"]["tau"] >= bases["size (ridge)"]["tau"]
    assert strongest_tau in P.headline(table)


def test_a_strongest_baseline_is_taken_over_predictors():
    points = {
        ("final", "cell", "size", "ridge"): {"tau": 0.4, "mae": 0.10},
        ("final", "cell", "size", "hgb"): {"tau": 0.5, "mae": 0.12},
        ("final", "cell", P.SIZE_RANK, P.RANK): {"tau": 0.45, "mae": math.nan},
        ("final", "architecture", "size", "hgb"): {"tau": 0.9, "mae": 0.01},  # another split
    }
    row_ = ("final", "cell", "layer7", "ridge")
    assert P.size_baseline(row_, "tau", points) == ("final", "cell", "size", "hgb")
    assert P.size_baseline(row_, "mae", points) == ("final", "cell", "size", "ridge")
    points[("final", "cell", P.SIZE_RANK, P.RANK)]["tau"] = 0.6
    assert P.baseline_label(P.size_baseline(row_, "tau", points)) == "size_rank"


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def test_an_architecture_split_holds_each_architecture_with_all_its_settings_and_datasets():
    runs, _ = synthetic_zoo(0.0, cells=6, seeds=2, datasets=("digits", "mnist"))
    lr = runs.filter(arch="mlp-d1-w3").with_columns(setting=pl.lit("lr1e-2"))
    runs = pl.concat([runs.with_columns(setting=pl.lit("default")), lr]).sort(
        "dataset", "family", "arch", "setting", "seed"
    )
    arch_folds = fold_ids(runs, "architecture", k=5, seed=1)
    cell_folds = fold_ids(runs, "cell", k=5, seed=1)
    for folds, kind in ((arch_folds, "architecture"), (cell_folds, "cell")):
        sides = runs.with_columns(fold=folds).group_by("arch").agg(pl.col("fold").n_unique())
        if kind == "architecture":  # mlp-d1-w3's 4 cells (2 settings x 2 datasets): one fold
            assert sides["fold"].max() == 1
        else:  # cells of one architecture are dealt apart
            assert sides["fold"].max() > 1
    assert len(np.unique(arch_folds)) == 5 and len(np.unique(cell_folds)) == 5
    assert "every setting, dataset" in SPLIT_KINDS["architecture"]


def test_cell_and_architecture_splits_agree_when_every_architecture_is_one_cell():
    runs, stats = synthetic_zoo(1.0, cells=6, seeds=2)
    cfg = quick_config(feature_sets=["size", "layer7"], splits=["architecture", "cell"])
    table, oof = P.predict_accuracy(stats.lazy(), runs, P.PredictionConfig.from_config(cfg))
    metrics = ["feature_set", "predictor", "tau", "r2", "tau_low", "tau_over_size"]
    a, c = (table.filter(split=s).select(metrics) for s in ("architecture", "cell"))
    assert a.equals(c)
    assert np.array_equal(
        oof.filter(split="architecture")["predicted"], oof.filter(split="cell")["predicted"]
    )


@pytest.mark.parametrize("kind", list(SPLIT_KINDS))
def test_no_cell_is_on_both_sides_of_a_split(kind):
    runs, _ = synthetic_zoo(0.0, cells=7, seeds=4, datasets=("digits", "mnist"))
    runs = runs.sort("dataset", "family", "arch", "seed")
    folds = fold_ids(runs, kind, k=5, seed=3)
    cell = runs.select(pl.concat_str("dataset", "family", "arch")).to_series().to_numpy()
    groups = {"family": runs["family"], "dataset": runs["dataset"]}.get(kind)
    for f in np.unique(folds):
        train, test = set(cell[folds != f]), set(cell[folds == f])
        if kind == "seed":  # within-cell: every cell on both sides, by design and labelled
            assert train == test
        else:
            assert not train & test, (kind, f, train & test)
        if groups is not None:
            assert not set(groups.filter(folds != f)) & set(groups.filter(folds == f))
        inner = np.unique(cell[folds != f], return_inverse=True)[1]
        for a, b in P.inner_splits(inner, 3):  # the hyperparameter folds too
            assert not set(inner[a]) & set(inner[b])
    n = {"architecture": 5, "cell": 5, "family": 3, "dataset": 2, "seed": 4}[kind]
    assert len(np.unique(folds)) == n
    assert "within-architecture" in SPLIT_KINDS["seed"]


def test_architecture_folds_are_seeded_and_mix_families():
    runs, _ = synthetic_zoo(0.0, cells=10, seeds=2)
    a, b = fold_ids(runs, "architecture", 5, 0), fold_ids(runs, "architecture", 5, 0)
    assert np.array_equal(a, b) and not np.array_equal(a, fold_ids(runs, "architecture", 5, 1))
    mixed = runs.with_columns(fold=a).group_by("fold").agg(pl.col("family").n_unique())
    assert (mixed["family"] == 3).all()


# --------------------------------------------------------------------------------------------
# Bootstrap metrics: exact for the resampled multiset of runs
# --------------------------------------------------------------------------------------------


def test_cell_resamples_count_the_bootstrap_draws_in_any_block_size(monkeypatch):
    from weightzoo import resampling

    draws = resampling.bootstrap_indices(7, 50, np.random.default_rng(3))
    expected = np.stack([np.bincount(d, minlength=7) for d in draws]).astype(float)
    whole = P.cell_resamples(7, 50, seed=3)
    monkeypatch.setattr(resampling, "CHUNK_BYTES", 4 * 7 * 8)  # blocks of 4 resamples
    assert np.array_equal(whole, expected)
    assert np.array_equal(P.cell_resamples(7, 50, seed=3), expected)
    assert whole.sum(axis=1).tolist() == [7] * 50


def test_bootstrap_metrics_equal_scipy_on_the_expanded_resample():
    rng = np.random.default_rng(5)
    cells = np.repeat(np.arange(8), 3)
    y = np.round(rng.random(24), 1)  # ties, like accuracies on a small test split
    p = y + rng.normal(size=24) * 0.2
    counts = P.cell_resamples(8, 6, seed=2)
    boot = P.bootstrap_metrics(y, p, cells, counts, max_runs=1000)
    for b in range(len(counts)):
        idx = np.concatenate(
            [np.flatnonzero(cells == c) for c in range(8) for _ in range(int(counts[b, c]))]
        )
        ye, pe = y[idx], p[idx]
        assert boot["tau"][b] == pytest.approx(sps.kendalltau(ye, pe).statistic, abs=1e-12)
        assert boot["rho"][b] == pytest.approx(sps.spearmanr(ye, pe).statistic, abs=1e-12)
        assert boot["mae"][b] == pytest.approx(np.abs(ye - pe).mean())
        assert boot["r2"][b] == pytest.approx(
            1 - ((ye - pe) ** 2).sum() / ((ye - ye.mean()) ** 2).sum()
        )
    assert counts.sum(axis=1).tolist() == [8] * 6


def test_rank_subsample_keeps_every_cell_evenly():
    cells = np.repeat(np.arange(10), 30)
    keep = P.rank_subsample(cells, 50)
    assert np.bincount(cells[keep]).tolist() == [5] * 10


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------


def layered_zoo() -> tuple[pl.DataFrame, pl.DataFrame]:
    """MLPs of depth 0, 1, 2: every statistic of a tensor is its depth index (1, 2, ...),
    its kind's offset (bias +10) and its target's (delta +100)."""
    runs, stats = [], []
    for depth in (0, 1, 2):
        keys = {"dataset": "digits", "family": "mlp", "arch": f"mlp-d{depth}-w8", "seed": 0}
        runs.append(
            {
                **keys,
                "n_params": 10 ** (depth + 2),
                "status": "ok",
                "final_test_acc": 0.5,
                "epochs_run": 3,
            }
        )
        layers = [f"hidden.{i}" for i in range(depth)] + ["head"]
        for epoch, target in itertools.product((0, 1, 3), ("w", "delta")):
            for i, layer in enumerate(layers):
                for kind, offset in (("weight", 0), ("bias", 10)):
                    v = i + 1 + offset + 100 * (target == "delta") + 1000 * epoch
                    stats.append(
                        {
                            **keys,
                            "epoch": epoch,
                            "scope": f"{layer}.{kind}",
                            "scope_type": "tensor",
                            "kind": kind,
                            "target": target,
                            **dict.fromkeys(P.STATS7 + P.SPECTRAL, float(v)),
                        }
                    )
            stats.append(
                {
                    **keys,
                    "epoch": epoch,
                    "scope": "all_weights",
                    "scope_type": "pool",
                    "kind": "pool",
                    "target": target,
                    **dict.fromkeys(P.STATS7 + P.SPECTRAL, -1.0),
                }
            )
    cast = pl.col("seed").cast(pl.Int32)
    return pl.DataFrame(runs).with_columns(cast), pl.DataFrame(stats).with_columns(
        cast, pl.col("epoch").cast(pl.Int32)
    )


def test_layers_are_aligned_from_the_input_and_from_the_output():
    runs, stats = layered_zoo()
    f = P.features(stats.lazy(), runs, epochs=[1], positions=2).filter(epoch="final").sort("arch")
    col = lambda name: f[name].to_list()  # noqa: E731  (d0, d1, d2)
    assert col("layer7.in1_weight_mean") == [3001, 3001, 3001]  # the first layer
    assert col("layer7.in2_weight_mean") == [None, 3002, 3002]  # logistic regression has none
    assert col("layer7.out1_weight_mean") == [3001, 3002, 3003]  # the head
    assert col("layer7.out2_weight_mean") == [None, 3001, 3002]  # the one before it
    assert col("layer7.in1_bias_q50") == [3011, 3011, 3011]
    assert col("layer7_delta.out1_weight_std") == [3101, 3102, 3103]
    assert col("init.out1_weight_mean") == [1, 2, 3]  # epoch 0
    assert col("size.log10_params") == pytest.approx([2, 3, 4])
    assert col("arch.mlp_depth") == pytest.approx([0, 1, np.log2(3)])
    assert col("arch.family_mlp") == [1, 1, 1]
    assert col("arch.cnn_blocks") == [None] * 3
    early = P.features(stats.lazy(), runs, epochs=[1], positions=2).filter(epoch="1")
    assert early["layer7.in1_weight_mean"].to_list() == [1001] * 3
    counts = {s: len(P.feature_columns(f.columns, s)) for s in P.FEATURE_SETS}
    assert counts == {
        "size": 1,
        "arch": 11,
        "global7": 7,
        "layer7": 56,
        "layer7_delta": 56,
        "spectral": 8,
        "init": 56,
        "setting": 0,  # a runs table from before settings has none
    }
    assert len(P.feature_columns(f.columns, "size+layer7")) == 57


def test_heavy_tail_fits_count_only_where_the_fit_is_ok():
    runs, stats = layered_zoo()
    stats = stats.with_columns(
        alpha=pl.lit(3.0),
        log_norm=pl.lit(1.5),
        fit_status=pl.when(pl.col("scope").str.starts_with("head"))
        .then(pl.lit("ok"))
        .otherwise(pl.lit("too_few_evals")),
    )
    f = P.features(stats.lazy(), runs, positions=2).filter(epoch="final").sort("arch")
    assert f["spectral.out1_weight_alpha"].to_list() == [3.0, 3.0, 3.0]  # heads: ok fits
    assert f["spectral.in1_weight_alpha"].to_list() == [3.0, None, None]  # too few: left out
    assert f["spectral.in1_weight_log_norm"].to_list() == [1.5] * 3  # not a fit: kept
    assert len(P.feature_columns(f.columns, "spectral")) == 4 * 4


def test_setting_columns_come_from_the_runs_table():
    runs, stats = layered_zoo()
    runs = runs.with_columns(
        lr=pl.Series([1e-3, 1e-2, 1e-3]), optimizer=pl.Series(["adam", "sgd", "adam"])
    )
    f = P.features(stats.lazy(), runs, positions=2).filter(epoch="final").sort("arch")
    assert P.feature_columns(f.columns, "setting") == [
        "setting.lr",
        "setting.optimizer_adam",
        "setting.optimizer_sgd",
    ]
    assert f["setting.lr"].to_list() == pytest.approx([-3, -2, -3])
    assert f["setting.optimizer_sgd"].to_list() == [0, 1, 0]


def test_a_set_with_no_columns_is_said_not_fitted():
    runs, stats = synthetic_zoo(1.0, cells=4, seeds=2)
    cfg = quick_config(feature_sets=["size", "setting"], splits=["architecture"])
    table, _ = P.predict_accuracy(stats.lazy(), runs, P.PredictionConfig.from_config(cfg))
    assert row(table, feature_set="setting")["note"] == "no setting columns in this zoo"
    assert row(table, feature_set="size")["tau"] is not None


def test_unknown_feature_set_is_named():
    with pytest.raises(ValueError, match=r"unknown feature set\(s\) \['layer8'\]"):
        P.base_sets("size+layer8")


# --------------------------------------------------------------------------------------------
# Config: schema, code and cross-key checks agree
# --------------------------------------------------------------------------------------------


def test_schema_names_the_feature_sets_predictors_and_splits_of_the_code():
    defs = yaml.safe_load(SCHEMA.read_text())["$defs"]
    names = re.fullmatch(r"\^\(([\w|]+)\).*", defs["feature_set"]["pattern"]).group(1).split("|")
    assert names == list(P.FEATURE_SETS)
    assert defs["predictors"]["items"]["enum"] == list(P.PREDICTORS)
    assert defs["splits"]["items"]["enum"] == list(SPLIT_KINDS)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"feature_sets": ["size+layer8"]}, "analysis.prediction.feature_sets[0]:"),
        (
            {"headline": {"feature_set": "init+spectral", "predictor": "hgb"}},
            "analysis.prediction.headline.feature_set: 'init+spectral' is not one of",
        ),
        ({"predictors": ["ridge"]}, "analysis.prediction.headline.predictor: 'hgb' is not one of"),
        ({"splits": ["architectures"]}, "analysis.prediction.splits[0]:"),
    ],
)
def test_bad_prediction_settings_are_config_errors(config, change, message):
    config["analysis"]["prediction"].update(change)
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    assert str(err.value).startswith(message), str(err.value)


def test_unusable_columns_are_dropped_or_become_presence_flags():
    nan = np.nan
    train = np.array(
        [[1.0, 5.0, nan, 2.0, np.inf], [2.0, 5.0, nan, nan, 3.0], [3.0, 5.0, nan, 2.0, 4.0]]
    )
    test = np.array([[4.0, 5.0, 1.0, nan, 9.0]])
    a, b = P.usable_features(train, test)
    # kept: column 0, column 4 (inf read as missing); column 3 (one value, gaps) as presence
    assert np.array_equal(np.isnan(a[:, 1]), [True, False, False])
    assert np.allclose(np.nan_to_num(a), [[1, 0, 1], [2, 3, 0], [3, 4, 1]])
    assert np.allclose(np.nan_to_num(b), [[4, 9, 0]])


def test_a_fold_with_no_usable_feature_predicts_its_training_mean():
    X = np.ones((6, 3))  # constant in every fold: nothing to learn from
    acc = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    folds = np.array([0, 0, 1, 1, 2, 2])
    cells = np.arange(6)
    cfg = P.PredictionConfig.from_config({**DEFAULT, "target": "accuracy"})
    pred, chosen = P.out_of_fold(X, acc, folds, cells, "hgb", cfg)
    np.testing.assert_allclose(pred, [0.45, 0.45, 0.35, 0.35, 0.25, 0.25])
    assert chosen == [{"no_usable_feature": True}] * 3


def test_an_inner_fold_with_no_usable_feature_does_not_stop_the_fit():
    # GroupKFold(2) puts cells 0 and 2 on one side, 1 and 3 on the other; only cell 3's
    # value differs, so the inner training side {0, 2} has no column that varies
    X = np.array([[0.0], [0.0], [0.0], [0.0], [0.0], [5.0]])
    y = np.array([0.1, 0.1, 0.2, 0.2, 0.8, 0.9])
    cells = np.array([0, 0, 1, 1, 2, 3])
    hgb = {"learning_rate": 0.2, "min_samples_leaf": 1, "max_iter": 5, "max_leaf_nodes": [4]}
    cfg = P.PredictionConfig.from_config({**DEFAULT, "inner_folds": 2, "hgb": hgb})
    model, params = P.fit_hgb(X, y, cells, cfg)
    assert params["max_leaf_nodes"] == 4 and 1 <= params["max_iter"] <= 5
    assert model.predict(X).shape == (6,)


def _leaky_zoo(n_cells: int = 30, seeds: int = 3, n_features: int = 20):
    """Pure-noise features and targets, every seed of a cell an exact copy: a model can only
    'learn' by memorising cells, which an inner CV not grouped by cell rewards."""
    rng = np.random.default_rng(0)
    X = np.repeat(rng.normal(size=(n_cells, n_features)), seeds, axis=0)
    y = np.repeat(rng.normal(size=n_cells), seeds)
    return X, y, np.repeat(np.arange(n_cells), seeds)


def test_ridge_hyperparameters_are_chosen_on_folds_grouped_by_cell():
    X, y, cells = _leaky_zoo()
    _, chosen = P.fit_ridge(X, y, cells, P.PredictionConfig.from_config(DEFAULT))
    # grouped: noise does not generalise to held-out cells, the strongest penalty wins;
    # an ungrouped inner CV picks the weakest (copies of each cell on both sides)
    assert chosen["alpha"] == max(DEFAULT["ridge"]["alphas"])


def test_boosting_iterations_are_chosen_on_folds_grouped_by_cell():
    X, y, cells = _leaky_zoo()
    _, chosen = P.fit_hgb(X, y, cells, P.PredictionConfig.from_config(DEFAULT))
    # grouped: more trees only fit noise, so few are kept; ungrouped, all max_iter of them
    assert chosen["max_iter"] <= 10 < DEFAULT["hgb"]["max_iter"]


def test_quadratic_forms_equal_einsum_on_random_matrices():
    from weightzoo.resampling import quadratic_forms

    rng = np.random.default_rng(3)
    w = rng.integers(0, 4, size=(600, 70)).astype(float)  # draw counts, more rows than a chunk
    m = rng.normal(size=(70, 70))
    expected = np.einsum("bi,ij,bj->b", w, m, w)
    np.testing.assert_allclose(quadratic_forms(w, m), expected, rtol=1e-12, atol=1e-12)


def test_rank_subsample_keeps_every_step_th_cell_when_cells_outnumber_the_runs():
    cells = np.repeat(np.arange(3000), 1)[::-1].copy()  # 3,000 one-run cells
    keep = P.rank_subsample(cells, 200)
    assert sorted(cells[keep].tolist()) == list(range(0, 3000, 30))  # 100 cells, 1 run each
    two = np.repeat(np.arange(300), 3)
    kept = two[P.rank_subsample(two, 200)]
    assert np.bincount(kept)[::3].tolist() == [2] * 100 and len(kept) == 200
