"""Where a running or finished zoo stands, from Snakemake's own records and the results.

Snakemake keeps, in the working directory's `.snakemake/`: a metadata record per output
file of every finished job (`metadata/`, with rule, log, start and end time), an
`incomplete/` marker per output file of every job that has started but not finished, lock
files while a Snakemake process holds the directory (`locks/`) and one log per invocation
(`log/*.snakemake.log`, with the run's job table and "Error in rule"
blocks). `zoo_status(results)` reads those, the per-job runs files (networks trained) and the
running training jobs' logs (their last "epoch k/N ... ETA" line), and estimates the time
left for the whole run from the mean duration of each rule's finished jobs.
"""

from __future__ import annotations

import base64
import json
import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from weightzoo.progress import duration

# A progress line of weightzoo.progress: an epoch done, or a heartbeat within an epoch.
EPOCH_LINE = re.compile(
    r"epoch (?P<epoch>\d+)/(?P<epochs>\d+)(?P<running> running for [^,]+)?.*ETA (?P<eta>.+)$"
)
ETA_PART = re.compile(r"(\d+) (h|min|s)")
TRAIN_OUTPUT = re.compile(
    r"results/weights/dataset=(?P<dataset>[^/]+)/arch=(?P<arch>[^/]+)/"
    r"setting=(?P<setting>[^/]+)/seeds-(?P<seeds>[\d-]+)\.parquet"
)
ERROR_IN_RULE = re.compile(r"^Error in rule (\w+):\n(?:\s+\S.*\n)*?\s+log: (\S+)", re.M)


def eta_seconds(text: str) -> float | None:
    """Seconds of an ETA as weightzoo.progress.duration writes it (`3 min 05 s`); None when
    it is not known yet."""
    parts = ETA_PART.findall(text)
    if not parts:
        return None
    scale = {"h": 3600, "min": 60, "s": 1}
    return float(sum(int(n) * scale[u] for n, u in parts))


def _decode(parts: list[str]) -> str:
    """A file key of Snakemake's file persistence: urlsafe base64, split into path parts of
    at most NAME_MAX characters, every part but the last prefixed with '@'."""
    joined = "".join(p.removeprefix("@") for p in parts)
    return base64.urlsafe_b64decode(joined.encode()).decode()


def _records(folder: Path) -> dict[str, Path]:
    """The decoded file keys of one .snakemake/ record folder, with their record files."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in folder.rglob("*"):
        if path.is_file() and path.name != "migration_underway":
            parts = list(path.relative_to(folder).parts)
            try:
                out[_decode(parts)] = path
            except (ValueError, UnicodeDecodeError):
                continue
    return out


@dataclass(frozen=True)
class RunningJob:
    """A job with an incomplete marker; for training jobs, its progress from its log."""

    rule: str
    what: str
    epoch: int | None = None
    epochs: int | None = None
    eta_s: float | None = None
    eta_text: str = ""


@dataclass
class ZooStatus:
    """Jobs done / running / failed, networks trained and the time left of one zoo. `planned`
    is the job table of the last Snakemake run (the jobs that run had to do), `done` counts
    the jobs finished since it started, `done_before` those finished by earlier runs."""

    results: Path
    snakemake_running: bool
    planned: dict[str, int] = field(default_factory=dict)  # rule -> jobs, the last run's plan
    done: dict[str, int] = field(default_factory=dict)
    done_before: int = 0
    running: list[RunningJob] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)  # rule -> logs
    networks: dict[str, int] = field(default_factory=dict)  # status -> runs
    mean_job_s: dict[str, float] = field(default_factory=dict)
    log: Path | None = None

    @property
    def total_planned(self) -> int:
        return sum(self.planned.values())

    def to_go(self, rule: str) -> int:
        """Jobs of `rule` in the last run's plan not done, running or failed."""
        running = sum(j.rule == rule for j in self.running)
        failed = len(self.failed.get(rule, []))
        return max(self.planned.get(rule, 0) - self.done.get(rule, 0) - running - failed, 0)

    def untimed(self) -> int:
        """Jobs to go of rules with no finished job to take a time from."""
        return sum(self.to_go(r) for r in self.planned if r not in self.mean_job_s)

    def eta_s(self) -> float:
        """Seconds left for the last run: the running jobs' own ETAs and each rule's jobs to
        go at that rule's mean duration so far, shared by as many jobs as run now. Jobs of
        rules not timed yet (see `untimed`) count as nothing."""
        work = 0.0
        for job in self.running:
            if job.eta_s is not None:
                work += job.eta_s
            elif job.rule in self.mean_job_s:
                work += self.mean_job_s[job.rule] / 2  # half way through, on average
        for rule, mean in self.mean_job_s.items():
            work += self.to_go(rule) * mean
        return work / max(len(self.running), 1)


