"""End to end on one small finished zoo: the docs' Python blocks run against it, `weightzoo
status` and `plan` read it, a moved copy retrains nothing, and `-d` picks its folder.

The zoo holds the architectures the README's snippets name (mlp-d2-w16 with a second
learning rate, cnn-b2-c8, 4 seeds, 30 epochs) at the tiny config's size otherwise.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from weightzoo import cli, planning
from weightzoo.config import load_config

pytestmark = pytest.mark.e2e
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TINY = ROOT / "config" / "test" / "tiny.yaml"
DOCS_ZOO = {
    "seeds": {"start": 0, "count": 4},
    "seeds_per_job": 4,
    "families": {
        "mlp": {
            "grid": [{"depth": [2], "width": [16]}, {"depth": [2], "width": [16], "lr": [1.0e-2]}],
            "train": {"epochs": 30},
        },
        "cnn": {"grid": [{"blocks": [2], "channels": [8]}], "train": {"epochs": 30}},
    },
}
# A Python block of README.md or docs/*.md that must not run in the tests (it needs a GPU,
# a cluster or the paper-scale zoo) is preceded by this line; every other block runs.
SKIP_MARKER = "<!-- docs-test: skip -->"
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def snakemake(
    workdir: Path, *args: str, cwd: Path = ROOT, timeout: int = 900
) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]
    return subprocess.run(
        cmd, check=False, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


@pytest.fixture(scope="module")
def docs_zoo(tmp_path_factory) -> tuple[Path, list[str]]:
    """The small zoo, built once with real snakemake in its own working directory."""
    work = tmp_path_factory.mktemp("docs_zoo")
    extra = work / "docs_zoo.yaml"
    extra.write_text(yaml.safe_dump(DOCS_ZOO))
    configs = [str(TINY), str(extra)]
    proc = snakemake(work, "--cores", "2", "--configfile", *configs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, configs


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown file with their first line, less those marked."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            previous = next((ln.strip() for ln in reversed(lines[: start - 1]) if ln.strip()), "")
            if previous != SKIP_MARKER:
                blocks.append((start + 1, "\n".join(body)))
        i += 1
    return blocks


def test_python_blocks_are_found_and_the_marker_skips_one(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("text\n```python\nx = 1\n```\n\n<!-- docs-test: skip -->\n```python\n"
                   "raise SystemExit\n```\n```bash\nls\n```\n")  # fmt: skip
    assert python_blocks(doc) == [(3, "x = 1")]


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_of_the_docs_runs_on_a_finished_zoo(doc, docs_zoo, monkeypatch):
    work, _ = docs_zoo
    monkeypatch.chdir(work)  # the blocks read "results/..." as a user's checkout does
    namespace: dict = {"__name__": "__docs__"}  # one file's blocks share names, in order
    for line, code in python_blocks(doc):
        try:
            exec(compile(code, f"{doc.name}:{line}", "exec"), namespace)
        except Exception as err:
            pytest.fail(f"{doc.relative_to(ROOT)}, the python block at line {line}: {err!r}")


def test_the_old_readme_filter_now_fails_loudly(docs_zoo, monkeypatch):
    """The README's loading snippet before it named setting and dataset: 2 settings' rows."""
    import polars as pl

    from weightzoo.dumps import MixedDumpsError, rows_to_state_dict

    monkeypatch.chdir(docs_zoo[0])
    w = pl.scan_parquet("results/weights/**/*.parquet", hive_partitioning=True)
    rows = w.filter(arch="mlp-d2-w16", seed=0, epoch=30).collect()
    with pytest.raises(MixedDumpsError, match=r"setting takes 2 values \['default', 'lr1e-2'\]"):
        rows_to_state_dict(rows.to_arrow())


def test_status_of_a_finished_zoo(docs_zoo, capsys):
    work, configs = docs_zoo
    plan = planning.make_plan(load_config(ROOT / "config/config.yaml", *configs))
    assert cli.main(["status", str(work / "results")]) == 0
    out = capsys.readouterr().out
    # every job of the run's table but the output-less `all` target is done
    jobs = plan.total_jobs - 1
    assert f"jobs of the last run: {jobs} of {jobs} done, 0 running, 0 failed, 0 to go" in out
    # 3 MLP/CNN cells and 2 ViT cells (tiny.yaml) on digits, 4 seeds each
    assert plan.networks == 5 * 4 and "networks trained: 20 (" in out
    assert "ETA for the whole zoo: nothing left to run" in out


def test_status_of_a_half_finished_copy_shows_the_running_epoch(docs_zoo, tmp_path, capsys):
    work = tmp_path / "work"
    shutil.copytree(docs_zoo[0], work, symlinks=True)
    unit = "dataset=digits/arch=cnn-b2-c8/setting=default/seeds-0-3.parquet"
    for kind in ("weights", "metrics", "runs"):  # the job has started, not finished
        (work / "results" / kind / unit).unlink()
        name = base64.urlsafe_b64encode(f"results/{kind}/{unit}".encode()).decode()
        (work / ".snakemake/incomplete" / name).write_text('{"external_jobid": null}')
    log = work / "results/logs/train/digits/cnn-b2-c8/default/seeds-0-3.log"
    log.write_text(
        "2026-01-01 00:00:00,000 INFO weightzoo.progress: cnn-b2-c8 seeds 0-3: epoch 12/30: "
        "train loss 0.5000, test acc 0.8000 (mean of 4 seeds), 0.50 s/epoch, ETA 9 s\n"
    )
    (work / ".snakemake/locks").mkdir(exist_ok=True)
    (work / ".snakemake/locks/0.output.lock").write_text("")
    assert cli.main(["status", str(work / "results")]) == 0
    out = capsys.readouterr().out
    assert "1 running" in out and "networks trained: 16 (" in out  # 4 seeds fewer
    assert "train digits/cnn-b2-c8/default seeds 0-3: epoch 12/30, ETA 9 s" in out
    assert re.search(r"ETA for the whole zoo: about \d+ s", out)


def test_plan_counts_the_jobs_snakemake_plans(tmp_path, docs_zoo):
    _, configs = docs_zoo
    proc = snakemake(tmp_path, "-n", "--configfile", *configs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    total = int(re.search(r"^total\s+(\d+)$", proc.stdout, re.M)[1])
    plan = planning.make_plan(load_config(ROOT / "config/config.yaml", *configs))
    assert plan.total_jobs == total


def test_plan_against_the_finished_zoo_adds_and_retrains_nothing(docs_zoo, capsys):
    work, configs = docs_zoo
    argv = ["plan", "--configfile", *configs, "--results", str(work / "results")]
    assert cli.main(argv) == 0
    assert (
        "0 training jobs added, 0 retrained (another recipe, architecture or dump epochs), "
        "0 weights files no longer planned" in capsys.readouterr().out
    )
    faster = work / "faster.yaml"  # the CNN at another learning rate: its one job retrains
    faster.write_text(yaml.safe_dump({"families": {"cnn": {"train": {"lr": 0.01}}}}))
    assert cli.main([*argv[:2], *configs, str(faster), *argv[-2:]]) == 0
    out = capsys.readouterr().out
    assert "0 training jobs added, 1 retrained" in out
    assert "  retrained: dataset=digits/arch=cnn-b2-c8/setting=default/seeds-0-3.parquet" in out


def test_snakemake_warns_when_a_configfile_drops_grid_entries(tmp_path, default_config):
    first = default_config["families"]["mlp"]["grid"][0]
    override = tmp_path / "one_entry.yaml"
    override.write_text(yaml.safe_dump({"families": {"mlp": {"grid": [first]}}}))
    proc = snakemake(tmp_path, "-n", "--configfile", str(override))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        f"weightzoo: warning: {override} replaces families.mlp.grid: 1 grid entry (14 cells) "
        "instead of 2 (19 cells), 1 of them kept" in proc.stderr
    )


def test_a_copied_zoo_is_adopted_with_touch_and_retrains_nothing(docs_zoo, tmp_path):
    """Also the output folder: `-d DIR` works in DIR, whatever the current directory."""
    work, configs = docs_zoo
    new = tmp_path / "elsewhere"
    # a plain copy of results/ alone: new timestamps in copy order, no .snakemake records
    shutil.copytree(work / "results", new / "results", copy_function=shutil.copyfile)
    data = new / "results/data/digits.npz"
    for path in (new / "results").rglob("*"):  # the input copied an hour after its outputs
        if path.is_file() and path != data:
            os.utime(path, (path.stat().st_atime, data.stat().st_mtime - 3600))
    weights = sorted((new / "results/weights").rglob("*.parquet"))
    before = {p: p.read_bytes() for p in weights}
    here = tmp_path / "here"  # the shell's current directory, not the zoo's
    here.mkdir()
    proc = snakemake(new, "--cores", "1", "--touch", "--configfile", *configs, cwd=here)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = snakemake(new, "-n", "--configfile", *configs, cwd=here)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]
    proc = snakemake(new, "--cores", "2", "--configfile", *configs, cwd=here)
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr
    assert {p: p.read_bytes() for p in weights} == before
    assert (new / ".snakemake").is_dir() and list(here.iterdir()) == []
