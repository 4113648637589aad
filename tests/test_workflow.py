"""End to end: real `snakemake` runs on tiny configs, checked against the result contracts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from conftest import ROOT
from polars.testing import assert_frame_equal
from test_dashboard import Page, dump_dom

from weightzoo.dumps import rows_to_state_dict
from weightzoo.figures import FIGURES
from weightzoo.models import build_model, count_params

pytestmark = pytest.mark.e2e
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TINY = ROOT / "config" / "test" / "tiny.yaml"
WEIGHT_COLUMNS = {
    "dataset": pl.String,
    "family": pl.String,
    "arch": pl.String,
    "setting": pl.String,
    "seed": pl.Int32,
    "epoch": pl.Int32,
    "tensor": pl.String,
    "kind": pl.String,
    "shape": pl.List(pl.Int32),
    "values": pl.List(pl.Float32),
}


def snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def write_blobs(path: Path) -> None:
    """A learnable 3-class user dataset: 8x8 RGB images whose colour gives the class."""
    rng = np.random.default_rng(0)

    def split(n):
        y = np.arange(n) % 3
        x = rng.integers(0, 60, size=(n, 8, 8, 3))
        x[np.arange(n), :, :, y] += 180  # class k lights up channel k
        return x.astype(np.uint8), y

    (x_train, y_train), (x_test, y_test) = split(90), split(30)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny config on digits plus a user .npz dataset, run once for the module."""
    work = tmp_path_factory.mktemp("tiny")
    write_blobs(work / "blobs.npz")
    extra = write_config(
        work / "extra.yaml",
        {"datasets": ["digits", "blobs"], "data": {"user": {"blobs": "blobs.npz"}}},
    )
    started = time.perf_counter()
    proc = snakemake(work, "--cores", "2", "--configfile", str(TINY), str(extra))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, [str(TINY), str(extra)], time.perf_counter() - started


def test_weights_are_one_hive_partitioned_table(tiny_run):
    work, _, _ = tiny_run
    w = pl.scan_parquet(work / "results/weights/**/*.parquet", hive_partitioning=True).collect()
    for name, dtype in WEIGHT_COLUMNS.items():
        assert w.schema[name] == dtype, name
    assert set(w["dataset"]) == {"digits", "blobs"}
    assert set(w["arch"]) == {
        "mlp-d1-w1",
        "mlp-d1-w16",
        "cnn-b1-c1",
        "cnn-b1-c4",
        "vit-d1-h1-e4-p4",
        "vit-d1-h2-e4-p4",
    }
    epochs = w.group_by("dataset", "family", "seed").agg(pl.col("epoch").unique().sort())
    # tiny.yaml: dump_epochs [1]; mlp trains 3 epochs, cnn and vit 2
    expected = {"mlp": [0, 1, 3], "cnn": [0, 1, 2], "vit": [0, 1, 2]}
    for row in epochs.iter_rows(named=True):
        assert row["epoch"] == expected[row["family"]], row
    # one row per (seed, epoch, tensor)
    assert w.select("dataset", "arch", "seed", "epoch", "tensor").is_duplicated().sum() == 0


def test_dumped_rows_rebuild_the_exact_state_dict(tiny_run):
    work, _, _ = tiny_run
    rows = (
        pl.scan_parquet(work / "results/weights/**/*.parquet", hive_partitioning=True)
        .filter(dataset="blobs", arch="cnn-b1-c4", seed=1, epoch=2)
        .collect()
    )
    state = rows_to_state_dict(rows.to_arrow())
    model = build_model("cnn", {"blocks": 1, "channels": 4, "activation": "relu"}, (3, 8, 8), 3)
    model.load_state_dict(state, strict=True)
    # conv 4*3*9+4 = 112, head (4*4*4)*3+3 = 195
    assert (
        count_params(model)
        == 307
        == rows["shape"].list.eval(pl.element().product()).explode().sum()
    )


