"""The offline dashboard, results/index.html: the verdicts, the prediction ladder, every figure
and the claims table.

One self-contained page: the Vega, Vega-Lite and vega-embed libraries are inlined once (from
vl-convert's bundle, no CDN), each figure's Vega-Lite spec (its data inline) sits in a JSON
script element, and a small script renders them all as SVG. For automated checks the page
reports its own state: each chart's container gets `data-rendered="true"` once drawn, every
error (window errors, unhandled promise rejections, console.error) is appended to the hidden
`<pre id="errors">`, and `document.body.dataset.status` becomes "done" (or "errors") when
every chart has finished.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from weightzoo.analysis import CLAIMS_SCHEMA, VERDICTS
from weightzoo.io import atomic_path
from weightzoo.markdown import finite, fmt
from weightzoo.vega import check_offline, javascript_bundle, script_json

EMBED_OPTIONS = {
    "renderer": "svg",
    "actions": {"export": True, "source": False, "compiled": False, "editor": False},
}

# Installed before anything else runs, so that errors from the libraries are collected too.
_ERROR_HOOKS = """
window.__errors = [];
function __report(message) {
  window.__errors.push(String(message));
  var box = document.getElementById("errors");
  if (box) box.textContent = window.__errors.join("\\n");
}
window.onerror = function (message, source, line, column, error) {
  __report("error: " + message + (source ? " (" + source + ":" + line + ")" : ""));
};
window.addEventListener("error", function (event) {  // resources that fail to load
  if (event.target && event.target !== window)
    __report("failed to load: " + event.target.outerHTML.slice(0, 200));
}, true);
window.addEventListener("unhandledrejection", function (event) {
  var reason = event.reason;
  __report("unhandled rejection: " + (reason && reason.stack ? reason.stack : reason));
});
(function () {
  var original = console.error;
  console.error = function () {
    __report("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return original.apply(console, arguments);
  };
})();
"""

_RENDER = """
(async function () {
  var charts = Array.prototype.slice.call(document.querySelectorAll(".chart"));
  var options = %s;
  if (typeof vegaEmbed !== "function") {
    __report("vegaEmbed is not defined: the inlined library did not load");
  } else {
    await Promise.all(charts.map(async function (box) {
      try {
        var spec = JSON.parse(document.getElementById(box.dataset.spec).textContent);
        await vegaEmbed(box, spec, options);
        box.dataset.rendered = "true";
      } catch (error) {
        box.dataset.rendered = "false";
        __report("chart " + box.id + ": " + (error && error.stack ? error.stack : error));
      }
    }));
  }
  document.body.dataset.status = window.__errors.length ? "errors" : "done";
})();
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em;
       color: #222; line-height: 1.45; }
nav a { margin-right: 1em; }
section { margin: 2.5em 0; }
.caption { max-width: 60em; color: #444; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.verdict { font-weight: bold; }
tr.supported td.verdict, tr.beyond-size td.verdict, tr.same-shape-and-size td.verdict
  { color: #1b7a5a; }
tr.not-supported td.verdict, tr.inconsistent td.verdict, tr.reversed td.verdict,
  tr.different td.verdict { color: #b34700; }
tr.explained-by-initialisation td.verdict, tr.explained-by-size td.verdict,
  tr.same-shape td.verdict { color: #7a5a00; }
tr.inconclusive-given-size td.verdict, tr.inconclusive td.verdict, tr.undefined td.verdict
  { color: #555; }
tr.not-testable td.verdict, tr.at-chance td.verdict { color: #777; }
dl.legend dt { font-weight: bold; float: left; clear: left; width: 10em; }
dl.legend dd { margin-left: 11em; }
.table-wrap { overflow-x: auto; }
table.fit { table-layout: fixed; width: 100%; }
table.fit td, table.fit th { overflow-wrap: anywhere; }
.chart { overflow-x: auto; }
#errors { display: none; }
h1 { font-size: 1.5em; margin: 0.3em 0; }
h2 { margin: 0.6em 0 0.4em; }
.bottom-line { background: #f6f8f7; border-left: 4px solid #1b7a5a; padding: 0.1em 1em; }
.bottom-line li { margin: 0.25em 0; }
.bottom-line .scope { color: #555; }
details > summary { cursor: pointer; }
.verdicts { margin: 0.5em 0 1em; font-size: 0.9em; }
.verdicts summary { display: grid; grid-template-columns: 3em 11em 12em 9em 1fr 6em 7em;
                    gap: 0 0.6em; padding: 0.15em 0.3em; border-bottom: 1px solid #e4e4e4; }
.verdicts summary::-webkit-details-marker { display: none; }
.verdicts summary:hover { background: #f3f3f3; }
.verdicts .head { display: grid; grid-template-columns: 3em 11em 12em 9em 1fr 6em 7em;
                  gap: 0 0.6em; padding: 0.15em 0.3em; font-weight: bold;
                  border-bottom: 2px solid #ccc; }
.verdicts .num { text-align: right; font-variant-numeric: tabular-nums; }
.verdicts .verdict { font-weight: bold; }
.verdicts details > div { padding: 0.3em 0.6em 0.6em 3.6em; color: #444; }
.verdicts details.supported .verdict { color: #1b7a5a; }
.verdicts details.not-supported .verdict, .verdicts details.inconsistent .verdict,
.verdicts details.reversed .verdict { color: #b34700; }
.verdicts details.not-testable .verdict, .verdicts details.at-chance .verdict { color: #777; }
"""


def summary(groups: pl.DataFrame) -> str:
    """The dashboard's opening paragraph: what the zoo holds and how runs were grouped."""
    counts = dict(groups.group_by("group").len().rows())
    by_group = ", ".join(f"{n} {g}" for g, n in sorted(counts.items()))
    diverged = int((groups["status"] == "diverged").sum())
    return (
        f"{groups.height} trained networks ({by_group}; {diverged} diverged) over "
        f"{groups['dataset'].n_unique()} dataset(s) and {groups['arch'].n_unique()} "
        f"architectures. Groups: {groups['group_rule'][0]}."
    )


FIT = ' class="fit"'


def html_table(
    df: pl.DataFrame, columns: Sequence[str], row_class: str | None = None, fit: bool = False
) -> str:
    """An escaped HTML table of the listed columns (those the frame has), numbers right-aligned.
    `row_class` names a column whose value, slugified, becomes each row's CSS class; `fit`
    makes the table as wide as its container, wrapping long cells instead of scrolling."""
    columns = [c for c in columns if c in df.columns]
    numeric = {c for c in columns if df.schema[c].is_numeric()}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for record in df.iter_rows(named=True):
        cells = "".join(
            f'<td class="{"num " if c in numeric else ""}{html.escape(c)}">'
            f"{html.escape(fmt(record[c]))}</td>"
            for c in columns
        )
        cls = ""
        if row_class is not None and record.get(row_class) is not None:
            slug = re.sub(r"[^a-z0-9]+", "-", str(record[row_class]).lower()).strip("-")
            cls = f' class="{slug}"'
        rows.append(f"<tr{cls}>{cells}</tr>")
    if not rows:
        return "<p><em>no rows</em></p>"
    return (
        f'<div class="table-wrap"><table{FIT if fit else ""}>'
        f"<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _legend() -> str:
    """What each verdict means (analysis.VERDICTS)."""
    items = "".join(
        f"<dt>{html.escape(v)}</dt><dd>{html.escape(text)}</dd>" for v, text in VERDICTS.items()
    )
    return f'<dl class="legend">{items}</dl>'


def _effect(row: dict) -> str:
    """A verdict row's headline effect with its CI, e.g. "−0.60 [−0.75, −0.40]"."""
    estimate = row.get("estimate")
    if finite(estimate) is None:
        return "–"
    text = f"{estimate:+.2f}"
    if row.get("ci_low") is not None and row.get("ci_high") is not None:
        text += f" [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"
    return text.replace("-", "−")


def _verdict_details(row: dict) -> str:
    """The folded part of one verdict: the size control (partial with its CI, raw − partial,
    the detectable effect, the equivalence test), the other controls, then the detail."""
    size = (
        f"given size: partial {fmt(row.get('size_partial'))} "
        f"[{fmt(row.get('size_ci_low'))}, {fmt(row.get('size_ci_high'))}], raw − partial "
        f"{fmt(row.get('raw_minus_partial'))} [{fmt(row.get('raw_minus_partial_low'))}, "
        f"{fmt(row.get('raw_minus_partial_high'))}], detectable at these cells "
        f"{fmt(row.get('detectable'))}, equivalence {fmt(row.get('equivalence'))}, cells needed "
        f"{fmt(row.get('cells_needed'))}"
        if "size_partial" in row and row.get("size_partial") is not None
        else ""
    )
    flags = [
        f"{label}: {fmt(row.get(key))}"
        for key, label in (
            ("beyond_size", "beyond size"),
            ("beyond_init", "beyond initialisation"),
            ("consistent", "consistent in direction"),
            ("exploratory", "exploratory"),
        )
        if key in row and row.get(key) is not None
    ]
    controls = " · ".join([size, *flags] if size else flags)
    clauses = [c.strip() for c in str(row.get("detail") or "").split("; ") if c.strip()]
    items = "".join(f"<li>{html.escape(c)}</li>" for c in clauses)
    return f"<div><p>{html.escape(controls)}</p>{f'<ul>{items}</ul>' if items else ''}</div>"


VERDICT_HEAD = ("claim", "subset", "verdict", "statistic", "effect [95 % CI]", "q", "cells / runs")


def verdict_rows(verdicts: pl.DataFrame) -> str:
    """Verdicts as compact one-line rows, each a <details> whose summary is the line and whose
    body holds the controls and the detail (folded: one screen holds them all)."""
    head = "".join(f"<span>{html.escape(h)}</span>" for h in VERDICT_HEAD)
    rows = []
    for row in verdicts.iter_rows(named=True):
        slug = re.sub(r"[^a-z0-9]+", "-", str(row.get("verdict")).lower()).strip("-")
        runs = f"{fmt(row.get('n_cells'))} / {fmt(row.get('n_runs'))}"
        cells = (
            (str(row.get("claim")), ""),
            (f"{row.get('dataset')} / {row.get('family')}", ""),
            (fmt(row.get("verdict")), "verdict"),
            (fmt(row.get("statistic")), ""),
            (_effect(row), "num"),
            (fmt(row.get("q_value")), "num"),
            (runs, "num"),
        )
        line = "".join(
            f'<span class="{cls}">{html.escape(text)}</span>'
            if cls
            else f"<span>{html.escape(text)}</span>"
            for text, cls in cells
        )
        rows.append(f'<details class="{slug}"><summary>{line}</summary>'
                    f"{_verdict_details(row)}</details>")  # fmt: skip
    if not rows:
        return "<p><em>no verdicts</em></p>"
    return f'<div class="verdicts"><div class="head">{head}</div>{"".join(rows)}</div>'


def verdict_section(verdicts: pl.DataFrame) -> str:
    """The verdict section's body: a line on how to read it, the legend (folded), then one
    block of compact rows per level of comparison (`within`)."""
    from weightzoo.bottom_line import levels

    blocks = [
        '<p>One line per claim and subset (dataset / family; "all" pools them): the verdict, '
        "its headline statistic and effect with a 95 % CI, q, and the architecture cells and "
        "runs it rests on. Click a line for the controls and every statistic.</p>"
        f"<details><summary>What the verdicts mean</summary>{_legend()}</details>"
    ]
    for title, part in levels(verdicts):
        if title:
            blocks.append(f"<h3>{html.escape(title)}</h3>")
        blocks.append(verdict_rows(part))
    return "".join(blocks)


def _paragraphs(text: str) -> str:
    return "".join(
        f"<p>{html.escape(' '.join(p.split()))}</p>" for p in text.split("\n\n") if p.strip()
    )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "figure"


PREDICTION_COLUMNS = (
    "feature_set",
    "predictor",
    "n_features",
    "tau",
    "tau_low",
    "tau_high",
    "r2",
    "r2_low",
    "r2_high",
    "tau_over_size",
    "tau_over_size_low",
    "tau_over_size_high",
)


def prediction_section(prediction: pl.DataFrame) -> dict:
    """The dashboard's prediction section: the headline and the final-epoch ladder of the
    split the headline reports (every split and epoch are in results/prediction.md)."""
    from weightzoo.prediction import SPLIT_TITLES, headline

    final = prediction.filter(pl.col("epoch") == "final", pl.col("tau").is_not_null())
    split = next((s for s in SPLIT_TITLES if s in final["split"].to_list()), None)
    ladder = final.filter(split=split) if split else final
    text = (
        f"<p>{html.escape(headline(prediction))}</p>"
        f"<p>{html.escape(SPLIT_TITLES.get(split, 'No split'))}: Kendall τ and R² of held-out "
        "predictions with 95 % bootstrap CIs over cells, and the paired increment over the "
        "strongest size baseline (parameter count fitted, or runs ranked by it). Every split "
        "and the early epochs: results/prediction.md.</p>"
        f"<details><summary>The ladder: {ladder.height} feature set × predictor rows</summary>"
        f"{html_table(ladder, PREDICTION_COLUMNS, fit=True)}</details>"
    )
    return {"id": "prediction", "title": "Accuracy predicted from the weights", "html": text}


def build_dashboard(
    figures: Sequence[dict],
    claims: pl.DataFrame,
    verdicts: pl.DataFrame,
    summary: str,
    out_path: str | Path,
    title: str = "weightzoo: the learnable parameters of optimal and suboptimal networks",
    sections: Sequence[dict] = (),
    bottom_line: str = "",
) -> Path:
    """Write the offline dashboard to `out_path` (atomically) and return its path.

    `figures`: dicts with name, title, caption and spec (a Vega-Lite dict with its data
    inline, e.g. figures.chart_spec(chart)), shown in this order. `claims`: the claims table
    (analysis.CLAIMS_SCHEMA columns); `verdicts`: analysis.verdicts(claims); `summary`: a
    paragraph of plain text (blank lines separate paragraphs); `sections`: dicts with id,
    title and html (trusted, already escaped), shown after the figures; `bottom_line`: an
    HTML fragment (weightzoo.bottom_line.to_html) that opens the verdicts.
    """
    names = [str(f["name"]) for f in figures]
    if len(set(map(_slug, names))) != len(names):
        raise ValueError(f"figure names must be distinct: {names}")
    nav = ['<a href="#verdicts">verdicts</a>']
    nav += [f'<a href="#{_slug(x["id"])}">{html.escape(x["title"])}</a>' for x in sections]
    extra = "".join(
        f'<section id="{_slug(x["id"])}"><h2>{html.escape(x["title"])}</h2>{x["html"]}</section>'
        for x in sections
    )
    sections = []
    for i, figure in enumerate(figures):
        missing = [k for k in ("name", "title", "caption", "spec") if k not in figure]
        if missing:
            raise ValueError(f"figure {i} ({figure.get('name')!r}) lacks {missing}")
        slug = _slug(str(figure["name"]))
        nav.append(f'<a href="#{slug}">{html.escape(str(figure["title"]))}</a>')
        sections.append(
            f'<section id="{slug}"><h2>{html.escape(str(figure["title"]))}</h2>'
            f'<div class="caption">{_paragraphs(str(figure["caption"]))}</div>'
            f'<div class="chart" id="chart-{slug}" data-spec="spec-{slug}"></div>'
            f'<script type="application/json" id="spec-{slug}">{script_json(figure["spec"])}'
            "</script></section>"
        )
    nav.append('<a href="#claims">all tests</a>')
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
<script>{_ERROR_HOOKS}</script>
<script>{javascript_bundle()}</script>
</head>
<body data-status="rendering">
<h1>{html.escape(title)}</h1>
<nav>{" ".join(nav)}</nav>
{f'<section id="bottom-line"><h2>Bottom line</h2>{bottom_line}</section>' if bottom_line else ""}
<div class="summary">{_paragraphs(summary)}</div>
<section id="verdicts"><h2>Verdicts</h2>
{verdict_section(verdicts)}
</section>
{"".join(sections)}
{extra}
<section id="claims"><h2>Every test</h2>
<details><summary>Every test behind the verdicts ({claims.height} rows; also in
tables/claims.parquet)</summary>
{html_table(claims, list(CLAIMS_SCHEMA), fit=True)}
</details>
</section>
<pre id="errors"></pre>
<script>{_RENDER % json.dumps(EMBED_OPTIONS)}</script>
</body>
</html>
"""
    check_offline(page, str(out_path))
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out_path
