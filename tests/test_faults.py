"""Faults a cluster throws, end to end with real `snakemake` on a copy of the workflow: what
reruns (content, not timestamps), stops, damaged and missing files, a full disk, a read-only
folder, cells that left the config."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from test_integrity import flip_a_bit_in_the_values
from test_workflow import SNAKEMAKE, job_counts, write_blobs

pytestmark = pytest.mark.e2e
WORKFLOW = ["Snakefile", "rules", "workflow", "src/weightzoo", "config", "profiles", "envs",
            "report"]  # fmt: skip
# two small MLPs on a user dataset named by a relative path: 2 training jobs, then the tables,
# the claims, the prediction, every figure and the dashboard
ZOO = {
    "datasets": ["blobs"], "data": {"user": {"blobs": "blobs.npz"}},
    "seeds": {"start": 0, "count": 2}, "seeds_per_job": 2, "dump_epochs": [1],
    "families": {"mlp": {"grid": [{"depth": 1, "width": [4, 8]}], "train": {"epochs": 2}},
                 "cnn": {"enabled": False}, "vit": {"enabled": False}},
}  # fmt: skip
W8 = "dataset=blobs/arch=mlp-d1-w8/setting=default/seeds-0-1.parquet"


def clone(dest: Path) -> Path:
    """A copy of the workflow as a fresh clone has it: every file with a new modification time."""
    for part in WORKFLOW:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, copy_function=shutil.copy,
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest / part)
    return dest


def run(repo: Path, work: Path, *args: str, config: dict | None = None, **popen):
    """snakemake with `repo`'s Snakefile in `work`, the zoo's config (or `config`) merged in."""
    cfg = work / f"config-{time.monotonic_ns()}.yaml"
    cfg.write_text(yaml.safe_dump(config or ZOO))
    cmd = [SNAKEMAKE, "--snakefile", str(repo / "Snakefile"), "--directory", str(work),
           "--configfile", str(cfg), *args]  # fmt: skip
    if popen:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                **popen)  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)


def plan(repo: Path, work: Path, *args: str, config: dict | None = None) -> dict[str, int]:
    proc = run(repo, work, "-n", *args, config=config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if "Nothing to be done" in proc.stdout + proc.stderr:
        return {}
    return job_counts(proc.stdout)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The small zoo trained and analysed once, by a copy of the workflow."""
    base = tmp_path_factory.mktemp("faults")
    repo, work = clone(base / "repo"), base / "work"
    work.mkdir()
    write_blobs(work / "blobs.npz")
    proc = run(repo, work, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return repo, work


@pytest.fixture
def own_zoo(zoo, tmp_path):
    """A copy of the finished zoo (results, Snakemake's records and a clone of the workflow),
    for a test that changes it."""
    _, work = zoo
    shutil.copytree(work, tmp_path / "work", symlinks=True)
    return clone(tmp_path / "repo"), tmp_path / "work"


def test_a_clone_a_touch_or_a_clock_ahead_retrains_nothing(zoo, tmp_path):
    _, work = zoo
    repo = clone(tmp_path / "repo")  # a fresh clone: every script newer than every output
    ahead = time.time() + 3600  # and a file server whose clock runs an hour ahead
    for path in (repo / "workflow/scripts/train.py", repo / "src/weightzoo/training.py"):
        os.utime(path, (ahead, ahead))
    os.utime(work / "blobs.npz")  # the dataset copied again without its times (rsync without -t)
    assert plan(repo, work) == {}


def test_an_edit_of_the_training_library_retrains_and_its_revert_does_not(zoo, tmp_path):
    _, work = zoo
    repo = clone(tmp_path / "repo")
    training = repo / "src/weightzoo/training.py"
    original = training.read_text()
    training.write_text(original.replace("def fit(", "MARGIN = 1.0\n\n\ndef fit(", 1))
    counts = plan(repo, work)
    assert counts["train"] == 2 and "prepare_dataset" not in counts
    training.write_text(original)
    assert plan(repo, work) == {}


def test_the_same_dataset_named_by_another_path_is_the_same_input(zoo):
    repo, work = zoo
    for name in (str(work / "blobs.npz"), "./blobs.npz", f"../{work.name}/blobs.npz"):
        config = {**ZOO, "data": {"user": {"blobs": name}}}
        assert plan(repo, work, config=config) == {}, name


def test_a_missing_figure_or_table_is_rebuilt_by_the_next_run(own_zoo):
    repo, work = own_zoo
    for name in ("weight_histograms.svg", "weight_histograms.html"):  # no job reads these
        (work / "results/figures" / name).unlink()
    # the figure, and what shows it: the dashboard and the report (weight_histograms is one of
    # the report's figures)
    assert plan(repo, work) == {"figure": 1, "dashboard": 1, "report": 1, "all": 1, "total": 4}
    (work / "results/tables/runs.csv").unlink()  # nor this
    assert plan(repo, work)["aggregate_runs"] == 1


def test_a_stopped_retrain_keeps_the_finished_weights_and_says_what_a_rerun_does(own_zoo):
    repo, work = own_zoo
    finished = {p: p.read_bytes() for p in (work / "results/weights").rglob("*.parquet")}
    slow = {**ZOO, "families": {**ZOO["families"], "mlp": {
        "grid": [{"depth": 1, "width": [4, 8]}], "train": {"epochs": 3000, "batch_size": 4}}}}  # fmt: skip
    proc = run(repo, work, "--cores", "1", config=slow, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (states := list((work / "results/resume").rglob("state.pt"))):
            assert proc.poll() is None and time.monotonic() < deadline, "the retrain never started"
            time.sleep(0.1)
        time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # a time limit: SIGTERM to snakemake and its jobs
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-3000:]
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith(
            "weightzoo: stopped by SIGTERM (not failed); run the same command again to go on"
        )
    )
    arch = states[0].parts[-4]  # results/resume/blobs/<arch>/default/seeds-0-1/state.pt
    assert re.search(rf"weightzoo: stopped by SIGTERM \(not failed\); blobs {arch} default "
                     r"seeds 0-1 stopped after epoch \d+/3000; progress saved after epoch \d+: "
                     r"a rerun resumes from there", stderr), stderr[-3000:]  # fmt: skip
    log = (work / f"results/logs/train/blobs/{arch}/default/seeds-0-1.log").read_text()
    assert "stopped by SIGTERM (not failed)" in log
    # the finished weights stay where readers find them, untouched, until a retrain completes
    assert {p: p.read_bytes() for p in finished} == finished
    assert not (
        work / f"results/runs/dataset=blobs/arch={arch}/setting=default/seeds-0-1.parquet"
    ).exists()
    assert not [p for p in (work / "results").rglob("*") if p.name.endswith(".tmp")]
    # the stopped job is planned again: its runs file went before it started
    assert plan(repo, work, config=slow)["train"] == 2


