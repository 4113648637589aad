"""The bottom line: a few plain sentences per claim, written from the verdict table.

What was found, on how many architectures, whether it goes beyond model size, and how sure
(the effect with its 95 % CI and q). It opens results/claims.md, the dashboard and the
README's "Bottom line" section, so the answer is never typed by hand. Any verdict string is
accepted: the ones of `VERDICT_MEANINGS` get their own wording, any other is quoted as it
stands, so a new verdict vocabulary degrades to correct (if terser) sentences.

`python -m weightzoo.bottom_line results --readme README.md` rewrites the README section
between its two markers from a finished run.
"""

from __future__ import annotations

import argparse
import html
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from weightzoo.markdown import replace_between

ALL = "all"  # the dataset / family name of pooled rows (weightzoo.analysis.ALL)
MINUS = "−"
CLAIM_TITLES = {  # the paper's claims in plain words
    1: "Weight statistics track accuracy",
    2: "Good networks are alike, poor ones scatter",
    3: "MLP, CNN and ViT learn alike",
}
EFFECT_SYMBOLS = {1: "ρ", 2: "ρ", 3: "r"}  # Spearman over cells; Pearson r of two curves
WITHIN_PHRASES = {
    "family": "across the architectures of each family",
    "architecture": "across the training settings of one architecture",
}
# What a verdict means, in words a reader outside statistics follows. Verdicts not listed
# here are shown as they stand.
VERDICT_MEANINGS = {
    "supported": "it holds beyond model size and beyond the initial weights",
    "beyond size": "it holds beyond model size; whether it goes beyond the initial weights "
    "cannot be told",
    "initialisation": "it holds beyond model size, but the initial weights already show it",
    "explained by initialisation": "it holds beyond model size, but the initial weights "
    "already show it",
    "explained by size": "there is an effect, but parameter count accounts for it",
    "inconclusive given size": "there is an effect, but too few architectures to tell "
    "whether it goes beyond model size",
    "undefined": "the statistic follows model size exactly: nothing is left to test beyond it",
    "reversed": "a control points the opposite way to the raw effect, so it is not supported",
    "shape only": "the curves have the same shape, but the size of the change differs",
    "same shape and size": "the families' curves are shown the same in shape and in size",
    "same shape": "the families' curves are shown the same in shape, not in size",
    "different": "the families' curves differ in shape",
    "inconclusive": "the curves are neither shown the same nor shown different",
    "inconsistent": "the subsets disagree in direction",
    "not supported": "no significant effect in the claimed direction",
    "not testable": "too few architectures for a test",
    "at chance": "the family's best architecture is at chance: no groups, no test",
}
README_START = (
    "<!-- bottom-line:start: python -m weightzoo.bottom_line results --readme README.md -->"
)
README_END = "<!-- bottom-line:end -->"


@dataclass(frozen=True)
class Finding:
    """One claim read at one level (`within`): its headline verdict and the sentences."""

    claim: int
    within: str
    title: str
    scope: str
    verdict: str
    meaning: str
    evidence: str  # the headline row's numbers, or "" when it has none
    subsets: str  # the other rows' verdicts, grouped, or ""

    def sentences(self) -> str:
        """Everything after the verdict, as plain text."""
        said = self.meaning[:1].upper() + self.meaning[1:] + "."
        return " ".join(s for s in (said, self.evidence, self.subsets) if s)


def meaning(verdict: str) -> str:
    """A verdict in plain words; an unknown one as it stands, quoted."""
    return VERDICT_MEANINGS.get(verdict, f'verdict "{verdict}"')


def _number(v: float | None, digits: int = 2) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v:.{digits}f}".replace("-", MINUS)


def _q(q: float | None) -> str:
    if q is None or not math.isfinite(q):
        return ""
    return "q < 0.001" if q < 0.001 else f"q = {q:.2g}"


