"""The bottom line: sentences written from the verdict table, for any verdict vocabulary."""

from __future__ import annotations

import polars as pl
import pytest

from weightzoo import bottom_line


def verdict_row(claim, dataset, family, verdict, **fields) -> dict:
    row = {
        "claim": claim, "within": "family", "dataset": dataset, "family": family,
        "verdict": verdict, "statistic": None, "direction": None, "estimate": None,
        "ci_low": None, "ci_high": None, "q_value": None, "n_cells": None, "n_runs": None,
        "detail": "",
    }  # fmt: skip
    return row | fields


def verdicts() -> pl.DataFrame:
    rows = [
        verdict_row(1, "all", "all", "explained by size", statistic="q99", estimate=-0.6,
                    ci_low=-0.75, ci_high=-0.4, q_value=0.0004, n_cells=45, n_runs=225),
        verdict_row(1, "digits", "cnn", "explained by size", n_cells=19, n_runs=95),
        verdict_row(1, "digits", "mlp", "explained by size", n_cells=18, n_runs=80),
        verdict_row(1, "digits", "vit", "not testable", n_cells=3, n_runs=15),
        verdict_row(2, "all", "all", "reversed", statistic="seed W1", estimate=0.31,
                    ci_low=0.1, ci_high=0.5, q_value=0.012, n_cells=45, n_runs=225),
        verdict_row(1, "digits", "mlp", "not supported", within="architecture",
                    statistic="mean", estimate=-0.7, q_value=0.74, n_cells=5, n_runs=25),
        verdict_row(2, "all", "all", "a verdict nobody wrote yet", within="architecture",
                    n_cells=10, n_runs=50),
    ]  # fmt: skip
    return pl.DataFrame(rows)


def test_each_claim_and_level_gets_one_finding_family_level_first():
    found = bottom_line.findings(verdicts())
    assert [(f.claim, f.within) for f in found] == [
        (1, "family"), (2, "family"), (1, "architecture"), (2, "architecture"),
    ]  # fmt: skip
    assert [f.verdict for f in found] == [
        "explained by size", "reversed", "not supported", "a verdict nobody wrote yet",
    ]  # fmt: skip


def test_the_pooled_row_speaks_with_its_numbers_and_the_subsets_are_grouped_by_verdict():
    first = bottom_line.findings(verdicts())[0]
    assert first.title == "Weight statistics track accuracy"
    assert first.scope == "across the architectures of each family"
    assert first.sentences() == (
        "There is an effect, but parameter count accounts for it. "
        "Pooled over 45 architecture cells (225 runs), the headline statistic, q99, has "
        "ρ = −0.60 [−0.75, −0.40], q < 0.001. "
        "By subset: explained by size for cnn (19 cells) and mlp (18 cells); "
        "not testable for vit (3 cells)."
    )


def test_new_verdicts_get_their_words_and_unknown_ones_are_quoted():
    found = {f.verdict: f for f in bottom_line.findings(verdicts())}
    assert (
        found["reversed"]
        .sentences()
        .startswith(
            "A control points the opposite way to the raw effect, so it is not supported. "
            "Pooled over 45 architecture cells (225 runs), the headline statistic, seed W1, has "
            "ρ = 0.31 [0.10, 0.50], q = 0.012."
        )
    )
    unknown = found["a verdict nobody wrote yet"]
    assert unknown.sentences() == (
        'Verdict "a verdict nobody wrote yet". Pooled over 10 architecture cells (50 runs).'
    )
    assert bottom_line.meaning("inconclusive given size").startswith("there is an effect")


def test_a_claim_without_a_pooled_row_lists_its_subsets():
    frame = pl.DataFrame([
        verdict_row(3, "digits", "cnn vs mlp", "shape only", n_cells=37),
        verdict_row(3, "digits", "cnn vs vit", "supported", n_cells=27),
    ])  # fmt: skip
    (found,) = bottom_line.findings(frame)
    assert found.verdict == "shape only, supported"
    assert found.sentences() == (
        "The subsets differ. By subset: shape only for cnn vs mlp (37 cells); "
        "supported for cnn vs vit (27 cells)."
    )


