"""The replication report: what a run of the zoo says about the paper's claims, in one page,
written from the run's own tables (never from numbers typed by hand).

`report_markdown` reads results/tables/ (runs, groups, final statistics, claims, prediction),
the jobs' benchmark files and the sizes of results/, and writes: the accuracy range of every
dataset x family (failing -> saturated cell), the verdict on each of the paper's three claims
with its controls, the heavy-tail fits (how many are valid; alpha of the optimal against the
suboptimal group and against the shuffled null), the prediction ladder, and the compute and
disk the run took. The claims' verdict table is read as it is (whatever its rows and columns),
so the page follows the analysis as it changes. `publish` copies the page and its figures into
docs/ (docs/replication-mnist.md is such a copy).
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from weightzoo import io
from weightzoo.tables import CELL_KEYS

# The figures the page shows (results/figures/<name>.svg), with what each is for.
FIGURES = {
    "accuracy_vs_params": "Test accuracy against parameter count: every family from failing "
    "to saturated",
    "weight_histograms": "Weight distributions of the optimal and the suboptimal groups",
    "spectral_alpha": "Heavy-tail exponent α per layer against accuracy, with the shuffled null",
}
# Columns of a verdict table shown when present, in this order (any others are left to
# results/claims.md); a table with none of them is shown whole.
VERDICT_COLUMNS = ("claim", "within", "dataset", "family", "verdict", "statistic", "direction",
                   "estimate", "ci_low", "ci_high", "q_value", "n_cells", "n_runs",
                   "beyond_size", "beyond_init", "consistent")  # fmt: skip
PREDICTION_COLUMNS = ("feature_set", "predictor", "n_features", "tau", "r2", "tau_over_size")
SPLIT_ORDER = ("architecture", "cell", "family", "dataset", "seed")  # the headline's first
GROUP_ORDER = ("optimal", "intermediate", "suboptimal", "at chance")
_FAMILY_ORDER = {"mlp": 0, "cnn": 1, "vit": 2}  # the paper's order
# Snakemake benchmark files of results/benchmarks/: the rule is the first folder (or file)
BENCHMARK_COLUMNS = ("s", "max_rss", "cpu_time")


# ---------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------


def _num(v, digits: int = 2, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _pct(v) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.1f} %"


def md_table(frame: pl.DataFrame, headers: Sequence[str] | None = None) -> list[str]:
    """A Markdown table of a frame's rows (floats with 2 decimals, None as –)."""
    headers = list(headers or frame.columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in frame.iter_rows():
        lines.append("| " + " | ".join(_num(v) for v in row) + " |")
    return lines


def size_text(n: float) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1 (1.5 GiB)."""
    return io.size_text(n, io.BINARY)


# ---------------------------------------------------------------------------------------
# The sections, each from its tables
# ---------------------------------------------------------------------------------------


def cell_accuracy(runs: pl.DataFrame) -> pl.DataFrame:
    """One row per cell: runs, finished runs, parameter count and the mean and seed std of
    the finished runs' final test accuracy (diverged runs are counted, not averaged)."""
    keys = [k for k in CELL_KEYS if k in runs.columns]
    ok = pl.col("status") == "ok" if "status" in runs.columns else pl.lit(True)
    return (
        runs.group_by(keys, maintain_order=True)
        .agg(
            runs=pl.len(),
            finished=ok.sum(),
            n_params=pl.col("n_params").first(),
            acc=pl.col("final_test_acc").filter(ok).mean(),
            acc_std=pl.col("final_test_acc").filter(ok).std(ddof=0),
        )
        .with_columns(_order=pl.col("family").replace_strict(_FAMILY_ORDER, default=99))
        .sort("dataset", "_order", "n_params", "arch", maintain_order=True)
        .drop("_order")
    )


def accuracy_ranges(cells: pl.DataFrame) -> pl.DataFrame:
    """Per dataset x family: its cells and runs, the weakest and the best cell by mean final
    test accuracy (the range a study of optimal vs suboptimal networks needs)."""
    rows = []
    for (dataset, family), part in cells.group_by("dataset", "family", maintain_order=True):
        scored = part.filter(pl.col("acc").is_not_null()).sort("acc")
        if scored.height == 0:
            weakest = best = None
        else:
            weakest, best = scored.row(0, named=True), scored.row(-1, named=True)
        rows.append(
            {
                "dataset": dataset,
                "family": family,
                "cells": part.height,
                "runs": int(part["runs"].sum()),
                "diverged": int(part["runs"].sum() - part["finished"].sum()),
                "weakest": _cell_text(weakest),
                "best": _cell_text(best),
            }
        )
    return pl.DataFrame(rows)


def _cell_text(cell: dict | None) -> str:
    if cell is None:
        return "–"
    setting = "" if cell.get("setting", "default") == "default" else f" ({cell['setting']})"
    return f"`{cell['arch']}`{setting}: {_pct(cell['acc'])} ± {_pct(cell['acc_std'])}"


def verdict_table(claims: pl.DataFrame, tables: Path | None = None) -> pl.DataFrame:
    """The verdicts as the analysis gives them: tables/verdicts.parquet when the claims job
    writes one, else `weightzoo.analysis.verdicts(claims)`, else the claims table itself."""
    if tables is not None and (path := Path(tables) / "verdicts.parquet").is_file():
        return pl.read_parquet(path)
    try:
        from weightzoo import analysis

        return analysis.verdicts(claims)
    except Exception:  # an analysis without that function, or a claims table it cannot read
        return claims


def _verdict_lines(verdicts: pl.DataFrame) -> list[str]:
    shown = [c for c in VERDICT_COLUMNS if c in verdicts.columns] or verdicts.columns
    frame = verdicts.select(shown)
    for c, dtype in frame.schema.items():
        if dtype == pl.List:
            frame = frame.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join(", "))
    if "claim" not in frame.columns:
        return md_table(frame)
    lines = []
    for (claim,), part in frame.group_by("claim", maintain_order=True):
        lines += ["", f"**Claim {claim}**", "", *md_table(part.drop("claim"))]
    return lines


