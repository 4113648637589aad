"""The dashboard: one offline page that a headless browser renders without errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from test_figures import HIST_RANGE, make_final, make_groups, make_medians

from weightzoo import dashboard, figures, vega
from weightzoo.analysis import CLAIMS_SCHEMA

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=10000",
)  # fmt: skip


def find_chromium() -> str | None:
    """The Chromium binary, or None; fails instead of skipping on CI, where it is installed."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None and os.environ.get("CI"):
        pytest.fail("chromium not installed, but CI is set (the CI set-up installs it)")
    return path


def dump_dom(page: Path, profile: Path, timeout: float = 60) -> str:
    """The DOM of a local page after headless Chromium has run its scripts (--dump-dom).

    Skips the test when Chromium is missing (fails on CI). `profile` is an empty folder for
    Chromium's user data, so nothing is shared with other runs.
    """
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium not installed (make test installs it)")
    profile.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    return done.stdout


class Page(HTMLParser):
    """What the checks need from a dumped DOM: the body's attributes, every chart container
    (with whether it holds an <svg>), the errors element's text and the script sources."""

    def __init__(self, text: str):
        super().__init__()
        self.body: dict = {}
        self.charts: dict[str, dict] = {}
        self.errors: str | None = None
        self.script_sources: list[str] = []
        self._open: list[tuple[str, str | None]] = []  # (tag, chart id it opened, if any)
        self._in_errors = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        opened = None
        if tag == "body":
            self.body = attrs
        elif tag == "script" and attrs.get("src"):
            self.script_sources.append(attrs["src"])
        elif tag == "pre" and attrs.get("id") == "errors":
            self._in_errors, self.errors = True, ""
        elif "chart" in (attrs.get("class") or "").split():
            opened = attrs["id"]
            self.charts[opened] = {**attrs, "svg": False}
        if tag == "svg":
            for _, chart in self._open:
                if chart is not None:
                    self.charts[chart]["svg"] = True
        if tag not in ("br", "img", "input", "meta", "link", "hr", "col", "source", "path"):
            self._open.append((tag, opened))

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break
        if tag == "pre":
            self._in_errors = False

    def handle_data(self, data):
        if self._in_errors:
            self.errors += data


def claims_table() -> pl.DataFrame:
    rows = [
        {"claim": 1, "claim_text": "Weight statistics correlate with performance",
         "dataset": "digits", "family": "mlp", "scope": "all_weights", "target": "w",
         "statistic": "std", "test": "spearman", "n_a": 15, "n_b": None,
         "estimate": 0.8123456, "ci_low": 0.61, "ci_high": 0.9, "p_value": 1.234e-5,
         "q_value": 2.5e-5, "supported": True, "note": "<b>escaped</b> & kept"},
        {"claim": 2, "claim_text": "Successful networks resemble each other",
         "dataset": "digits", "family": "mlp", "scope": "all_weights", "target": "delta",
         "statistic": None, "test": "w1_permutation", "n_a": 3, "n_b": 3, "estimate": None,
         "ci_low": None, "ci_high": None, "p_value": float("nan"), "q_value": None,
         "supported": None, "note": "a group has fewer than 5 runs: no test"},
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=CLAIMS_SCHEMA)


def verdicts_table() -> pl.DataFrame:
    return pl.DataFrame({
        "claim": [1, 2], "dataset": ["digits", "digits"], "family": ["mlp", "mlp"],
        "tests": [1, 0], "supported_tests": [1, 0], "untestable": [0, 1],
        "verdict": ["supported", "not testable"],
    })  # fmt: skip


def small_figures() -> list[dict]:
    """Three real figures of a small synthetic zoo, as the dashboard takes them."""
    groups = make_groups(seeds=2)
    final = make_final(groups)
    charts = {
        "accuracy_vs_params": figures.accuracy_vs_params_chart(groups, 160, 120),
        "weight_histograms": figures.weight_histograms_chart(final, HIST_RANGE, 160, 100),
        "trajectories": figures.trajectories_chart(make_medians(), 160, 120),
    }
    return [
        {"name": name, "title": figures.FIGURES[name].title,
         "caption": figures.FIGURES[name].caption, "spec": vega.chart_spec(chart)}
        for name, chart in charts.items()
    ]  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dashboard") / "results" / "index.html"
    summary = "185 networks on digits.\n\nClaim 1 <holds> for MLPs & CNNs."
    return dashboard.build_dashboard(
        small_figures(), claims_table(), verdicts_table(), summary, out
    )