LOG_NAME = re.compile(r"(\d{4}-\d\d-\d\dT\d{6}\.\d+)\.snakemake\.log")


def log_started(log: Path) -> float:
    """When a Snakemake run started, from its log's name (local time, as Snakemake names it);
    the file's modification time if the name does not say."""
    if m := LOG_NAME.fullmatch(log.name):
        return datetime.strptime(m[1], "%Y-%m-%dT%H%M%S.%f").timestamp()
    return log.stat().st_mtime


def latest_log(workdir: Path) -> Path | None:
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    return logs[-1] if logs else None


def planned_jobs(log_text: str) -> dict[str, int]:
    """The job table ("Job stats:") of a Snakemake log: rule -> jobs planned."""
    if "Job stats:" not in log_text:
        return {}
    table = log_text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^(\w+)\s+(\d+)$", table, re.M)
    # `total` is the sum; the default target `all` has no output, so no record ever says done
    return {rule: int(n) for rule, n in rows if rule not in ("total", "all")}


def _progress(log: Path) -> tuple[int | None, int | None, float | None, str]:
    """The last progress line of a training log: epoch, epochs, ETA seconds and its text."""
    if not log.is_file():
        return None, None, None, ""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if m := EPOCH_LINE.search(line):
            epoch = int(m["epoch"]) - (1 if m["running"] else 0)  # a heartbeat: epoch k running
            eta = m["eta"].strip()
            return epoch, int(m["epochs"]), eta_seconds(eta), eta
    return None, None, None, ""


# The rule that writes each output folder of results/ (for jobs that have not finished).
RULE_OF_FOLDER = {
    "weights": "train",
    "metrics": "train",
    "runs": "train",
    "stats": "weight_stats",
    "strength_maps": "weight_stats",
    "figures": "figure",
}


def _running_job(workdir: Path, key: str) -> RunningJob:
    """The job behind an incomplete marker: a training job with its log's progress, or the
    rule that writes the marked file's folder."""
    if m := TRAIN_OUTPUT.fullmatch(key):
        log = workdir / (
            f"results/logs/train/{m['dataset']}/{m['arch']}/{m['setting']}/seeds-{m['seeds']}.log"
        )
        epoch, epochs, eta, text = _progress(log)
        what = f"{m['dataset']}/{m['arch']}/{m['setting']} seeds {m['seeds']}"
        return RunningJob("train", what, epoch, epochs, eta, text)
    parts = key.split("/")
    folder = parts[1] if len(parts) > 2 and parts[0] == "results" else ""
    rule = RULE_OF_FOLDER.get(folder, "other")
    # a job's several outputs share everything after their folder (the unit of a job)
    what = "/".join(parts[2:]).removesuffix(".parquet") if rule != "other" else key
    return RunningJob(rule, what)


def networks_trained(results: Path) -> dict[str, int]:
    """Runs written by finished training jobs, by status (ok / diverged)."""
    files = sorted((results / "runs").rglob("*.parquet"))
    if not files:
        return {}
    runs = pl.concat([pl.read_parquet(f, columns=["status"]) for f in files])
    return dict(runs.group_by("status").len().sort("status").iter_rows())


def finished_jobs(workdir: Path, incomplete: dict[str, Path]) -> dict[tuple[str, str], tuple]:
    """Finished jobs from Snakemake's metadata records of outputs that still exist, keyed by
    (rule, log) (one log per job, its several outputs one job): (start, end) times."""
    jobs: dict[tuple[str, str], tuple[float, float]] = {}
    for key, path in _records(workdir / ".snakemake" / "metadata").items():
        if key in incomplete or not (workdir / key).exists():
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if record.get("incomplete") or not record.get("rule"):
            continue
        job = (record["rule"], ",".join(record.get("log") or [key]))
        jobs[job] = (record.get("starttime") or 0.0, record.get("endtime") or 0.0)
    return jobs