def test_metrics_have_one_row_per_seed_and_epoch(tiny_run):
    work, _, _ = tiny_run
    m = pl.scan_parquet(work / "results/metrics/**/*.parquet", hive_partitioning=True).collect()
    counts = m.group_by("dataset", "arch", "seed").agg(pl.len(), pl.col("epoch").max())
    # 2 datasets x 6 architectures x 2 seeds, epochs 0..E
    assert counts.height == 24
    assert (counts["len"] == counts["epoch"] + 1).all()
    assert m.select("dataset", "arch", "seed", "epoch").is_duplicated().sum() == 0
    assert m["test_acc"].is_between(0, 1).all()


def test_runs_table_has_one_row_per_run(tiny_run):
    work, _, _ = tiny_run
    runs = pl.read_parquet(work / "results/tables/runs.parquet")
    assert runs.height == 24
    for col in [
        "dataset",
        "family",
        "arch",
        "seed",
        "n_params",
        "final_test_acc",
        "best_test_acc",
        "final_train_acc",
        "epochs_run",
        "status",
        "wall_time_s",
        "torch_version",
        "device",
        "config",
    ]:
        assert col in runs.columns, col
    assert set(runs["status"]) == {"ok"}
    assert runs.filter(arch="mlp-d1-w16", dataset="digits")["n_params"].to_list() == [1210, 1210]
    assert (runs["best_test_acc"] >= runs["final_test_acc"]).all()
    # the colour-coded blobs are easy: the widest MLP is far above chance (1/3)
    assert runs.filter(arch="mlp-d1-w16", dataset="blobs")["final_test_acc"].min() > 0.6
    csv = pl.read_csv(work / "results/tables/runs.csv")
    assert csv.height == 24 and "config" not in csv.columns


def test_stats_table_summarises_every_dump(tiny_run):
    work, _, _ = tiny_run
    st = pl.read_parquet(work / "results/tables/stats.parquet")
    run = st.filter(dataset="digits", arch="mlp-d1-w16", seed=0)
    # 3 dumps (epochs 0, 1, 3) x ((4 tensors + 2 pools) x 2 targets (w, w - w0) + the pool of
    # w / std(w0))
    assert run.height == 3 * (6 * 2 + 1)
    assert set(run["scope"]) == {
        "hidden.0.weight",
        "hidden.0.bias",
        "head.weight",
        "head.bias",
        "all_weights",
        "all_params",
    }
    # the statistics are those of the dumped values
    w = (
        pl.scan_parquet(work / "results/weights/**/*.parquet", hive_partitioning=True)
        .filter(dataset="digits", arch="mlp-d1-w16", seed=0, epoch=3, tensor="head.weight")
        .collect()
    )
    values = w["values"][0].to_numpy()
    row = run.filter(epoch=3, scope="head.weight", target="w")
    assert row["std"][0] == pytest.approx(values.std())
    assert row["count"][0] == 160
    assert row["max_abs"][0] == pytest.approx(np.abs(values).max())
    init = run.filter(epoch=0, target="delta", scope="all_params")
    assert init["l2"][0] == 0.0


def test_claims_are_tested_and_written(tiny_run):
    work, _, _ = tiny_run
    claims = pl.read_parquet(work / "results/tables/claims.parquet")
    assert set(claims["claim"]) == {1, 2, 3}
    # the pooled test rests on 12 architecture cells (2 datasets x 6 architectures), 24 runs
    pooled = claims.filter(claim=1, test="spearman_cells", dataset="all", family="all")
    assert pooled["n_runs"][0] == 24 and pooled["n_cells"][0] == 12
    page = (work / "results/claims.md").read_text()
    for n in (1, 2, 3):
        assert f"## Claim {n}:" in page
    assert "The zoo holds 24 networks (12 cells of" in page  # each cell counted once
    assert page.splitlines()[2] == "## Bottom line"
    groups = pl.read_parquet(work / "results/tables/groups.parquet")
    assert set(groups["group"]) <= {"optimal", "intermediate", "suboptimal", "at chance"}
    assert groups.height == 24