def test_zoo_sentence_counts_networks_cells_diverged_and_groups():
    groups = pl.DataFrame({
        "dataset": ["digits"] * 6, "family": ["mlp", "mlp", "mlp", "cnn", "cnn", "vit"],
        "arch": ["m1", "m1", "m2", "c1", "c1", "v1"], "setting": ["default"] * 6,
        "status": ["ok", "ok", "diverged", "ok", "ok", "ok"],
        "group": ["optimal", "optimal", "suboptimal", "suboptimal", "suboptimal", "at chance"],
    })  # fmt: skip
    assert bottom_line.zoo_sentence(groups) == (
        "The zoo holds 6 networks (4 cells of architecture × training setting, seeds within "
        "each) of MLP, CNN and ViT on digits. 1 run diverged and is left out of the tests. "
        "By accuracy: 2 optimal, 2 suboptimal and 1 at chance."
    )


def test_markdown_and_html_carry_the_same_findings_and_html_is_escaped():
    frame = pl.DataFrame([verdict_row(1, "all", "all", "<b>new</b>", n_cells=5, n_runs=9)])
    found = bottom_line.findings(frame)
    md = bottom_line.to_markdown(found, "Zoo & more.", ["Prediction says τ = 0.6."])
    assert md.splitlines() == [
        "Zoo & more.",
        "",
        "- **Weight statistics track accuracy** (across the architectures of each family): "
        '**<b>new</b>**. Verdict "<b>new</b>". Pooled over 5 architecture cells (9 runs).',
        "",
        "Prediction says τ = 0.6.",
    ]
    page = bottom_line.to_html(found, "Zoo & more.")
    assert "<b>new</b>" not in page and "&lt;b&gt;new&lt;/b&gt;" in page
    assert "<p>Zoo &amp; more.</p>" in page
    assert bottom_line.to_markdown([]) == "- No claim has a verdict yet.\n"


def test_readme_section_is_replaced_between_its_markers_only():
    text = f"# title\n\n{bottom_line.README_START}\nold\n{bottom_line.README_END}\n\nrest\n"
    new = bottom_line.replace_section(text, "new line\n")
    assert (
        new
        == f"# title\n\n{bottom_line.README_START}\nnew line\n{bottom_line.README_END}\n\nrest\n"
    )
    assert bottom_line.replace_section(new, "new line") == new  # idempotent
    with pytest.raises(ValueError, match="markers"):
        bottom_line.replace_section("# no markers\n", "x")


def test_levels_put_the_family_level_first_with_headings_in_words():
    frame = verdicts()
    parts = bottom_line.levels(frame.sort("within"))  # architecture rows first in the input
    assert [(title, part.height) for title, part in parts] == [
        ("Across the architectures of each family", 5),
        ("Across the training settings of one architecture", 2),
    ]
    assert bottom_line.levels(frame.drop("within"))[0][0] == ""


def test_with_one_dataset_its_all_families_row_speaks_and_agreeing_subsets_are_one_verdict():
    frame = pl.DataFrame([
        verdict_row(1, "digits", "all", "explained by size", statistic="q99", estimate=-0.6,
                    q_value=0.02, n_cells=45, n_runs=225),
        verdict_row(1, "digits", "mlp", "explained by size", n_cells=18),
        verdict_row(3, "digits", "cnn vs mlp", "shape only", n_cells=37),
        verdict_row(3, "digits", "cnn vs vit", "shape only", n_cells=27),
    ])  # fmt: skip
    one, three = bottom_line.findings(frame)
    assert one.sentences() == (
        "There is an effect, but parameter count accounts for it. Over 45 architecture cells "
        "(225 runs), the headline statistic, q99, has ρ = −0.60, q = 0.02. "
        "By subset: explained by size for mlp (18 cells)."
    )
    assert three.verdict == "shape only"
    assert three.sentences().startswith("The curves have the same shape, but the size")