def test_a_damaged_weights_file_is_named_with_its_job_and_its_advice_redoes_it_alone(own_zoo):
    repo, work = own_zoo
    weights = work / "results/weights" / W8
    flip_a_bit_in_the_values(weights)
    rehist = {**ZOO, "analysis": {"hist": {"range": [-2.0, 2.0]}}}  # reruns every weight_stats
    proc = run(repo, work, "--cores", "1", config=rehist)
    assert proc.returncode != 0
    job = "train (dataset=blobs, arch=mlp-d1-w8, setting=default, seeds=0-1)"
    line = next(x for x in proc.stderr.splitlines() if x.startswith("weightzoo: results/weights"))
    assert line.startswith(f"weightzoo: results/weights/{W8} is damaged (")
    assert (
        f"it was written by {job}; delete it, or run with --forcerun results/weights/{W8}" in line
    )
    assert "Traceback" not in proc.stderr
    assert plan(repo, work, "--forcerun", f"results/weights/{W8}", config=rehist)["train"] == 1


def test_cells_that_left_the_config_are_named_at_the_start_of_a_run(zoo):
    repo, work = zoo
    fewer = {**ZOO, "families": {**ZOO["families"], "mlp": {
        "grid": [{"depth": 1, "width": [8]}], "train": {"epochs": 2}}}}  # fmt: skip
    proc = run(repo, work, "-n", config=fewer)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "weightzoo: results/ holds 1 trained block(s) of 1 cell(s) that the config no longer "
        "asks for (dataset=blobs/arch=mlp-d1-w4/setting=default); the tables and open_zoo "
        "ignore them, weightzoo.inventory.remove_stale deletes them" in proc.stderr
    )


@pytest.fixture
def mounts():
    """Mount points made by a test (root only), unmounted after it."""
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    made: list[Path] = []
    yield made
    for point in reversed(made):
        subprocess.run(["umount", "-l", str(point)], check=False)


def mount(made: list[Path], *args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    made.append(Path(args[-1]))


def test_a_read_only_folder_is_named_before_any_job_starts(own_zoo, mounts):
    repo, work = own_zoo
    figures = work / "results/figures"
    mount(mounts, "--bind", str(figures), str(figures))
    mount(mounts, "-o", "remount,bind,ro", str(figures))
    wider = {**ZOO, "figures": {"width": 333}}  # every figure would be redone
    proc = run(repo, work, "--cores", "1", config=wider)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"weightzoo: {figures} cannot be written (a read-only file system or folder, or no "
        "permission): make it writable, then run again"
    )
    assert "Traceback" not in proc.stderr and "rule figure" not in proc.stdout
    assert not list((work / ".snakemake").glob("incomplete/*"))  # no job was marked as begun


def test_a_full_disk_is_one_line_naming_it_and_leaves_no_temporary_file(tmp_path, mounts):
    repo, work = clone(tmp_path / "repo"), tmp_path / "work"
    (work / "results").mkdir(parents=True)
    mount(mounts, "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(work / "results"))
    write_blobs(work / "blobs.npz")
    wide = {**ZOO, "families": {**ZOO["families"], "mlp": {
        "grid": [{"depth": 1, "width": [2000]}], "train": {"epochs": 2}}}}  # fmt: skip
    proc = run(repo, work, "--cores", "1", "results/tables/runs.parquet", config=wide)
    assert proc.returncode != 0
    line = next(x for x in proc.stderr.splitlines() if "no space left" in x)
    assert re.fullmatch(
        rf"weightzoo: results/weights/dataset=blobs/arch=mlp-d1-w2000/setting=default/"
        rf"seeds-0-1\.parquet: no space left on the disk mounted at {work}/results "
        r"\([\d.]+ [KM]?B free of 1\.0 MB\); it needs about 18\.8 MB: free space there \(or move "
        r"results/ to a larger disk\), then run the same command again",
        line,
    ), line
    assert "Traceback" not in proc.stderr
    assert not [p for p in (work / "results").rglob("*") if p.name.endswith(".tmp")]