def test_dashboard_renders_every_figure_offline(tiny_run, tmp_path):
    work, _, _ = tiny_run
    page = work / "results/index.html"
    for name in FIGURES:
        assert (work / f"results/figures/{name}.html").stat().st_size > 0
        assert (work / f"results/figures/{name}.svg").read_text().startswith("<svg")
    dom = Page(dump_dom(page, tmp_path / "profile"))
    assert dom.errors == "", dom.errors
    assert dom.body.get("data-status") == "done"
    assert len(dom.charts) == len(FIGURES)
    assert all(c.get("data-rendered") == "true" and c["svg"] for c in dom.charts.values())


def test_report_is_built(tiny_run):
    work, configs, _ = tiny_run
    proc = snakemake(work, "--report", "report.html", "--configfile", *configs)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = (work / "report.html").read_text()
    assert "Claims" in text and "Figures" in text


def test_no_temporary_files_are_left_and_every_job_has_a_log(tiny_run):
    work, _, _ = tiny_run
    assert not [p for p in (work / "results").rglob("*") if p.name.endswith(".tmp")]
    logs = list((work / "results/logs/train").rglob("*.log"))
    assert len(logs) == 12
    assert all("job done" in p.read_text() for p in logs)


def test_rerun_with_nothing_changed_does_nothing(tiny_run):
    work, configs, _ = tiny_run
    proc = snakemake(work, "-n", "--configfile", *configs)
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def planned_jobs(work: Path, configs: list[str], override: dict) -> dict[str, int]:
    extra = write_config(work / "override.yaml", override)
    proc = snakemake(work, "-n", "--configfile", *configs, str(extra))
    assert proc.returncode == 0, proc.stderr[-3000:]
    if "Nothing to be done" in proc.stdout + proc.stderr:
        return {}
    return job_counts(proc.stdout)


DOWNSTREAM = {
    "aggregate_runs": 1,
    "aggregate_stats": 1,
    "aggregate_strength_maps": 1,
    "claims": 1,
    "predict_accuracy": 1,
    "figure": len(FIGURES),
    "dashboard": 1,
    "report": 1,
    "all": 1,
}
PREDICTION_FIGURES = [name for name, f in FIGURES.items() if "prediction" in f.tables]
N_DOWNSTREAM = sum(DOWNSTREAM.values())


def test_changing_one_family_retrains_only_that_family(tiny_run):
    work, configs, _ = tiny_run
    plan = planned_jobs(work, configs, {"families": {"cnn": {"train": {"lr": 0.01}}}})
    # 2 CNN architectures x 2 datasets x 1 seed block, their statistics, then every table,
    # the claims, the figures and the dashboard that depend on them
    assert plan == {"train": 4, "weight_stats": 4, **DOWNSTREAM, "total": 8 + N_DOWNSTREAM}


def test_adding_a_block_of_seeds_trains_only_the_new_block(tiny_run):
    work, configs, _ = tiny_run
    plan = planned_jobs(work, configs, {"seeds": {"start": 0, "count": 4}})
    assert plan == {"train": 12, "weight_stats": 12, **DOWNSTREAM, "total": 24 + N_DOWNSTREAM}


def test_changing_figure_settings_redoes_only_figures(tiny_run):
    work, configs, _ = tiny_run
    plan = planned_jobs(work, configs, {"figures": {"width": 333, "statistic": "kurtosis"}})
    # the report shows three of the figures
    assert plan == {"figure": len(FIGURES), "dashboard": 1, "report": 1, "all": 1,
                    "total": len(FIGURES) + 3}  # fmt: skip


def test_changing_prediction_settings_reruns_only_the_prediction(tiny_run):
    work, configs, _ = tiny_run
    plan = planned_jobs(work, configs, {"analysis": {"prediction": {"folds": 3}}})
    # the prediction job, the figures that show it, the dashboard and the report; not the claims
    n = len(PREDICTION_FIGURES)
    assert plan == {"predict_accuracy": 1, "figure": n, "dashboard": 1, "report": 1, "all": 1,
                    "total": n + 4}  # fmt: skip