def _count(n: int | None, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _label(row: Mapping, datasets: set[str]) -> str:
    """A subset in words: its family (and dataset when there are several)."""
    dataset, family = row.get("dataset"), row.get("family")
    if family == ALL and dataset == ALL:
        return "pooled"
    if family == ALL:
        return f"all families on {dataset}"
    if dataset == ALL or len(datasets) <= 1:
        return str(family)
    return f"{family} on {dataset}"


def _evidence(row: Mapping, claim: int) -> str:
    """The headline row's numbers: statistic, effect [CI], q, architectures and runs."""
    cells, runs = row.get("n_cells"), row.get("n_runs")
    where = "pooled" if row.get("dataset") == ALL and row.get("family") == ALL else "in"
    if cells is None:
        return ""
    basis = _count(cells, "architecture cell", "architecture cells")
    if runs is not None:
        basis += f" ({_count(runs, 'run', 'runs')})"
    estimate = row.get("estimate")
    if estimate is None or not math.isfinite(estimate):
        return f"{'Pooled over' if where == 'pooled' else 'On'} {basis}."
    symbol = EFFECT_SYMBOLS.get(claim, "effect")
    effect = f"{symbol} = {_number(estimate)}"
    if row.get("ci_low") is not None and row.get("ci_high") is not None:
        effect += f" [{_number(row['ci_low'])}, {_number(row['ci_high'])}]"
    q = _q(row.get("q_value"))
    statistic = row.get("statistic")
    what = f"the headline statistic, {statistic}," if statistic else "the headline effect"
    borderline = " (borderline)" if "borderline" in (row.get("detail") or "") else ""
    sure = f", {q}{borderline}" if q else ""
    lead = "Pooled over" if where == "pooled" else "Over"
    return f"{lead} {basis}, {what} has {effect}{sure}."


def _subsets(rows: Sequence[Mapping], datasets: set[str]) -> str:
    """The other rows, grouped by verdict: "explained by size for cnn (19 cells) and ..."."""
    by_verdict: dict[str, list[str]] = {}
    for row in rows:
        label = _label(row, datasets)
        if row.get("n_cells") is not None:
            label += f" ({row['n_cells']} cells)"
        by_verdict.setdefault(str(row.get("verdict")), []).append(label)
    parts = [f"{verdict} for {_join(labels)}" for verdict, labels in by_verdict.items()]
    return f"By subset: {'; '.join(parts)}." if parts else ""


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _headline(rows: list[dict]) -> dict | None:
    """The row that speaks for a claim: the most pooled one (every dataset and family; with
    one dataset, its all-families row), else the only one."""
    datasets = {r.get("dataset") for r in rows if r.get("dataset") != ALL}
    for dataset in [ALL, *(datasets if len(datasets) == 1 else ())]:
        pooled = [r for r in rows if r.get("dataset") == dataset and r.get("family") == ALL]
        if pooled:
            return pooled[0]
    return rows[0] if len(rows) == 1 else None


def findings(verdicts: pl.DataFrame) -> list[Finding]:
    """One Finding per claim and level of the verdict table (`within`: family first)."""
    if verdicts.is_empty():
        return []
    frame = verdicts if "within" in verdicts.columns else verdicts.with_columns(within=None)
    rows = frame.to_dicts()
    datasets = {r.get("dataset") for r in rows if r.get("dataset") not in (None, ALL)}
    order = {w: i for i, w in enumerate(WITHIN_PHRASES)}
    keys = sorted(
        {(r["claim"], r.get("within")) for r in rows},
        key=lambda k: (order.get(k[1], len(order)), str(k[1]), k[0]),
    )
    out = []
    for claim, within in keys:
        part = [r for r in rows if r["claim"] == claim and r.get("within") == within]
        head = _headline(part)
        rest = [r for r in part if r is not head]
        said = list(dict.fromkeys(str(r.get("verdict")) for r in part))
        # no pooled row: the verdicts of the subsets
        verdict = str(head.get("verdict")) if head is not None else ", ".join(said)
        agreed = head is not None or len(said) == 1
        scope = WITHIN_PHRASES.get(within, f"within {within}" if within else "")
        out.append(
            Finding(
                claim=int(claim),
                within=str(within),
                title=CLAIM_TITLES.get(int(claim), f"Claim {claim}"),
                scope=scope,
                verdict=verdict,
                meaning=meaning(verdict) if agreed else "the subsets differ",
                evidence=_evidence(head, int(claim)) if head is not None else "",
                subsets=_subsets(rest, datasets),
            )
        )
    return out


def levels(verdicts: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """The verdict table split by `within` (family first), each part with its heading in
    words ("Across the architectures of each family"); one untitled part without `within`."""
    if "within" not in verdicts.columns or verdicts.is_empty():
        return [("", verdicts)]
    order = {w: i for i, w in enumerate(WITHIN_PHRASES)}
    parts = sorted(
        verdicts.partition_by("within", maintain_order=True),
        key=lambda part: order.get(part["within"][0], len(order)),
    )
    out = []
    for part in parts:
        phrase = WITHIN_PHRASES.get(part["within"][0], f"within {part['within'][0]}")
        out.append((phrase[:1].upper() + phrase[1:], part))
    return out


def zoo_sentence(groups: pl.DataFrame) -> str:
    """The zoo in one sentence: networks, cells, datasets, families, diverged, groups."""
    if groups.is_empty():
        return "The zoo holds no trained networks."
    cell_keys = [c for c in ("dataset", "family", "arch", "setting") if c in groups.columns]
    n_cells = groups.select(cell_keys).n_unique()
    datasets = _join(sorted(groups["dataset"].unique().to_list()))
    families = _join([f.upper() if f != "vit" else "ViT" for f in _families(groups)])
    text = (
        f"The zoo holds {_count(groups.height, 'network', 'networks')} "
        f"({_count(n_cells, 'cell', 'cells')} of architecture × training setting, "
        f"seeds within each) of {families} on {datasets}."
    )
    ok = groups
    if "status" in groups.columns:
        diverged = int((groups["status"] == "diverged").sum())
        if diverged:
            verb = "is" if diverged == 1 else "are"
            text += f" {_count(diverged, 'run', 'runs')} diverged and {verb} left out of the tests."
        ok = groups.filter(pl.col("status") != "diverged")
    if "group" in groups.columns and ok.height:
        counts = dict(ok.group_by("group").len().rows())
        order = ["optimal", "intermediate", "suboptimal", "at chance"]
        named = [g for g in order if g in counts] + sorted(set(counts) - set(order))
        text += " By accuracy: " + _join([f"{counts[g]} {g}" for g in named]) + "."
    return text


def _families(groups: pl.DataFrame) -> list[str]:
    known = ["mlp", "cnn", "vit"]
    present = groups["family"].unique().to_list() if "family" in groups.columns else []
    return [f for f in known if f in present] + sorted(set(present) - set(known))


def to_markdown(found: Sequence[Finding], zoo: str = "", extra: Sequence[str] = ()) -> str:
    """The bottom line as Markdown: the zoo sentence, one bullet per finding, then `extra`
    paragraphs (e.g. the prediction headline)."""
    lines = [zoo, ""] if zoo else []
    for f in found:
        scope = f" ({f.scope})" if f.scope else ""
        lines.append(f"- **{f.title}**{scope}: **{f.verdict}**. {f.sentences()}")
    if not found:
        lines.append("- No claim has a verdict yet.")
    for paragraph in extra:
        lines += ["", paragraph]
    return "\n".join(lines) + "\n"


def to_html(found: Sequence[Finding], zoo: str = "", extra: Sequence[str] = ()) -> str:
    """The bottom line as an HTML fragment (every text escaped), classed for styling."""
    esc = html.escape
    items = []
    for f in found:
        slug = re.sub(r"[^a-z0-9]+", "-", f.verdict.lower()).strip("-")
        scope = f' <span class="scope">({esc(f.scope)})</span>' if f.scope else ""
        items.append(
            f'<li class="{slug}"><strong>{esc(f.title)}</strong>{scope}: '
            f'<strong class="verdict">{esc(f.verdict)}</strong>. {esc(f.sentences())}</li>'
        )
    if not found:
        items.append("<li>No claim has a verdict yet.</li>")
    parts = [f"<p>{esc(zoo)}</p>"] if zoo else []
    parts.append(f"<ul>{''.join(items)}</ul>")
    parts += [f"<p>{esc(p)}</p>" for p in extra]
    return f'<div class="bottom-line">{"".join(parts)}</div>'


def from_results(results: str | Path) -> str:
    """The bottom line of a finished run's results folder, as Markdown: the zoo, the claims'
    findings and the prediction headline (when the run has one)."""
    from weightzoo.analysis import verdicts

    tables = Path(results) / "tables"
    claims = pl.read_parquet(tables / "claims.parquet")
    groups = pl.read_parquet(tables / "groups.parquet")
    extra = []
    if (tables / "prediction.parquet").exists():
        from weightzoo.prediction import headline

        extra.append(headline(pl.read_parquet(tables / "prediction.parquet")))
    return to_markdown(findings(verdicts(claims)), zoo_sentence(groups), extra)


def replace_section(text: str, section: str) -> str:
    """`text` with what lies between README_START and README_END replaced by `section`."""
    return replace_between(text, README_START, README_END, section)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the bottom line of a results folder, or write it into a README's section."""
    parser = argparse.ArgumentParser(prog="python -m weightzoo.bottom_line", description=__doc__)
    parser.add_argument("results", nargs="?", default="results", help="a finished results folder")
    parser.add_argument("--readme", help="rewrite this file's bottom-line section in place")
    args = parser.parse_args(argv)
    section = from_results(args.results)
    if args.readme is None:
        sys.stdout.write(section)
        return 0
    readme = Path(args.readme)
    readme.write_text(replace_section(readme.read_text(), section))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