def test_dashboard_is_one_offline_page(page: Path):
    text = page.read_text()
    assert sorted(p.name for p in page.parent.iterdir()) == ["index.html"]  # no temp file left
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)  # every script is inline
    vega.check_offline(text)
    assert text.count("window.vegaEmbed=") == 1  # the library once, however many charts
    assert len(text) < len(dashboard.javascript_bundle()) + 200_000


def test_dashboard_tables_are_escaped_and_formatted(page: Path):
    text = page.read_text()
    assert "Claim 1 &lt;holds&gt; for MLPs &amp; CNNs." in text
    assert "&lt;b&gt;escaped&lt;/b&gt; &amp; kept" in text and "<b>escaped" not in text
    assert ">0.812<" in text and ">1.23e-05<" in text  # 3 significant digits
    assert '<td class="num p_value">–</td>' in text  # NaN, like null, is a dash
    assert '<tr class="not-testable">' in text
    for column in CLAIMS_SCHEMA:
        assert f"<th>{column}</th>" in text


def test_dashboard_renders_every_chart_in_a_browser(page: Path, tmp_path: Path):
    dom = Page(dump_dom(page, tmp_path / "profile"))
    assert not [s for s in dom.script_sources if re.match(r"(https?:)?//", s)]
    assert dom.errors == "", dom.errors
    assert dom.body.get("data-status") == "done"
    assert len(dom.charts) == 3
    for name, chart in dom.charts.items():
        assert chart.get("data-rendered") == "true", name
        assert chart["svg"], f"{name} holds no <svg>"


def test_dashboard_reports_a_broken_chart(tmp_path: Path):
    spec = {
        "mark": "point",
        "data": {"values": [{"a": 1}]},
        "encoding": {"x": {"field": "a", "type": "no-such-type"}},
    }
    caption = "A spec Vega-Lite cannot compile."
    broken = [
        *small_figures()[:1],
        {"name": "broken", "title": "Broken", "caption": caption, "spec": spec},
    ]
    page = dashboard.build_dashboard(
        broken, claims_table(), verdicts_table(), "", tmp_path / "index.html"
    )
    dom = Page(dump_dom(page, tmp_path / "profile"))
    assert dom.body.get("data-status") == "errors"
    assert "chart-broken" in dom.errors
    assert dom.charts["chart-accuracy_vs_params"].get("data-rendered") == "true"
    assert dom.charts["chart-broken"].get("data-rendered") == "false"


def test_dashboard_refuses_figures_with_the_same_name(tmp_path: Path):
    twice = small_figures()[:1] * 2
    with pytest.raises(ValueError, match="distinct"):
        dashboard.build_dashboard(twice, claims_table(), verdicts_table(), "", tmp_path / "i.html")
    assert not list(tmp_path.iterdir())


def test_dashboard_shows_the_prediction_headline_and_ladder(tmp_path: Path):
    from weightzoo.prediction import PREDICTION_SCHEMA

    rows = [
        {"feature_set": f, "predictor": "hgb", "split": "architecture", "epoch": "final",
         "headline": f == "size+layer7", "n_features": n, "n_cells": 37, "n_runs": 185,
         "tau": tau, "tau_low": tau - 0.1, "tau_high": tau + 0.1, "r2": 0.5,
         "tau_over_size": tau - 0.5, "tau_over_size_low": tau - 0.6,
         "tau_over_size_high": tau - 0.4, "note": "grouped k-fold over cells",
         "size_baselines": '{"tau": "size (hgb)", "r2": "size (hgb)"}'}
        for f, n, tau in (("size", 1, 0.5), ("size+layer7", 57, 0.7))
    ]  # fmt: skip
    section = dashboard.prediction_section(pl.DataFrame(rows, schema=PREDICTION_SCHEMA))
    page = dashboard.build_dashboard(
        small_figures()[:1], claims_table(), verdicts_table(), "", tmp_path / "index.html",
        sections=[section],
    )  # fmt: skip
    text = page.read_text()
    assert '<a href="#prediction">Accuracy predicted from the weights</a>' in text
    assert "the weights predict test accuracy with τ = 0.70 [0.60, 0.80]" in text
    assert "beyond the strongest size baseline (size (hgb): τ = 0.50 [0.40, 0.60])" in text
    assert '<td class="num tau_over_size">0.2</td>' in text