def test_prediction_ladder_is_written(tiny_run):
    work, _, _ = tiny_run
    table = pl.read_parquet(work / "results/tables/prediction.parquet")
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())["analysis"]["prediction"]
    final = table.filter(epoch="final")
    sets = {"size", "arch", *cfg["feature_sets"]}
    # every set with every predictor, and the ranking by size (no fit), on every split
    assert final.height == (len(sets) * len(cfg["predictors"]) + 1) * len(cfg["splits"])
    assert final.filter(feature_set="size_rank")["predictor"].to_list() == ["rank"] * len(
        cfg["splits"]
    )
    assert set(final["n_runs"]) == {24} and set(final["n_cells"]) == {12}
    # 2 datasets x 6 architectures: every split can be made
    assert final["tau"].null_count() == 0, final.filter(pl.col("tau").is_null())["note"].to_list()
    # tiny.yaml dumps epoch 1 before every run's last (the MLPs' epoch 2 is not dumped)
    assert table.filter(pl.col("epoch") != "final")["epoch"].unique().to_list() == ["1"]
    page = (work / "results/prediction.md").read_text()
    assert "the weights predict test accuracy with τ = " in page
    assert "beyond the strongest size baseline (" in page
    assert "## How early the weights tell" in page
    oof = pl.read_parquet(work / "results/tables/predictions_oof.parquet")
    assert (
        oof.filter(epoch="final", split="architecture", feature_set="size", predictor="hgb").height
        == 24
    )
    assert "Accuracy predicted from the weights" in (work / "results/index.html").read_text()


def test_the_report_is_written_from_the_runs_tables(tiny_run):
    work, _, _ = tiny_run
    page = (work / "results/report.md").read_text()
    runs = pl.read_parquet(work / "results/tables/runs.parquet")
    title = page.splitlines()[0]
    assert title.endswith(": replication report") and "digits" in title and "blobs" in title
    for section in ("## Accuracy: from failing to saturated", "## The paper's three claims",
                    "## Heavy-tailed spectra", "## Predicting accuracy from the weights",
                    "## Compute and disk", "## Figures"):  # fmt: skip
        assert section in page, section
    assert f"{runs.height} networks" in page and "**Claim 3**" in page
    assert "![accuracy_vs_params](figures/accuracy_vs_params.svg)" in page
    assert "| train | 12 |" in page  # the training jobs' benchmark files, summed


def test_changing_the_histogram_range_redoes_statistics_not_training(tiny_run):
    work, configs, _ = tiny_run
    plan = planned_jobs(work, configs, {"analysis": {"hist": {"range": [-2.0, 2.0]}}})
    assert "train" not in plan and plan["weight_stats"] == 12 and plan["claims"] == 1


