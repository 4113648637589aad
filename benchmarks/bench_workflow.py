"""Sections (e) and (f): the workflow as a whole.

(e) Planning overhead: a dry run of the paper's config (about 1,315 jobs) against a trivial
    generated Snakefile with the same number of jobs, both timed as whole processes, plus an
    `-X importtime` attribution of what the real dry run imports.
(f) End to end: `snakemake --cores 2` on the default config from a clean results/, in a
    scratch copy of the repository's tracked files (the real results/ is never touched).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common
from common import ROOT, Options, Timing, ratio, table

TARGET_RATIO = 1.5
TAIL_LINES = 40


def _bin_dir() -> Path:
    """The bin/ of the project's venv (where snakemake lives), else the running Python's."""
    venv = ROOT / ".venv" / "bin"
    return venv if (venv / "snakemake").exists() else Path(sys.executable).parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{_bin_dir()}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)  # the workflow puts its own src/ first
    return env


def _tail(text: str, n: int = TAIL_LINES) -> str:
    lines = text.rstrip().splitlines()
    return "\n".join(lines[-n:])


def _failure(what: str, result: subprocess.CompletedProcess) -> str:
    out = (result.stdout or "") + (result.stderr or "")
    return (
        f"**{what} failed (exit {result.returncode}).** Last {TAIL_LINES} lines of its "
        f"output:\n\n```text\n{_tail(out)}\n```"
    )


# ---------------------------------------------------------------------------------------
# (e) Planning overhead
# ---------------------------------------------------------------------------------------


def _job_total(output: str) -> int | None:
    """The `total` line of Snakemake's job-stats summary (the last one printed)."""
    found = re.findall(r"^total\s+(\d+)\s*$", output, flags=re.M)
    return int(found[-1]) if found else None


