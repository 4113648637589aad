"""A damaged results file — a flipped bit, a file cut short — is one error naming the file, the
job that wrote it and how to redo that job alone; never a number."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import torch

from weightzoo import dumps, jobs, tables

UNIT = "dataset=digits/arch=mlp-d1-w16/setting=default/seeds-0-1.parquet"
JOB = "train (dataset=digits, arch=mlp-d1-w16, setting=default, seeds=0-1)"
HIST = {"range": [-1.0, 1.0], "bins": 10, "scaled_range": [-8.0, 8.0]}


def write_weights(path) -> None:
    """Two dumps of a 64-16-10 MLP's tensors, as a training job writes them."""
    kinds = {"hidden.0.weight": ("weight", "hidden.0"), "hidden.0.bias": ("bias", "hidden.0"),
             "head.weight": ("weight", "head"), "head.bias": ("bias", "head")}  # fmt: skip
    shapes = {"hidden.0.weight": (16, 64), "hidden.0.bias": (16,), "head.weight": (10, 16),
              "head.bias": (10,)}  # fmt: skip
    with dumps.DumpWriter(path) as writer:
        for seed in (0, 1):
            for epoch in (0, 3):
                g = torch.Generator().manual_seed(10 * seed + epoch)
                state = {k: torch.randn(s, generator=g) * 0.1 for k, s in shapes.items()}
                writer.write(dumps.state_dict_table(state, kinds, dataset="digits", family="mlp",
                                                    arch="mlp-d1-w16", seed=seed, epoch=epoch))  # fmt: skip


def flip_a_bit_in_the_values(path) -> None:
    """Flip one bit in the middle of the first row group's weight values (a data page)."""
    meta = pq.ParquetFile(path).metadata.row_group(0)
    column = next(meta.column(i) for i in range(meta.num_columns)
                  if meta.column(i).path_in_schema == "values.list.element")  # fmt: skip
    at = column.data_page_offset + column.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    data[at] ^= 0x08
    path.write_bytes(bytes(data))


@pytest.fixture
def damaged(tmp_path):
    path = tmp_path / "results" / "weights" / UNIT
    write_weights(path)
    flip_a_bit_in_the_values(path)
    return path


def test_a_flipped_bit_is_named_with_the_job_that_wrote_the_file(damaged):
    with pytest.raises(tables.DamagedFileError) as info:
        tables.check_parquet(damaged)
    message = str(info.value)
    assert message.startswith(f"{damaged} is damaged (")
    assert f"it was written by {JOB}" in message
    assert f"run with --forcerun {damaged}, to redo that job alone" in message
    assert "\n" not in message


def test_the_statistics_job_stops_on_a_flipped_bit_instead_of_computing_on_it(damaged, tmp_path):
    with pytest.raises(tables.DamagedFileError, match="it was written by train \\(dataset=digits"):
        jobs.stats_job(weights_path=damaged, family="mlp", in_shape=[1, 8, 8], hist=HIST,
                       spectral=None, stats_out=tmp_path / "s.parquet",
                       maps_out=tmp_path / "m.parquet")  # fmt: skip
    assert not (tmp_path / "s.parquet").exists()


def test_an_undamaged_file_reads_and_its_statistics_are_those_of_its_values(tmp_path):
    path = tmp_path / "results" / "weights" / UNIT
    write_weights(path)
    tables.check_parquet(path)
    jobs.stats_job(weights_path=path, family="mlp", in_shape=[1, 8, 8], hist=HIST, spectral=None,
                   stats_out=tmp_path / "s.parquet", maps_out=tmp_path / "m.parquet")  # fmt: skip
    stats = pq.read_table(tmp_path / "s.parquet").to_pylist()
    row = next(r for r in stats if r["seed"] == 1 and r["epoch"] == 3
               and r["scope"] == "head.bias" and r["target"] == "w")  # fmt: skip
    g = torch.Generator().manual_seed(13)
    expected = {k: torch.randn(s, generator=g) * 0.1 for k, s in
                (("hidden.0.weight", (16, 64)), ("hidden.0.bias", (16,)),
                 ("head.weight", (10, 16)), ("head.bias", (10,)))}["head.bias"]  # fmt: skip
    assert row["max"] == pytest.approx(float(expected.max()))


def test_a_damaged_table_stops_its_concatenation_naming_it(tmp_path):
    files = []
    for seeds in ("0-1", "2-3"):
        path = (
            tmp_path
            / "results"
            / "stats"
            / f"dataset=digits/arch=a/setting=default/seeds-{seeds}.parquet"
        )
        write_weights(path)  # any table of ours will do
        files.append(path)
    flip_a_bit_in_the_values(files[1])
    with pytest.raises(tables.DamagedFileError) as info:
        jobs.concat_tables(files=files, output=tmp_path / "results/tables/stats.parquet")
    assert str(info.value).startswith(f"{files[1]} is damaged")
    assert "written by weight_stats (dataset=digits, arch=a, setting=default, seeds=2-3)" in str(
        info.value
    )
    assert not list((tmp_path / "results/tables").glob("*"))


def test_a_file_cut_short_is_named_with_its_job(tmp_path):
    path = tmp_path / "results" / "weights" / UNIT
    write_weights(path)
    path.write_bytes(path.read_bytes()[:500])
    for check in (tables.check_parquet, tables.check_footer):
        with pytest.raises(tables.DamagedFileError) as info:
            check(path)
        assert str(info.value).startswith(f"{path} is damaged")
        assert f"written by {JOB}; delete it, or run with --forcerun {path}" in str(info.value)


@pytest.mark.parametrize("path,job", [
    ("results/tables/runs.parquet", "aggregate_runs"),
    ("results/tables/cells.parquet", "claims"),
    ("results/tables/prediction.parquet", "predict_accuracy"),
    ("results/figures/weight_histograms.vl.json", "figure (figure=weight_histograms)"),
    ("results/strength_maps/dataset=d/arch=a/setting=s/seeds-0-9.parquet",
     "weight_stats (dataset=d, arch=a, setting=s, seeds=0-9)"),
])  # fmt: skip
def test_each_results_file_names_the_job_that_writes_it(path, job):
    assert tables.producing_job(path) == job