def test_an_lr_sweep_adds_settings_whose_largest_rate_diverges_and_the_workflow_goes_on(tmp_path):
    write_blobs(tmp_path / "blobs.npz")
    extra = write_config(
        tmp_path / "extra.yaml",
        {
            "datasets": ["blobs"],
            "data": {"user": {"blobs": "blobs.npz"}},
            "seeds": {"start": 0, "count": 2},
            "seeds_per_job": 2,
            "families": {
                "mlp": {
                    "grid": [{"depth": 1, "width": 8, "optimizer": "sgd", "lr": [0.05, 1.0e30]}],
                    "train": {"schedule": "constant"},
                },
                "cnn": {"enabled": False},
                "vit": {"enabled": False},
            },
        },
    )
    proc = snakemake(tmp_path, "--cores", "2", "--configfile", str(TINY), str(extra))
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = pl.read_parquet(tmp_path / "results/tables/runs.parquet").sort("setting", "seed")
    # the family's own recipe is adam at 1e-3: both grid settings differ in optimizer and lr
    assert runs.select("setting", "status").rows() == [
        ("lr1e30-optsgd", "diverged"),
        ("lr1e30-optsgd", "diverged"),
        ("lr5e-2-optsgd", "ok"),
        ("lr5e-2-optsgd", "ok"),
    ]
    # every setting key is a typed column; the partitions carry the setting id
    assert runs.schema["lr"] == pl.Float64 and runs.schema["batch_size"] == pl.Int64
    assert runs.filter(setting="lr5e-2-optsgd")["lr"].to_list() == [0.05, 0.05]
    weights = sorted(
        p.relative_to(tmp_path / "results/weights").as_posix()
        for p in (tmp_path / "results/weights").rglob("*.parquet")
    )
    assert weights == [
        "dataset=blobs/arch=mlp-d1-w8/setting=lr1e30-optsgd/seeds-0-1.parquet",
        "dataset=blobs/arch=mlp-d1-w8/setting=lr5e-2-optsgd/seeds-0-1.parquet",
    ]
    w = pl.scan_parquet(tmp_path / "results/weights/**/*.parquet", hive_partitioning=True)
    assert set(w.select("setting").unique().collect()["setting"]) == {
        "lr1e30-optsgd",
        "lr5e-2-optsgd",
    }
    stats = pl.scan_parquet(tmp_path / "results/tables/stats.parquet")
    assert stats.select(pl.col("setting").n_unique()).collect().item() == 2
    # the claims compare the settings of the architecture with each other, too
    claims = pl.read_parquet(tmp_path / "results/tables/claims.parquet")
    assert set(claims["within"]) == {"family", "architecture"}
    assert set(claims.filter(within="architecture")["family"]) <= {"mlp-d1-w8", "all"}
    # adding a learning rate trains only its own cells
    more = write_config(
        tmp_path / "more.yaml",
        {
            "families": {
                "mlp": {
                    "grid": [
                        {"depth": 1, "width": 8, "optimizer": "sgd", "lr": [0.05, 1.0e30, 0.2]}
                    ]
                }
            }
        },
    )
    plan = snakemake(tmp_path, "-n", "--configfile", str(TINY), str(extra), str(more))
    assert job_counts(plan.stdout)["train"] == 1


def test_diverging_family_is_recorded_without_failing_the_workflow(tmp_path):
    write_blobs(tmp_path / "blobs.npz")
    extra = write_config(
        tmp_path / "extra.yaml",
        {
            "datasets": ["blobs"],
            "data": {"user": {"blobs": "blobs.npz"}},
            "seeds": {"start": 0, "count": 1},
            "seeds_per_job": 1,
            "families": {
                "mlp": {"grid": [{"depth": 1, "width": 8}]},
                "cnn": {
                    "grid": [{"blocks": 1, "channels": 2}],
                    "train": {"optimizer": "sgd", "lr": 1.0e30, "schedule": "constant"},
                },
                "vit": {"enabled": False},
            },
        },
    )
    proc = snakemake(tmp_path, "--cores", "2", "--configfile", str(TINY), str(extra))
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = pl.read_parquet(tmp_path / "results/tables/runs.parquet").sort("family")
    assert runs.select("family", "status").rows() == [("cnn", "diverged"), ("mlp", "ok")]
    # one healthy run is too few cells for any split: said per row, files still written
    prediction = pl.read_parquet(tmp_path / "results/tables/prediction.parquet")
    assert prediction.height and prediction["tau"].is_null().all()
    assert all(n.startswith("too few cells for a split") for n in prediction["note"])
    assert "No held-out prediction" in (tmp_path / "results/prediction.md").read_text()