def heavy_tail_summary(final: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The weight matrices' heavy-tail fits at each run's final epoch: (fit_status counts per
    dataset x family; per group, the valid fits' alpha against their shuffled null).

    `final` is tables/final_stats.parquet (one row per run x scope x target)."""
    needed = {"fit_status", "alpha", "scope_type", "target"}
    if not needed <= set(final.columns):
        return pl.DataFrame(), pl.DataFrame()
    fits = final.filter(
        pl.col("scope_type") == "tensor",
        pl.col("target") == "w",
        pl.col("fit_status").is_not_null(),
    )
    status = (
        fits.group_by("dataset", "family", "fit_status")
        .len()
        .pivot("fit_status", index=["dataset", "family"], values="len")
        .fill_null(0)
        .sort("dataset", "family")
    )
    status = status.with_columns(matrices=pl.sum_horizontal(pl.exclude("dataset", "family")))
    ok = fits.filter(pl.col("fit_status") == "ok")
    group = "group" if "group" in ok.columns else None
    by = ["dataset", "family", *([group] if group else [])]
    aggs = [
        pl.len().alias("valid fits"),
        pl.col("alpha").median().alias("α median"),
        pl.col("alpha").quantile(0.25).alias("α q25"),
        pl.col("alpha").quantile(0.75).alias("α q75"),
    ]
    if "alpha_null" in ok.columns:
        aggs.append(pl.col("alpha_null").median().alias("null α median"))
    if "heavy_tailed" in ok.columns:
        aggs.append(pl.col("heavy_tailed").sum().cast(pl.Int64).alias("heavy-tailed"))
    if "alpha_init" in ok.columns:
        aggs.append(pl.col("alpha_init").median().alias("α at init, median"))
    groups = ok.group_by(by).agg(aggs)
    if group:
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        groups = (
            groups.with_columns(
                pl.col(group).replace_strict(order, default=len(order)).alias("_order")
            )
            .sort("dataset", "family", "_order")
            .drop("_order")
        )
    return status, groups


def prediction_ladder(prediction: pl.DataFrame) -> tuple[str, pl.DataFrame]:
    """The headline split of the final epoch (held-out architectures or cells first) and its
    ladder: τ, R² and Δτ over size with their CIs, one row per feature set x predictor."""
    if prediction.height == 0 or "split" not in prediction.columns:
        return "", pl.DataFrame()
    final = (
        prediction.filter(pl.col("epoch") == "final")
        if "epoch" in prediction.columns
        else prediction
    )
    splits = [s for s in SPLIT_ORDER if s in final["split"].to_list()]
    splits += [s for s in dict.fromkeys(final["split"].to_list()) if s not in splits]
    if not splits:
        return "", pl.DataFrame()
    part = final.filter(pl.col("split") == splits[0])
    columns = []
    for c in PREDICTION_COLUMNS:
        if c not in part.columns:
            continue
        if f"{c}_low" in part.columns and f"{c}_high" in part.columns:
            sign = c.endswith("_over_size")
            fmt = lambda v, s=sign: _num(v, sign=s)  # noqa: E731
            columns.append(
                pl.struct(c, f"{c}_low", f"{c}_high")
                .map_elements(
                    lambda r, c=c, fmt=fmt: (
                        f"{fmt(r[c])} [{fmt(r[c + '_low'])}, {fmt(r[c + '_high'])}]"
                    ),
                    return_dtype=pl.String,
                )
                .alias(c)
            )
        else:
            columns.append(pl.col(c))
    return splits[0], part.select(columns)


def benchmark_table(benchmarks: Path) -> pl.DataFrame:
    """CPU and wall seconds and peak memory of every job with a Snakemake benchmark file,
    summed per rule (the first folder under results/benchmarks/)."""
    rows = []
    for path in sorted(Path(benchmarks).rglob("*.tsv")):
        try:
            frame = pl.read_csv(path, separator="\t")
        except (pl.exceptions.PolarsError, OSError):
            continue
        if not set(BENCHMARK_COLUMNS) <= set(frame.columns) or frame.height == 0:
            continue
        rule = path.relative_to(benchmarks).parts[0].removesuffix(".tsv")
        last = frame.row(-1, named=True)  # a benchmark with repeats: the last one
        rows.append({"rule": rule, "s": last["s"], "cpu_time": last["cpu_time"],
                     "max_rss": last["max_rss"]})  # fmt: skip
    if not rows:
        return pl.DataFrame()
    frame = pl.DataFrame(rows).with_columns(pl.col("s", "cpu_time", "max_rss").cast(pl.Float64))
    return (
        frame.group_by("rule", maintain_order=True)
        .agg(
            jobs=pl.len(),
            cpu_s=pl.col("cpu_time").sum(),
            wall_s=pl.col("s").sum(),
            longest_s=pl.col("s").max(),
            peak_rss_mib=pl.col("max_rss").max(),
        )
        .sort("cpu_s", descending=True)
    )


def disk_table(results: Path, parts: Sequence[str] = ("weights", "metrics", "stats",
               "strength_maps", "tables", "data", "figures")) -> pl.DataFrame:  # fmt: skip
    """Bytes of each part of results/ (files under it, recursively)."""
    rows = []
    for part in parts:
        folder = Path(results) / part
        files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
        rows.append({"folder": f"{part}/", "files": len(files),
                     "bytes": sum(p.stat().st_size for p in files)})  # fmt: skip
    return pl.DataFrame(rows)


# ---------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------


def report_markdown(
    *,
    runs: pl.DataFrame,
    claims: pl.DataFrame,
    final: pl.DataFrame,
    prediction: pl.DataFrame,
    results: Path,
    figures: dict[str, str] | None = None,
    cores: int = 2,
) -> str:
    """The replication report of one run, from its tables (see the module docstring);
    `figures` maps a figure name to the path the page links it by."""
    results = Path(results)
    cells = cell_accuracy(runs)
    datasets = ", ".join(dict.fromkeys(runs["dataset"].to_list())) if runs.height else "–"
    seeds = runs.group_by(CELL_KEYS[: 2 + 2 * ("setting" in runs.columns)]).len()["len"]
    lines = [
        f"# The paper's study on {datasets}: replication report",
        "",
        "Generated by the workflow's `report` rule from this run's tables (results/tables/, "
        "results/benchmarks/); no number on this page is typed by hand. The paper: Zheng "
        "et al., *On Learnable Parameters of Optimal and Suboptimal Deep Learning Models*, "
        "arXiv 2408.11720.",
        "",
        f"The zoo: {cells.height} cells ({', '.join(_family_counts(cells))}), "
        f"{runs.height} networks, {_range_text(seeds)} seeds per cell.",
        "",
        "## Accuracy: from failing to saturated",
        "",
        "Mean final test accuracy ± its std over the seeds of the weakest and the best cell of "
        "every family (diverged runs counted apart, left out of the means).",
        "",
        *md_table(accuracy_ranges(cells)),
        "",
        "<details><summary>Every cell</summary>",
        "",
        *md_table(
            cells.select(
                *[c for c in CELL_KEYS if c in cells.columns],
                "n_params",
                "runs",
                "finished",
                pl.col("acc").map_elements(_pct, return_dtype=pl.String).alias("test acc"),
                pl.col("acc_std").map_elements(_pct, return_dtype=pl.String).alias("seed std"),
            )
        ),
        "",
        "</details>",
        "",
        "## The paper's three claims",
        "",
        "The verdict table of the claims job, as it stands (results/claims.md has every test "
        "behind it and the meaning of each verdict).",
        *_verdict_lines(verdict_table(claims, results / "tables")),
        "",
    ]
    lines += _heavy_tail_lines(final)
    lines += _prediction_lines(prediction)
    lines += _compute_lines(results, cores)
    if figures:
        lines += ["## Figures", ""]
        for name, href in figures.items():
            lines += [f"**{FIGURES.get(name, name)}**", "", f"![{name}]({href})", ""]
    return "\n".join(lines).rstrip() + "\n"


FAMILY_NAMES = {"mlp": "MLP", "cnn": "CNN", "vit": "ViT"}


def _family_counts(cells: pl.DataFrame) -> list[str]:
    counts = cells.group_by("family", maintain_order=True).len()
    return [f"{n} {FAMILY_NAMES.get(family, family)}" for family, n in counts.iter_rows()]


def _range_text(values: pl.Series) -> str:
    if values.len() == 0:
        return "0"
    lo, hi = int(values.min()), int(values.max())
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def _heavy_tail_lines(final: pl.DataFrame) -> list[str]:
    status, groups = heavy_tail_summary(final)
    lines = ["## Heavy-tailed spectra", ""]
    if status.height == 0:
        return [*lines, "This run's statistics have no heavy-tail fits.", ""]
    ok = int(status["ok"].sum()) if "ok" in status.columns else 0
    total = int(status["matrices"].sum())
    lines += [
        f"Of the {total:,} weight matrices of the final networks, {ok:,} have a valid "
        "power-law fit of their eigenvalue spectrum (`fit_status` ok; the others are flagged "
        "and never used as valid).",
        "",
        *md_table(status),
        "",
    ]
    if groups.height:
        lines += [
            "The valid fits by group: α (median and quartiles) against the median α of the "
            "same matrices with their entries shuffled (the null of the same marginal), and "
            "how many lie below the null's bound (heavy-tailed).",
            "",
            *md_table(groups),
            "",
        ]
    return lines


def _prediction_lines(prediction: pl.DataFrame) -> list[str]:
    split, ladder = prediction_ladder(prediction)
    lines = ["## Predicting accuracy from the weights", ""]
    if ladder.height == 0:
        return [*lines, "This run has no prediction table rows.", ""]
    try:
        from weightzoo.prediction import headline

        lines += [headline(prediction), ""]
    except Exception:  # a prediction table of another shape: the ladder alone
        pass
    return [*lines, f"Split `{split}`, final epoch:", "", *md_table(ladder), ""]


def _compute_lines(results: Path, cores: int) -> list[str]:
    bench = benchmark_table(results / "benchmarks")
    disk = disk_table(results)
    lines = ["## Compute and disk", ""]
    if bench.height:
        cpu = float(bench["cpu_s"].sum())
        lines += [
            f"CPU time of the jobs with a benchmark file (Snakemake's `benchmark:`): "
            f"{cpu / 60:.1f} min in all, {cpu / 60 / cores:.1f} min on {cores} cores if "
            "they kept every core busy (the local rules after them — aggregation, claims, "
            "figures, this report — run without one).",
            "",
            *md_table(
                bench.with_columns(
                    pl.col("cpu_s", "wall_s", "longest_s").round(1),
                    pl.col("peak_rss_mib").round(0),
                ),
                ["rule", "jobs", "CPU s", "wall s (summed)", "longest job s", "peak RSS MiB"],
            ),
            "",
        ]
    total = int(disk["bytes"].sum())
    lines += [
        f"Disk: {size_text(total)} under results/.",
        "",
        *md_table(
            disk.with_columns(pl.col("bytes").map_elements(size_text, return_dtype=pl.String)),
            ["folder", "files", "size"],
        ),
        "",
    ]
    return lines


def write_report(
    *,
    runs: str | Path,
    claims: str | Path,
    final: str | Path,
    prediction: str | Path,
    figures: Sequence[str | Path],
    output: str | Path,
    results: str | Path = "results",
) -> None:
    """The report job: read the tables, link the figures relative to the page, write it."""
    from weightzoo.io import atomic_path

    output = Path(output)
    hrefs = {
        Path(f).stem: Path(f).resolve().relative_to(output.parent.resolve()).as_posix()
        for f in figures
    }
    text = report_markdown(
        runs=pl.read_parquet(runs),
        claims=pl.read_parquet(claims),
        final=pl.read_parquet(final),
        prediction=pl.read_parquet(prediction),
        results=Path(results),
        figures=hrefs,
    )
    with atomic_path(output) as tmp:
        tmp.write_text(text)


AGREEMENT_KEYS = ("claim", "within", "family")  # a verdict's place, whatever the dataset


def verdict_agreement(ours: pl.DataFrame, theirs: pl.DataFrame) -> pl.DataFrame:
    """One row per verdict place (claim, level, family) of either run: each run's verdict and
    direction, and whether they agree (null where one run has no such verdict)."""
    keys = [k for k in AGREEMENT_KEYS if k in ours.columns and k in theirs.columns]
    shown = [c for c in ("verdict", "direction", "statistic") if c in ours.columns]

    def side(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
        picked = frame.select(*keys, *[c for c in shown if c in frame.columns])
        return picked.unique(keys, keep="first", maintain_order=True).rename(
            {c: f"{c} {suffix}" for c in shown if c in frame.columns}
        )

    joined = side(ours, "here").join(side(theirs, "there"), on=keys, how="full", coalesce=True)
    return joined.with_columns(
        pl.when(pl.col("verdict here").is_null() | pl.col("verdict there").is_null())
        .then(None)
        .otherwise(pl.col("verdict here") == pl.col("verdict there"))
        .alias("agree")
    ).sort(keys)


def agreement_lines(ours: pl.DataFrame, theirs: pl.DataFrame, here: str, there: str) -> list[str]:
    """The section of a report that sets its verdicts beside another run's (`there`)."""
    table = verdict_agreement(ours, theirs)
    both = table.filter(pl.col("agree").is_not_null())
    agree = int(both["agree"].sum())
    renamed = table.rename(
        {
            c: c.replace(" here", f" ({here})").replace(" there", f" ({there})")
            for c in table.columns
        }
    ).with_columns(pl.col("agree").replace_strict({True: "yes", False: "no"}, default="–"))
    return [
        f"## The verdicts on {here} beside those on {there}",
        "",
        f"Of the {both.height} verdicts both runs give (claim × level × family), {agree} agree "
        f"and {both.height - agree} differ; {table.height - both.height} are given by one run "
        "only. Generated from both runs' verdict tables.",
        "",
        *md_table(renamed),
        "",
    ]


_LINK = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")


AGREEMENT_START = "<!-- agreement:start: weightzoo report --against … --readme README.md -->"
AGREEMENT_END = "<!-- agreement:end -->"


def agreement_summary(
    ours: pl.DataFrame, theirs: pl.DataFrame, here: str, there: str, page: str
) -> str:
    """A few generated lines for a README: how many verdicts two runs share, which agree and
    which differ (each with both verdicts), and where the whole comparison is (`page`)."""
    table = verdict_agreement(ours, theirs)
    both = table.filter(pl.col("agree").is_not_null())

    def place(row: dict) -> str:
        level = f"within each {row['within']}, " if row.get("within") else ""
        return f"claim {row['claim']} ({level}{row.get('family') or 'all'})"

    agree = [place(r) for r in both.filter(pl.col("agree")).iter_rows(named=True)]
    differ = [
        f"{place(r)}: {r['verdict here']} on {here}, {r['verdict there']} on {there}"
        for r in both.filter(~pl.col("agree")).iter_rows(named=True)
    ]
    lines = [
        f"Of the {both.height} verdicts (claim × level × family) that both the {here} run and "
        f"the {there} run give, **{len(agree)} agree** and **{len(differ)} differ**; "
        f"{table.height - both.height} are given by one run only ([the comparison]({page})).",
        "",
        f"- Agree: {'; '.join(agree) if agree else 'none'}.",
        f"- Differ: {'; '.join(differ) if differ else 'none'}.",
    ]
    return "\n".join(lines)


def run_verdicts(results: str | Path) -> pl.DataFrame:
    """The verdict table of a finished run's folder."""
    tables = Path(results) / "tables"
    return verdict_table(pl.read_parquet(tables / "claims.parquet"), tables)


def publish(report: str | Path, target: str | Path, appendix: Sequence[str] = ()) -> list[Path]:
    """Copy a generated report to `target` (e.g. docs/replication-mnist.md) with the figures
    it links, which go to a folder named after it (docs/replication-mnist/), and `appendix`
    (lines) at its end; returns the figures."""
    report, target = Path(report), Path(target)
    folder = target.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    copied = []

    def relink(match: re.Match) -> str:
        source = (report.parent / match[2]).resolve()
        if not source.is_file():
            raise FileNotFoundError(f"{report}: the figure {match[2]} is missing ({source})")
        dest = folder / source.name
        shutil.copyfile(source, dest)
        copied.append(dest)
        return f"![{match[1]}]({folder.name}/{source.name})"

    text = _LINK.sub(relink, report.read_text())
    if appendix:
        text = text.rstrip() + "\n\n" + "\n".join(appendix).rstrip() + "\n"
    target.write_text(text)
    return copied
