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

from weightzoo.analysis import CLAIMS_SCHEMA, VERDICT_COLUMNS, VERDICTS
from weightzoo.io import atomic_path
from weightzoo.markdown import fmt
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
tr.supported td.verdict { color: #1b7a5a; }
tr.not-supported td.verdict, tr.inconsistent td.verdict { color: #b34700; }
tr.initialisation td.verdict, tr.explained-by-size td.verdict, tr.shape-only td.verdict
  { color: #7a5a00; }
tr.not-testable td.verdict, tr.at-chance td.verdict { color: #777; }
dl.legend dt { font-weight: bold; float: left; clear: left; width: 10em; }
dl.legend dd { margin-left: 11em; }
.table-wrap { overflow-x: auto; }
.chart { overflow-x: auto; }
#errors { display: none; }
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


def html_table(df: pl.DataFrame, columns: Sequence[str], row_class: str | None = None) -> str:
    """An escaped HTML table of the listed columns (those the frame has), numbers right-aligned.
    `row_class` names a column whose value, slugified, becomes each row's CSS class."""
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
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _legend() -> str:
    """What each verdict means (analysis.VERDICTS)."""
    items = "".join(
        f"<dt>{html.escape(v)}</dt><dd>{html.escape(text)}</dd>" for v, text in VERDICTS.items()
    )
    return f'<dl class="legend">{items}</dl>'


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
        "and the early epochs: results/prediction.md.</p>" + html_table(ladder, PREDICTION_COLUMNS)
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
) -> Path:
    """Write the offline dashboard to `out_path` (atomically) and return its path.

    `figures`: dicts with name, title, caption and spec (a Vega-Lite dict with its data
    inline, e.g. figures.chart_spec(chart)), shown in this order. `claims`: the claims table
    (analysis.CLAIMS_SCHEMA columns); `verdicts`: analysis.verdicts(claims); `summary`: a
    paragraph of plain text (blank lines separate paragraphs); `sections`: dicts with id,
    title and html (trusted, already escaped), shown after the verdicts.
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
<div class="summary">{_paragraphs(summary)}</div>
<section id="verdicts"><h2>Verdicts</h2>
<p>One line per claim and subset (dataset × family; "all" pools them): the verdict, the
direction and size of its headline effect with a 95 % confidence interval, its q-value, the
architectures and runs it rests on (the unit of inference is the architecture), and whether
the effect survives the controls for size and initialisation and keeps its direction.</p>
{html_table(verdicts, VERDICT_COLUMNS, row_class="verdict")}
{_legend()}
</section>
{extra}
{"".join(sections)}
<section id="claims"><h2>Every test</h2>
{html_table(claims, list(CLAIMS_SCHEMA))}
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