@pytest.mark.parametrize(
    "override,message",
    [
        (
            {"families": {"mlp": {"grid": [{"depth": 1, "width": [0, 4]}]}}},
            "families.mlp.grid[0].width[0]: 0 is less than the minimum of 1",
        ),
        ({"families": {"cnn": {"train": {"epochs": 0}}}}, "families.cnn.train.epochs:"),
        ({"datasets": ["svhn"]}, "datasets[0]: unknown dataset 'svhn'"),
        (
            {"families": {"vit": {"grid": [{"patch": 2, "depth": 1, "heads": 3, "embed": 8}]}}},
            "families.vit.grid[0]: heads=3 does not divide embed=8",
        ),
        ({"threads": "many"}, "threads:"),
    ],
)
def test_config_error_stops_before_any_job(tmp_path, override, message):
    bad = write_config(tmp_path / "bad.yaml", override)
    proc = snakemake(tmp_path, "--cores", "1", "--configfile", str(bad))
    assert proc.returncode != 0
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith("weightzoo: config error: ") and message in last_line
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()


def test_killed_workflow_leaves_no_complete_looking_file_and_resumes(tmp_path):
    slow = write_config(
        tmp_path / "slow.yaml",
        {
            "seeds": {"start": 0, "count": 1},
            "seeds_per_job": 1,
            "families": {
                "cnn": {
                    "grid": [{"blocks": 2, "channels": 16}],
                    "train": {"epochs": 150, "batch_size": 8},
                },
                "mlp": {"enabled": False},
                "vit": {"enabled": False},
            },
        },
    )
    cmd = [
        SNAKEMAKE,
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(tmp_path),
        "results/tables/runs.parquet",
        "--cores",
        "1",
        "--configfile",
        str(slow),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    state = tmp_path / "results/resume/digits/cnn-b2-c16/default/seeds-0-0/state.pt"
    try:
        deadline = time.monotonic() + 120
        while not state.exists() or torch.load(state, weights_only=True)["current"]["epoch"] < 1:
            assert time.monotonic() < deadline and proc.poll() is None, "training never got going"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its job, as a hard kill would
        proc.wait()
    results = tmp_path / "results"
    for part in ("weights", "metrics", "runs", "tables"):
        assert not list((results / part).rglob("*.parquet")), f"a partial file in {part}/"
    # the next invocation plans the interrupted job again, which resumes and completes
    assert snakemake(tmp_path, "--unlock", "--configfile", str(slow)).returncode == 0
    plan = snakemake(tmp_path, "results/tables/runs.parquet", "-n", "--configfile", str(slow))
    assert re.search(r"^train\s+1$", plan.stdout, re.M), plan.stdout[-2000:]
    rerun = snakemake(
        tmp_path, "results/tables/runs.parquet", "--cores", "1", "--configfile", str(slow)
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    log = (results / "logs/train/digits/cnn-b2-c16/default/seeds-0-0.log").read_text()
    assert re.search(r"seeds \[0\]: resuming after epoch \d+", log)
    runs = pl.read_parquet(results / "tables/runs.parquet")
    assert runs["epochs_run"].to_list() == [150] and not state.parent.exists()


def job_counts(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_paper_config_plans_the_expected_jobs_offline(tmp_path):
    proc = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config/paper.yaml"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    # 3 datasets x (40 MLPs + 24 CNNs + 8 ViTs) x 30 seeds / 10 per job
    assert paper["datasets"] == ["mnist", "fashion_mnist", "cifar10"]
    assert counts["train"] == 3 * (40 + 24 + 8) * 3 == 648
    assert counts["download_dataset"] == 3 and counts["prepare_dataset"] == 3
    assert counts["weight_stats"] == 648 and counts["figure"] == len(FIGURES)
    # + 3 aggregations, claims, prediction, dashboard, report, all
    assert counts["total"] == 2 * 648 + 3 + 3 + 3 + 1 + 1 + len(FIGURES) + 1 + 1 + 1


def test_lint_is_clean():
    proc = subprocess.run(
        [SNAKEMAKE, "--lint", "--snakefile", str(ROOT / "Snakefile")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_packed_training_jobs_give_the_same_networks_in_fewer_jobs(tiny_run, tmp_path):
    work, configs, _ = tiny_run
    write_blobs(tmp_path / "blobs.npz")
    packed = write_config(tmp_path / "pack.yaml", {"pack": {"jobs_per_family": 1}})
    plan = snakemake(tmp_path, "-n", "--configfile", *configs, str(packed))
    counts = job_counts(plan.stdout)
    # 2 datasets x 3 families: 6 training jobs instead of 12, statistics per block as before
    assert sorted(k for k in counts if k.startswith("train_")) == [
        f"train_{d}_{f}_0" for d in ("blobs", "digits") for f in ("cnn", "mlp", "vit")
    ]
    assert counts["weight_stats"] == 12
    # pack.stats: one statistics job per pack too, 6 instead of 12
    packed = write_config(tmp_path / "pack.yaml", {"pack": {"jobs_per_family": 1, "stats": True}})
    plan = snakemake(tmp_path, "-n", "--configfile", *configs, str(packed))
    counts = job_counts(plan.stdout)
    assert "weight_stats" not in counts
    assert sorted(k for k in counts if k.startswith("weight_stats_")) == [
        f"weight_stats_{d}_{f}_0" for d in ("blobs", "digits") for f in ("cnn", "mlp", "vit")
    ]
    tables = ["runs", "stats", "strength_maps"]
    proc = snakemake(
        tmp_path,
        *(f"results/tables/{t}.parquet" for t in tables),
        "--cores",
        "2",
        "--configfile",
        *configs,
        str(packed),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    keys = ["dataset", "arch", "setting", "seed"]
    cols = [
        "dataset",
        "arch",
        "setting",
        "seed",
        "status",
        "final_test_acc",
        "final_train_acc",
        "epochs_run",
        "n_params",
    ]
    a = pl.read_parquet(work / "results/tables/runs.parquet").select(cols).sort(keys)
    b = pl.read_parquet(tmp_path / "results/tables/runs.parquet").select(cols).sort(keys)
    assert a.equals(b)  # the same networks, bit for bit on the CPU
    scan = "results/weights/**/*.parquet"
    wa = pl.scan_parquet(work / scan, hive_partitioning=True).sort(*keys, "epoch", "tensor")
    wb = pl.scan_parquet(tmp_path / scan, hive_partitioning=True).sort(*keys, "epoch", "tensor")
    assert wa.select("values").collect().equals(wb.select("values").collect())
    log = (tmp_path / "results/logs/train/pack-digits_mlp_0.log").read_text()
    assert "pack done: 2 blocks" in log and not list((tmp_path / "results/resume").glob("*"))
    for table in ("stats", "strength_maps"):  # the same statistics as one job per block
        a = pl.read_parquet(work / f"results/tables/{table}.parquet")
        b = pl.read_parquet(tmp_path / f"results/tables/{table}.parquet")
        keys = [c for c, dtype in a.schema.items() if not dtype.is_nested()]
        assert_frame_equal(a.sort(keys), b.sort(keys), check_exact=True)
    # The jobs after a pack name only its first file; a missing file of any of its blocks
    # still reruns the pack (and only it and what reads it), whichever block it is.
    again = [*(f"results/tables/{t}.parquet" for t in tables), "--configfile", *configs]
    assert "Nothing to be done" in snakemake(tmp_path, "-n", *again, str(packed)).stdout
    pack = sorted((tmp_path / "results/weights/dataset=digits").glob("arch=mlp-*/*/*.parquet"))
    assert len(pack) == 2
    for weights in pack:  # the whole workflow planned (rule all names every job)
        kept = weights.read_bytes()
        weights.unlink()
        plan = snakemake(tmp_path, "-n", "--configfile", *configs, str(packed))
        weights.write_bytes(kept)
        counts = job_counts(plan.stdout)
        assert counts.get("train_digits_mlp_0") == 1 and counts.get("weight_stats_digits_mlp_0")
        assert not any(k.startswith("train_") and k != "train_digits_mlp_0" for k in counts)