def running_jobs(workdir: Path, incomplete: dict[str, Path]) -> list[RunningJob]:
    """One job per unit of incomplete markers (a job's several outputs each carry one)."""
    seen, out = set(), []
    for key in sorted(incomplete, key=lambda k: not TRAIN_OUTPUT.fullmatch(k)):
        job = _running_job(workdir, key)
        unit = (job.rule, "/".join(key.split("/")[2:]).removesuffix(".parquet") or key)
        if unit not in seen:
            seen.add(unit)
            out.append(job)
    return out


def zoo_status(results: str | Path = "results") -> ZooStatus:
    """The status of the zoo in `results` (the workflow's results/ folder; Snakemake's
    records are in the `.snakemake/` beside it)."""
    results = Path(results)
    if not results.is_dir():
        raise FileNotFoundError(f"{results}: no results folder (run the workflow first)")
    workdir = results.resolve().parent
    locks = workdir / ".snakemake" / "locks"
    status = ZooStatus(results, snakemake_running=locks.is_dir() and any(locks.iterdir()))
    incomplete = _records(workdir / ".snakemake" / "incomplete")
    jobs = finished_jobs(workdir, incomplete)
    status.running = running_jobs(workdir, incomplete)
    since = 0.0
    if log := latest_log(workdir):
        text = log.read_text(errors="replace")
        status.log, status.planned, since = log, planned_jobs(text), log_started(log)
        done_logs = {log_ for _, log_ in jobs}
        for rule, job_log in ERROR_IN_RULE.findall(text):
            if job_log not in done_logs and job_log not in status.failed.get(rule, []):
                status.failed.setdefault(rule, []).append(job_log)
    durations: dict[str, list[float]] = {}
    for (rule, _), (start, end) in jobs.items():
        if start >= since:
            status.done[rule] = status.done.get(rule, 0) + 1
        else:
            status.done_before += 1
        if end > start:
            durations.setdefault(rule, []).append(end - start)
    status.mean_job_s = {rule: statistics.fmean(t) for rule, t in durations.items()}
    status.networks = networks_trained(results)
    return status


def render_status(status: ZooStatus) -> str:
    """The status on one screen."""
    state = "a Snakemake process holds it" if status.snakemake_running else "no Snakemake running"
    lines = [f"zoo at {status.results} ({state})"]
    failed = sum(len(v) for v in status.failed.values())
    done = sum(status.done.values())
    if status.planned:
        to_go = sum(status.to_go(rule) for rule in status.planned)
        lines.append(
            f"jobs of the last run: {done} of {status.total_planned} done, "
            f"{len(status.running)} running, {failed} failed, {to_go} to go "
            f"(.snakemake/log/{status.log.name if status.log else ''})"
        )
        if train := status.planned.get("train"):
            lines.append(
                f"  training jobs: {status.done.get('train', 0)} of {train} done, "
                f"{sum(j.rule == 'train' for j in status.running)} running, "
                f"{len(status.failed.get('train', []))} failed, {status.to_go('train')} to go"
            )
    else:
        lines.append(f"jobs: {done} done, {len(status.running)} running, {failed} failed")
    if status.done_before:
        lines.append(f"jobs finished by earlier runs: {status.done_before}")
    nets = ", ".join(f"{n} {s}" for s, n in status.networks.items())
    trained = f"networks trained: {sum(status.networks.values())}"
    lines.append(trained + (f" ({nets})" if nets else ""))
    if status.running:
        what = "running" if status.snakemake_running else "started, not finished (interrupted)"
        lines.append(f"{what}:")
        for job in status.running:
            progress = ""
            if job.epoch is not None:
                progress = f": epoch {job.epoch}/{job.epochs}, ETA {job.eta_text}"
            lines.append(f"  {job.rule} {job.what}{progress}")
    for rule, logs in status.failed.items():
        more = " ..." if len(logs) > 5 else ""
        lines.append(f"failed {rule} ({len(logs)}): " + ", ".join(logs[:5]) + more)
    if status.planned:
        if not status.running and not any(status.to_go(r) for r in status.planned):
            lines.append("ETA for the whole zoo: nothing left to run")
        else:
            untimed = status.untimed()
            note = f"; {untimed} jobs of rules not timed yet not counted" if untimed else ""
            lines.append(
                f"ETA for the whole zoo: about {duration(status.eta_s())} (each rule's jobs to "
                f"go at its mean time so far, {max(len(status.running), 1)} at a time{note})"
            )
    return "\n".join(lines)
