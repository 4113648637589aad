"""The workflow on a real SLURM cluster: profiles/slurm against a local run of the same config.

A single-node cluster (slurmctld, slurmd, munged; two GPUs declared on mknod devices) is
started by tests/slurm/start-cluster.sh for this module and stopped after it. It needs root
(apt-get installs slurm-wlm and munge when missing): elsewhere the module is skipped, and
under CI (env CI set) it fails instead.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import ROOT

pytestmark = [pytest.mark.e2e]  # and SLURM: select with -k slurm
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
CLUSTER = ROOT / "tests" / "slurm"
TINY = ROOT / "config" / "test" / "tiny.yaml"
RUN_COLUMNS = ["dataset", "arch", "seed", "n_params", "final_test_acc", "status"]
LOCAL_RULES = {
    "download_dataset",
    "aggregate_runs",
    "aggregate_stats",
    "aggregate_strength_maps",
    "claims",
    "figure",
    "dashboard",
    "all",
}
# The tiny zoo cut to 4 training jobs on digits; the ViTs ask for a GPU, the others do not.
OVERRIDE = {
    "datasets": ["digits"],
    "families": {
        "mlp": {
            "grid": [{"depth": [1], "width": [16]}],
            "resources": {"gpu": 0, "gpu_model": "", "mem_mb": 1000, "runtime": 5},
        },
        "cnn": {
            "grid": [{"blocks": [1], "channels": [4]}],
            "resources": {"gpu": 0, "gpu_model": "", "mem_mb": 1000, "runtime": 5},
        },
        "vit": {"resources": {"gpu": 1, "gpu_model": "", "mem_mb": 1000, "runtime": 5}},
    },
}
GPU_ARCHS = {"vit-d1-h1-e4-p4", "vit-d1-h2-e4-p4"}
CPU_ARCHS = {"mlp-d1-w16", "cnn-b1-c4"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Environment of a freshly started cluster; the cluster is stopped afterwards, always."""
    state = tmp_path_factory.mktemp("slurm-state")
    try:
        start = subprocess.run(
            [str(CLUSTER / "start-cluster.sh"), str(state)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if start.returncode != 0:
            why = (
                f"SLURM test cluster did not start (rc {start.returncode}): {start.stderr[-2000:]}"
            )
            if start.returncode == 2 and not os.environ.get("CI"):
                pytest.skip(why)  # this machine cannot host it (not root, no apt-get, ...)
            pytest.fail(why)
        yield {**os.environ, "SLURM_CONF": str(state / "slurm.conf")}
    finally:
        subprocess.run([str(CLUSTER / "stop-cluster.sh"), str(state)], timeout=300, check=False)


def run(cmd: list[str], env: dict | None = None, timeout: int = 400) -> tuple[int, str, float]:
    """Run cmd in its own process group (killed whole on timeout): rc, stderr, seconds."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"timed out after {timeout} s: {shlex.join(cmd)}\n{err[-3000:]}")
    return proc.returncode, err, time.perf_counter() - started


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The same config run through profiles/slurm and locally (profiles/local)."""
    config = tmp_path_factory.mktemp("config") / "slurm-test.yaml"
    config.write_text(yaml.safe_dump(OVERRIDE))
    configs = ["--configfile", str(TINY), str(config)]
    slurm, local = tmp_path_factory.mktemp("on-slurm"), tmp_path_factory.mktemp("local")

    rc, err, slurm_s = run(
        [
            SNAKEMAKE,
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(slurm),
            "--profile",
            str(ROOT / "profiles/slurm"),
            "--profile",
            str(CLUSTER / "profile"),
            *configs,
            "--verbose",
        ],
        env=cluster,
    )
    (slurm / "snakemake.stderr").write_text(err)
    assert rc == 0, err[-4000:]
    rc, local_err, local_s = run(
        [
            SNAKEMAKE,
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(local),
            "--profile",
            str(ROOT / "profiles/local"),
            "--cores",
            "2",
            *configs,
        ]
    )
    assert rc == 0, local_err[-4000:]
    print(f"\nwhole workflow: SLURM run {slurm_s:.1f} s, local run (2 cores) {local_s:.1f} s")
    return {"slurm": slurm, "local": local, "stderr": err, "env": cluster}


def slurm_jobs(env: dict) -> list[dict]:
    """Every job the cluster has seen (finished ones stay, MinJobAge=3600), with its script."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o"], env=env, capture_output=True, text=True, check=True
    ).stdout
    jobs = []
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        script = subprocess.run(
            ["scontrol", "write", "batch_script", fields["JobId"], "-"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        targets = re.search(r"--target-jobs((?: '[^']*')+)", script)[1]
        fields["targets"] = re.findall(r"'(\w+):([^']*)'", targets)  # (rule, wildcards)
        jobs.append(fields)
    return jobs


def sbatch_calls(stderr: str) -> list[str]:
    """The plugin's sbatch command lines (--verbose), without the long --wrap payload."""
    calls = re.findall(r"^sbatch call: (sbatch .*)$", stderr, re.M)
    return [re.sub(r' --wrap=".*', "", c).replace(" --wrap", "") for c in calls]


def test_workflow_completes_on_slurm(runs):
    slurm = runs["slurm"]
    assert (slurm / "results/index.html").stat().st_size > 0
    assert (slurm / "results/tables/claims.parquet").exists()
    calls = sbatch_calls(runs["stderr"])
    print("\nsbatch calls observed:\n" + "\n".join(calls))
    # prepare_dataset alone, then 4 training jobs with their statistics in groups of 2
    assert len(calls) == 3
    assert all(" -p weightzoo " in c and " -A " not in c for c in calls)


def test_slurm_results_equal_a_local_run(runs):
    tables = [
        pl.read_parquet(runs[k] / "results/tables/runs.parquet")
        .select(RUN_COLUMNS)
        .sort("arch", "seed")
        for k in ("slurm", "local")
    ]
    assert tables[0].height == 4 * 2
    assert tables[0].equals(tables[1])
    weights = [
        pl.scan_parquet(runs[k] / "results/weights/**/*.parquet", hive_partitioning=True)
        .select("arch", "seed", "epoch", "tensor", "values")
        .sort("arch", "seed", "epoch", "tensor")
        .collect()
        for k in ("slurm", "local")
    ]
    assert weights[0].height > 0
    assert weights[0].equals(weights[1])  # same bits: training is deterministic on CPU


def test_training_jobs_carry_their_gpu_requests(runs):
    submitted = slurm_jobs(runs["env"])
    prepare = [j for j in submitted if j["targets"][0][0] == "prepare_dataset"]
    assert len(prepare) == 1 and prepare[0].get("TresPerJob") is None  # no GPU asked, none got
    jobs = [j for j in submitted if any(r == "train" for r, _ in j["targets"])]
    for job in jobs:
        print(
            f"\nSLURM job {job['JobId']}: {job['JobState']} TresPerJob={job.get('TresPerJob')}"
            f" cpus={job['NumCPUs']} mem={job['MinMemoryNode']} time={job['TimeLimit']}: "
            + " ".join(f"{r}[{w}]" for r, w in sorted(job["targets"]))
        )
    trained = {
        re.search(r"arch=([^,]+)", w)[1]: job
        for job in jobs
        for r, w in job["targets"]
        if r == "train"
    }
    assert set(trained) == GPU_ARCHS | CPU_ARCHS
    assert all(job["JobState"] == "COMPLETED" for job in jobs)
    for job in jobs:
        archs = {re.search(r"arch=([^,]+)", w)[1] for r, w in job["targets"] if r == "train"}
        # a group runs its members one at a time: one member's GPU, not one per member
        expected = "gres:gpu:1" if archs & GPU_ARCHS else None
        assert job.get("TresPerJob") == expected, (archs, job.get("TresPerJob"))
        assert job["NumCPUs"] == "1"
    # the same, as the plugin submitted it
    train_calls = [c for c in sbatch_calls(runs["stderr"]) if "--comment rule_train" in c]
    assert len(train_calls) == len(jobs)
    assert sum("--gpus=1" in c for c in train_calls) == sum(
        j.get("TresPerJob") == "gres:gpu:1" for j in jobs
    )


def test_local_rules_stay_on_the_submitting_host(runs):
    submitted = {rule for job in slurm_jobs(runs["env"]) for rule, _ in job["targets"]}
    assert submitted == {"prepare_dataset", "train", "weight_stats"}
    assert not submitted & LOCAL_RULES
    stderr = runs["stderr"]
    for rule in ("aggregate_runs", "claims", "figure", "dashboard"):
        assert re.search(rf"^localrule {rule}:", stderr, re.M), rule
