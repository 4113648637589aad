"""The `code` param of every rule: content hashes of the code a job runs, not modification
times."""

from __future__ import annotations

import ast
import os
import shutil
import time
from pathlib import Path

from conftest import ROOT

from weightzoo.codehash import job_code

SCRIPTS = ROOT / "workflow" / "scripts"
SRC = ROOT / "src"


def test_training_code_lists_the_modules_training_reaches_and_not_the_analysis():
    code = job_code(SCRIPTS / "train.py", SRC)
    assert set(code) == {
        "workflow/scripts/train.py", "workflow/scripts/_src_path.py",
        "weightzoo/jobs.py:run_logged,train_job", "weightzoo/__init__.py",
        "weightzoo/data.py", "weightzoo/dumps.py", "weightzoo/io.py", "weightzoo/stops.py",
        "weightzoo/families.py", "weightzoo/models.py", "weightzoo/progress.py",
        "weightzoo/resume.py", "weightzoo/tables.py", "weightzoo/training.py",
    }  # fmt: skip
    assert all(len(h) == 12 for h in code.values())


def test_statistics_code_has_the_statistics_and_not_the_training():
    code = job_code(SCRIPTS / "weight_stats.py", SRC)
    assert "weightzoo/stats.py" in code and "weightzoo/spectral.py" in code
    assert "weightzoo/training.py" not in code and "weightzoo/models.py" not in code


def copy_library(tmp_path: Path) -> tuple[Path, Path]:
    scripts = tmp_path / "workflow" / "scripts"
    shutil.copytree(SCRIPTS, scripts)
    shutil.copytree(SRC / "weightzoo", tmp_path / "src" / "weightzoo",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return scripts, tmp_path / "src"


def test_a_new_modification_time_changes_no_hash(tmp_path):
    scripts, src = copy_library(tmp_path)
    before = job_code(scripts / "train.py", src)
    job_code.cache_clear()
    future = time.time() + 3600  # a file server's clock an hour ahead, or a fresh checkout
    for path in [*scripts.iterdir(), *(src / "weightzoo").iterdir()]:
        os.utime(path, (future, future))
    assert job_code(scripts / "train.py", src) == before


def test_an_edit_of_a_library_module_changes_the_hash_of_the_jobs_that_reach_it(tmp_path):
    scripts, src = copy_library(tmp_path)
    train, stats = job_code(scripts / "train.py", src), job_code(scripts / "weight_stats.py", src)
    training = src / "weightzoo" / "training.py"
    training.write_text(training.read_text().replace("def fit(", "def fit(  ", 1))
    job_code.cache_clear()
    edited = job_code(scripts / "train.py", src)
    assert edited["weightzoo/training.py"] != train["weightzoo/training.py"]
    assert {k for k in train if train[k] != edited[k]} == {"weightzoo/training.py"}
    assert job_code(scripts / "weight_stats.py", src) == stats  # statistics never reach it


def test_an_edit_of_one_job_function_reruns_only_its_rule(tmp_path):
    scripts, src = copy_library(tmp_path)
    before = {s: job_code(scripts / s, src) for s in ("train.py", "claims.py", "figure.py")}
    jobs = src / "weightzoo" / "jobs.py"
    text = jobs.read_text()
    jobs.write_text(text.replace('"claims of %d runs in %d cells', '"claims: %d runs in %d cells'))
    job_code.cache_clear()
    after = {s: job_code(scripts / s, src) for s in before}
    assert after["train.py"] == before["train.py"] and after["figure.py"] == before["figure.py"]
    key = "weightzoo/jobs.py:claims_job,run_logged"
    assert after["claims.py"][key] != before["claims.py"][key]


def test_windows_line_endings_are_the_same_code(tmp_path):
    scripts, src = copy_library(tmp_path)
    before = job_code(scripts / "weight_stats.py", src)
    stats = src / "weightzoo" / "stats.py"
    stats.write_bytes(stats.read_bytes().replace(b"\n", b"\r\n"))
    job_code.cache_clear()
    assert job_code(scripts / "weight_stats.py", src) == before


def test_relative_imports_and_packages_are_followed(tmp_path):
    package = tmp_path / "src" / "weightzoo"
    (package / "analysis").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(
        "import logging\n\n\ndef helper():\n    return 1\n\n\n"
        "def claims_job():\n    from weightzoo.analysis import claims\n\n    return helper()\n\n\n"
        "def other_job():\n    from weightzoo import unused\n"
    )
    (package / "unused.py").write_text("X = 1\n")
    (package / "analysis" / "__init__.py").write_text("from .claims import run\n")
    (package / "analysis" / "claims.py").write_text("from ..tables import KEYS\n\nrun = 1\n")
    (package / "tables.py").write_text("KEYS = []\n")
    script = tmp_path / "claims.py"
    script.write_text("from weightzoo.jobs import claims_job\n\nclaims_job()\n")
    code = job_code(script, tmp_path / "src")
    assert set(code) == {
        "workflow/scripts/claims.py", "weightzoo/__init__.py", "weightzoo/jobs.py:claims_job",
        "weightzoo/analysis/__init__.py", "weightzoo/analysis/claims.py", "weightzoo/tables.py",
    }  # fmt: skip


def test_each_module_is_scanned_for_imports_once_for_every_script(tmp_path, monkeypatch):
    scripts, src = copy_library(tmp_path)
    from weightzoo import codehash

    scanned = []
    original = codehash._Library.imported

    def counting(self, node, module):
        if isinstance(node, ast.Module):  # a whole module, not one statement of it
            scanned.append(module)
        return original(self, node, module)

    monkeypatch.setattr(codehash._Library, "imported", counting)
    for script in ("train.py", "weight_stats.py", "claims.py", "figure.py"):
        job_code(scripts / script, src)
    assert scanned and len(scanned) == len(set(scanned))  # no module's whole tree twice
