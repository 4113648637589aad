"""The prepared GPU check runs (its small CPU version here) and writes its one Markdown file;
its projection's arithmetic, by hand."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT

from weightzoo.flops import CellFlops

sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check
from gpu_check import Layout, Rate, interpolate, project, spread


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("gpu-check") / "results-gpu.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/gpu_check.py"), "--cpu", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out.read_text()


def rows(text: str, section: str) -> list[str]:
    part = text.split(f"## {section}")[1].split("\n## ", maxsplit=1)[0]
    return [line for line in part.splitlines() if line.startswith("| ")]


@pytest.mark.e2e  # the whole CPU version, in a fresh process
def test_the_cpu_version_writes_every_section_and_says_no_gpu_was_measured(report):
    assert report.startswith("# weightzoo on one GPU")
    assert "No GPU was available when this file was generated" in report
    assert "polars 2" in report and "pyyaml" in report and "**missing**" not in report
    for section in ("(a) CUDA tests", "(b) Throughput", "(c) Projection"):
        assert f"\n## {section}" in report
        gpu_rows = [r for r in rows(report, section) if "| GPU |" in r]
        assert gpu_rows and all("no GPU on this machine: not measured" in r for r in gpu_rows)
    assert "| GPU (" not in report  # no row measured on a card (those name it)


@pytest.mark.e2e  # the whole CPU version, in a fresh process
def test_the_cpu_version_runs_the_job_tests_on_the_cpu(report):
    tests = [r for r in rows(report, "(a) CUDA tests") if r.startswith("| ") and "| CPU |" in r]
    results = [r.split(" | ")[2] for r in tests]
    assert len(tests) == 5 and results == ["pass"] * 4 + ["bits match"], tests


@pytest.mark.e2e  # the whole CPU version, in a fresh process
def test_the_cpu_version_measures_throughput_syncs_startup_and_the_log_cost(report):
    through = rows(report, "(b) Throughput")
    for family in ("mlp", "cnn", "vit"):
        assert any(
            re.match(rf"\| CPU \| MNIST-shaped \| {family}-\S+ \| 2 \| fp32 \| [\d,]+ \|", r)
            for r in through
        )
    # no host read per training step: only the epoch's losses and accuracies
    syncs = [r for r in through if "values read back to the host" in r]
    assert len(syncs) == 3 and all(" | 0 | 2 | " in r for r in syncs)
    assert any(re.search(r"\| \*\*\d+\.\d\d\*\* \|$", r) for r in through)  # start-up total
    shares = [float(m) for m in re.findall(r"\| (\d+\.\d+)% \|$", report, re.M)]
    assert len(shares) == 2 and max(shares) < 1.0  # the progress log, ≤ 1 % of training


@pytest.mark.e2e  # the whole CPU version, in a fresh process
def test_the_flop_floor_of_the_paper_config_is_in_the_file(report):
    projection = "\n".join(rows(report, "(c) Projection"))
    assert "| **all** |  | **6.184e+16** |" in projection
    assert (
        "| H100/H200 datasheet, TF32 tensor cores (a lead, not measured) | 495 | 2.1 min |"
        in projection
    )
    assert "`pack.jobs_per_family: 4`" in report and "36 training jobs" in report


def cell(arch: str, forward: int) -> CellFlops:
    return CellFlops(
        "mnist",
        "mlp",
        arch,
        n_params=10,
        forward=forward,
        n_train=256,
        n_test=100,
        epochs=2,
        seeds=4,
    )


def test_projection_adds_training_dumps_startup_and_statistics():
    rates = {("MNIST-shaped", "mlp"): {"a": Rate(k=2, forward=100, step_s=0.01, eval_s=0.001)}}
    inputs = {
        "startup_s": {"MNIST-shaped": 3.0},
        "dump_s": 0.5,
        "stats_s": 0.1,
        "stats_job_s": 2.0,
        "cores": 2,
    }
    p = project([cell("a", 100)], rates, Layout(1, 2), {"mlp": 3}, inputs)
    # 2 blocks of 2 seeds x (2 epochs x (2 steps x 0.01 + 100 x 0.001) + 2 x 256 x 0.001)
    assert p["training"] == pytest.approx(2 * (2 * (2 * 0.01 + 0.1) + 0.512))
    assert p["values"] == 4 * 3 * 10 and p["dumps"] == pytest.approx(60)
    assert p["jobs"] == 1 and p["start-up"] == 3.0  # both blocks packed into one job
    assert p["statistics"] == pytest.approx((120 * 0.1 + 1 * 2.0) / 2)
    assert p["total"] == pytest.approx(p["training"] + 60 + 3 + 7)
    assert project([cell("a", 100)], rates, Layout(0, 2), {"mlp": 3}, inputs)["jobs"] == 2


def test_unmeasured_architectures_are_interpolated_by_flops():
    points = [(100.0, 1.0), (10_000.0, 4.0)]
    assert interpolate(points, 1_000.0) == pytest.approx(2.0)  # log-log halfway
    assert interpolate(points, 10.0) == 1.0  # below: launch-bound, the smallest's time
    assert interpolate(points, 20_000.0) == pytest.approx(8.0)  # above: proportional
    assert spread([5, 1, 1000, 30, 10, 300], 3) == [1, 3, 2]  # 1, 30 (nearest 31.6), 1000
    assert spread([3, 2], 5) == [1, 0]


def test_the_layout_packs_each_dataset_and_family_into_at_most_n_jobs():
    assert [Layout(n, 10).jobs(24) for n in (0, 1, 4, 30)] == [24, 1, 4, 24]
    assert gpu_check.GOAL_S == 20 * 60
