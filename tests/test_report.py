"""The replication report: every number from the run's tables, sections robust to what the
analysis tables hold."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from weightzoo import report
from weightzoo.markdown import replace_between


def runs_frame() -> pl.DataFrame:
    """Two MLP cells of 2 seeds (one diverged run) and one CNN cell of 2 seeds."""
    return pl.DataFrame(
        {
            "dataset": ["mnist"] * 6,
            "family": ["mlp", "mlp", "mlp", "mlp", "cnn", "cnn"],
            "arch": ["mlp-d1-w1", "mlp-d1-w1", "mlp-d1-w100", "mlp-d1-w100", "cnn-b1-c1",
                     "cnn-b1-c1"],
            "setting": ["default"] * 6,
            "seed": [0, 1, 0, 1, 0, 1],
            "n_params": [805, 805, 79_510, 79_510, 1_970, 1_970],
            "status": ["ok", "diverged", "ok", "ok", "ok", "ok"],
            "final_test_acc": [0.30, 0.10, 0.96, 0.98, 0.80, 0.90],
        }
    )  # fmt: skip


def test_accuracy_range_names_the_weakest_and_best_cell_from_finished_runs():
    cells = report.cell_accuracy(runs_frame())
    ranges = report.accuracy_ranges(cells).to_dicts()
    mlp = next(r for r in ranges if r["family"] == "mlp")
    assert (mlp["cells"], mlp["runs"], mlp["diverged"]) == (2, 4, 1)
    assert mlp["weakest"] == "`mlp-d1-w1`: 30.0 % ± 0.0 %"  # the diverged 10 % left out
    assert mlp["best"] == "`mlp-d1-w100`: 97.0 % ± 1.0 %"
    cnn = next(r for r in ranges if r["family"] == "cnn")
    assert cnn["weakest"] == cnn["best"] == "`cnn-b1-c1`: 85.0 % ± 5.0 %"


def test_verdict_table_is_read_from_a_verdicts_file_whatever_its_columns(tmp_path):
    pl.DataFrame({"claim": [1, 2], "verdict": ["inconclusive given size", "supported"],
                  "new_column": ["a", "b"]}).write_parquet(tmp_path / "verdicts.parquet")  # fmt: skip
    table = report.verdict_table(pl.DataFrame(), tmp_path)
    assert table["verdict"].to_list() == ["inconclusive given size", "supported"]
    lines = report._verdict_lines(table)
    assert "**Claim 1**" in lines and "**Claim 2**" in lines
    assert "| inconclusive given size |" in lines


def test_verdict_lines_show_a_table_without_known_columns_whole():
    lines = report._verdict_lines(pl.DataFrame({"x": [1], "y": ["z"]}))
    assert lines[0] == "| x | y |" and lines[2] == "| 1 | z |"


def test_heavy_tail_summary_counts_statuses_and_compares_groups_with_the_null():
    final = pl.DataFrame(
        {
            "dataset": ["mnist"] * 5,
            "family": ["mlp"] * 5,
            "scope_type": ["tensor", "tensor", "tensor", "tensor", "pool"],
            "target": ["w"] * 5,
            "group": ["optimal", "optimal", "suboptimal", "suboptimal", "optimal"],
            "fit_status": ["ok", "ok", "ok", "too_few_evals", "ok"],
            "alpha": [2.0, 3.0, 5.0, 9.0, 2.5],
            "alpha_null": [6.0, 6.0, 5.5, None, None],
            "heavy_tailed": [True, True, False, None, None],
        }
    )
    status, groups = report.heavy_tail_summary(final)
    assert status.select("ok", "too_few_evals", "matrices").row(0) == (3, 1, 4)  # no pools
    rows = {r["group"]: r for r in groups.to_dicts()}
    assert list(rows) == ["optimal", "suboptimal"]
    assert rows["optimal"]["valid fits"] == 2 and rows["optimal"]["α median"] == 2.5
    assert rows["optimal"]["null α median"] == 6.0 and rows["optimal"]["heavy-tailed"] == 2
    assert rows["suboptimal"]["α median"] == 5.0 and rows["suboptimal"]["heavy-tailed"] == 0


def test_prediction_ladder_prefers_held_out_architectures_and_formats_cis():
    table = pl.DataFrame(
        {
            "feature_set": ["size", "size"],
            "predictor": ["hgb", "hgb"],
            "split": ["seed", "architecture"],
            "epoch": ["final", "final"],
            "tau": [0.9, 0.5],
            "tau_low": [0.8, 0.4],
            "tau_high": [1.0, 0.6],
        }
    )
    split, ladder = report.prediction_ladder(table)
    assert split == "architecture"
    assert ladder.to_dicts() == [{"feature_set": "size", "predictor": "hgb",
                                  "tau": "0.50 [0.40, 0.60]"}]  # fmt: skip


def test_benchmarks_are_summed_per_rule(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for i, (wall, cpu) in enumerate([(10.0, 8.0), (20.0, 19.5)]):
        path = tmp_path / "train" / "mnist" / f"job{i}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{wall}\t0:00:10\t{100 + i}\t1\t1\t1\t0\t0\t50\t{cpu}\n")
    (tmp_path / "predict_accuracy.tsv").write_text(
        header + "5.0\t0:00:05\t300\t1\t1\t1\t0\t0\t9\t4.0\n"
    )
    table = report.benchmark_table(tmp_path).sort("rule").to_dicts()
    assert [r["rule"] for r in table] == ["predict_accuracy", "train"]
    train = table[1]
    assert (train["jobs"], train["cpu_s"], train["wall_s"], train["longest_s"]) == (
        2,
        27.5,
        30.0,
        20.0,
    )
    assert train["peak_rss_mib"] == 101


def test_publish_copies_the_page_and_its_figures_relinked(tmp_path):
    results = tmp_path / "results"
    (results / "figures").mkdir(parents=True)
    (results / "figures" / "a.svg").write_text("<svg/>")
    (results / "report.md").write_text("# R\n\n![a](figures/a.svg)\n")
    target = tmp_path / "docs" / "replication-mnist.md"
    target.parent.mkdir()
    copied = report.publish(results / "report.md", target)
    assert target.read_text() == "# R\n\n![a](replication-mnist/a.svg)\n"
    assert copied == [tmp_path / "docs" / "replication-mnist" / "a.svg"]
    assert Path(copied[0]).read_text() == "<svg/>"


def test_verdict_agreement_pairs_places_across_datasets_and_counts_what_differs():
    def frame(dataset, verdicts):
        return pl.DataFrame(
            {
                "claim": [c for c, _, _, _ in verdicts],
                "within": [w for _, w, _, _ in verdicts],
                "dataset": [dataset] * len(verdicts),
                "family": [f for _, _, f, _ in verdicts],
                "verdict": [v for _, _, _, v in verdicts],
                "direction": ["higher"] * len(verdicts),
            }
        )

    digits = frame(
        "digits",
        [
            (1, "cell", "mlp", "supported"),
            (1, "cell", "cnn", "explained by size"),
            (2, "cell", "mlp", "not supported"),
            (3, "run", "vit", "supported"),  # only on digits
        ],
    )
    mnist = frame(
        "mnist",
        [
            (1, "cell", "mlp", "supported"),
            (1, "cell", "cnn", "supported"),
            (2, "cell", "mlp", "not supported"),
        ],
    )
    table = report.verdict_agreement(mnist, digits)
    agree = {(r["claim"], r["family"]): r["agree"] for r in table.iter_rows(named=True)}
    assert agree == {(1, "mlp"): True, (1, "cnn"): False, (2, "mlp"): True, (3, "vit"): None}
    lines = report.agreement_lines(mnist, digits, "MNIST", "digits")
    assert (
        "Of the 3 verdicts both runs give (claim × level × family), 2 agree and 1 differ; "
        "1 are given by one run only." in lines[2]
    )
    assert "| verdict (MNIST) |" in "\n".join(lines)
    summary = report.agreement_summary(mnist, digits, "MNIST", "digits", "docs/mnist.md")
    assert summary.splitlines() == [
        "Of the 3 verdicts (claim × level × family) that both the MNIST run and the digits run "
        "give, **2 agree** and **1 differ**; 1 are given by one run only ([the comparison]"
        "(docs/mnist.md)).",
        "",
        "- Agree: claim 1 (within each cell, mlp); claim 2 (within each cell, mlp).",
        "- Differ: claim 1 (within each cell, cnn): supported on MNIST, explained by size on "
        "digits.",
    ]
    readme = "a\n" + report.AGREEMENT_START + "\nold\n" + report.AGREEMENT_END + "\nb\n"
    rewritten = replace_between(readme, report.AGREEMENT_START, report.AGREEMENT_END, summary)
    assert "old" not in rewritten and summary in rewritten and rewritten.endswith("end -->\nb\n")