def _trivial_snakefile(total: int) -> str:
    """A Snakefile of `total` jobs with no Python logic.

    Shape like the zoo's: many independent two-step chains with one wildcard each (train ->
    weight_stats), a few aggregation jobs over all of them, and a target rule.
    """
    n_agg = max(1, min(8, total // 10))
    leaves = total - n_agg - 1
    pairs, extra = divmod(leaves, 2)
    all_inputs = f'expand("out/agg{{k}}.txt", k=range({n_agg}))'
    if extra:
        all_inputs += ', "out/extra.txt"'
    rules = [
        f"N = {pairs}",
        "",
        "rule all:",
        f"    input: {all_inputs}",
        "",
        "rule a:",
        '    output: "out/a/{i}.txt"',
        '    shell: "touch {output}"',
        "",
        "rule b:",
        '    input: "out/a/{i}.txt"',
        '    output: "out/b/{i}.txt"',
        '    shell: "touch {output}"',
        "",
        "rule agg:",
        '    input: expand("out/b/{i}.txt", i=range(N))',
        '    output: "out/agg{k}.txt"',
        '    shell: "touch {output}"',
        "",
        "rule extra:",
        '    output: "out/extra.txt"',
        '    shell: "touch {output}"',
        "",
    ]
    return "\n".join(rules)


def _timed_pair(
    a: list[str], a_cwd: Path, b: list[str], b_cwd: Path, repeats: int
) -> tuple[Timing, Timing, list[subprocess.CompletedProcess]]:
    """Time two commands as whole processes, interleaved (one warm-up each, then a, b, a, b...).

    Interleaving keeps the paired ratios fair when the machine's load drifts. Returns the
    timings and every result (the caller checks the exit codes).
    """
    env = _env()
    results = []

    def run(cmd: list[str], cwd: Path) -> float:
        t0 = time.perf_counter()
        res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        results.append(res)
        return wall

    run(a, a_cwd)
    run(b, b_cwd)
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(run(a, a_cwd))
        tb.append(run(b, b_cwd))
    return Timing(ta), Timing(tb), results


def _import_attribution(cmd: list[str], cwd: Path) -> tuple[list[tuple[str, float]], str | None]:
    """Top-level imports of one run under `python -X importtime`: [(module, cumulative s)]
    sorted by cost, and the top-level import that pulled in torch (None: torch not imported).
    """
    python = _bin_dir() / "python"
    res = subprocess.run(
        [str(python), "-X", "importtime", "-m", "snakemake", *cmd[1:]],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    top: list[tuple[str, float]] = []
    torch_via = None
    torch_pending = False
    line_re = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)\s*$")
    for line in res.stderr.splitlines():
        m = line_re.match(line)
        if not m:
            continue
        cum_us, indent, name = int(m.group(1)), len(m.group(2)), m.group(3)
        if name == "torch" or name.startswith("torch."):
            torch_pending = True
        if indent <= 1:  # a top-level import (children are printed before their parent)
            top.append((name, cum_us / 1e6))
            if torch_pending and torch_via is None:
                torch_via = name
            torch_pending = False
    top.sort(key=lambda t: -t[1])
    return top, torch_via


def section_planning(opts: Options) -> str:
    cfg = "config/test/tiny.yaml" if opts.quick else "config/paper.yaml"
    base = opts.workdir / "planning"
    real_dir, trivial_dir = base / "real", base / "trivial"
    for d in (real_dir, trivial_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    snakemake = str(_bin_dir() / "snakemake")
    flags = ["-n", "--quiet", "rules"]  # dry run; no per-job blocks, only the summaries
    real = [
        snakemake,
        *flags,
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(real_dir),
        "--configfile",
        str(ROOT / cfg),
    ]
    heading = "## (e) Planning overhead\n\n"

    probe = subprocess.run(
        real, cwd=real_dir, env=_env(), capture_output=True, text=True, check=False
    )
    total = _job_total(probe.stdout + probe.stderr)
    if probe.returncode != 0 or total is None:
        return heading + _failure(f"The dry run of `{cfg}`", probe)
    (trivial_dir / "Snakefile").write_text(_trivial_snakefile(total))
    trivial = [snakemake, *flags]
    t_real, t_triv, results = _timed_pair(real, real_dir, trivial, trivial_dir, opts.repeats)
    for res, what in zip(
        results, [f"dry run of `{cfg}`", "trivial dry run"] * (len(results) // 2), strict=True
    ):
        if res.returncode != 0:
            return heading + _failure(f"A {what}", res)
    total_triv = _job_total(results[1].stdout + results[1].stderr)
    top, torch_via = _import_attribution(real, real_dir)

    rows = [
        [f"weightzoo, `{cfg}`", total, t_real.fmt()],
        ["trivial Snakefile (no Python logic)", total_triv, t_triv.fmt()],
    ]
    med_ratio = t_real.median / t_triv.median
    verdict = "within" if med_ratio <= TARGET_RATIO else "**over**"
    heavy = [(n, s) for n, s in top if s >= 0.05][:6]
    heavy_txt = ", ".join(f"`{n}` {s:.2f} s" for n, s in heavy) or "none over 0.05 s"
    torch_txt = (
        f"**torch is imported at planning time**, pulled in by `{torch_via}`"
        if torch_via
        else "torch is not imported at planning time"
    )
    return heading + "\n".join(
        [
            f"Wall time of `snakemake -n --quiet rules` as a whole process (interpreter start, "
            f"parsing, config validation, sweep expansion, DAG of every job, the dry-run "
            f"summary), in an empty `--directory` so every job is planned and the repository's "
            f"results/ and .snakemake/ are untouched; no dataset is needed. The reference is a "
            f"generated Snakefile with the same number of jobs and a similar DAG (independent "
            f"two-step chains with one wildcard each, {max(1, min(8, total // 10))} aggregation "
            f"jobs over all of them, a target rule) and no Python logic. Median of "
            f"{opts.repeats} runs each, interleaved, after one warm-up each.",
            "",
            table(["workflow", "jobs", "dry run"], rows),
            "",
            f"Ratio weightzoo / trivial: {ratio(t_real, t_triv)}, {verdict} the "
            f"{TARGET_RATIO}× target.",
            "",
            f"What the real dry run imports, from one extra run under `python -X importtime` "
            f"(cumulative, top-level imports; the flag itself adds some time): {heavy_txt}. "
            f"{torch_txt}.",
        ]
    )


# ---------------------------------------------------------------------------------------
# (f) End to end
# ---------------------------------------------------------------------------------------


def _scratch_copy(dest: Path) -> int:
    """Copy the repository's tracked files (working-tree versions) into dest; file count."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
    ).stdout
    shutil.rmtree(dest, ignore_errors=True)
    n = 0
    for raw in listed.split(b"\0"):
        if not raw:
            continue
        rel = os.fsdecode(raw)
        src = ROOT / rel
        if not (src.is_file() or src.is_symlink()):  # deleted in the working tree, submodule
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel, follow_symlinks=False)
        n += 1
    return n


def _job_benchmarks(results: Path) -> dict[str, list[tuple[str, float]]]:
    """max_rss (MiB) of every job with a `benchmark:` file, by rule: {rule: [(job, MiB)]}."""
    out: dict[str, list[tuple[str, float]]] = {}
    root = results / "benchmarks"
    for tsv in sorted(root.rglob("*.tsv")):
        rel = tsv.relative_to(root)
        with tsv.open() as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if not rows:
            continue
        try:
            rss = max(float(r["max_rss"]) for r in rows)
        except (KeyError, ValueError):  # "NA" where the job was too short to sample
            continue
        job = rel.with_suffix("")  # the rule's folder and the job, or the rule's one file
        out.setdefault(job.parts[0], []).append((str(job), rss))
    return out


def _dir_size(path: Path) -> tuple[int, int]:
    """(bytes, files) under path."""
    size = files = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            p = Path(dirpath) / name
            if not p.is_symlink():
                size += p.stat().st_size
                files += 1
    return size, files


def _run_rows(results: Path) -> int | None:
    import pyarrow.parquet as pq

    path = results / "tables" / "runs.parquet"
    return pq.read_metadata(path).num_rows if path.exists() else None


def section_end_to_end(opts: Options) -> str:
    heading = "## (f) End to end\n\n"
    repo = opts.workdir / "e2e"
    n_files = _scratch_copy(repo)
    cfg_args = ["--configfile", "config/test/tiny.yaml"] if opts.quick else []
    cfg_name = "config/test/tiny.yaml" if opts.quick else "config/config.yaml (the default)"
    cmd = [str(_bin_dir() / "snakemake"), "--cores", "2", *cfg_args]
    walls, peaks, largest, runs = [], [], [], []
    failure = None
    for i in range(opts.repeats):
        for d in ("results", ".snakemake"):
            shutil.rmtree(repo / d, ignore_errors=True)
        wall, peak, res = common.run_with_peak_rss(cmd, cwd=repo, env=_env())
        if res.returncode != 0:
            failure = _failure(f"Run {i + 1} of {opts.repeats}", res)
            break
        walls.append(wall)
        peaks.append(peak)
        runs.append(res)
        bench = _job_benchmarks(repo / "results")
        largest.append(max((rss for jobs in bench.values() for _, rss in jobs), default=0.0))

    intro = (
        f"`snakemake --cores 2` on {cfg_name}, run in a scratch copy of the repository's "
        f"{n_files} tracked files (`{repo.relative_to(ROOT) if repo.is_relative_to(ROOT) else repo}`)"
        f" with the project's venv, each run from a clean state (no results/, no .snakemake/). "
        f"{opts.repeats} run(s) were asked for; {len(walls)} succeeded. Peak memory is the "
        f"summed RSS of Snakemake's whole process tree, sampled every 50 ms; per-job max_rss "
        f"comes from the `benchmark:` files the rules write under results/benchmarks/."
    )
    if not walls:
        return heading + intro + "\n\n" + (failure or "No run was made (repeats = 0).")

    out = runs[-1].stdout
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", out)
    n_jobs = done[-1][1] if done else "?"
    bench = _job_benchmarks(repo / "results")
    n_nets = _run_rows(repo / "results")
    size, n_out = _dir_size(repo / "results")
    rows = [
        ["wall time", Timing(walls).fmt()],
        ["peak RSS, whole process tree", Timing(peaks).fmt(unit="MiB", digits=0)],
        ["largest per-job max_rss", Timing(largest).fmt(unit="MiB", digits=0)],
        ["jobs run (Snakemake's count)", n_jobs],
        ["jobs with a benchmark file", sum(len(v) for v in bench.values())],
        ["trained networks (rows of tables/runs.parquet)", n_nets if n_nets is not None else "?"],
        ["results/ size", f"{size / 2**20:.1f} MiB in {n_out} files"],
    ]
    per_rule = []
    for rule, jobs in sorted(bench.items()):
        job, rss = max(jobs, key=lambda t: t[1])
        per_rule.append(
            [
                rule,
                len(jobs),
                f"{statistics.median(r for _, r in jobs):.0f}",
                f"{rss:.0f}",
                f"`{job}`",
            ]
        )
    parts = [
        intro,
        "",
        table(["", "value"], rows),
        "",
        "Per rule, from the last run's benchmark files (max_rss in MiB):",
        "",
        table(["rule", "jobs", "median max_rss", "largest max_rss", "largest job"], per_rule),
    ]
    if failure:
        parts += ["", failure]
    return heading + "\n".join(parts)
