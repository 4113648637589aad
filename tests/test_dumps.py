"""Dumps at a reduced precision (dump.dtype): rounded values in the float32 column, half
the bytes on disk or less, and the stored precision given back exactly."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from conftest import SCHEMA

from weightzoo import dumps

KINDS = {"w": ("weight", "0"), "b": ("bias", "0")}


def state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {"w": torch.randn(64, 32), "b": torch.tensor([1.0, 1 + 2**-10, 1 + 2**-7, 3.0])}


def table(dtype: str):
    return dumps.state_dict_table(state(), KINDS, dataset="d", family="mlp", arch="a", seed=0,
                                  epoch=0, dtype=dtype)  # fmt: skip


def test_float32_dumps_are_exact():
    rebuilt = dumps.rows_to_state_dict(table("float32"))
    assert all(torch.equal(rebuilt[k], v) for k, v in state().items())


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_rounded_dumps_hold_the_values_of_the_stored_precision(dtype):
    rows = table(dtype)
    assert rows.schema.field("values").type.value_type == "float"  # still list<float32>
    rebuilt = dumps.rows_to_state_dict(rows, dtype)
    for name, value in state().items():
        assert rebuilt[name].dtype == getattr(torch, dtype)
        assert torch.equal(rebuilt[name], value.to(getattr(torch, dtype)))


def test_bfloat16_keeps_8_significant_bits():
    # 1 + 2^-10 is 1 in bfloat16 (8 bits) but not in float16 (11 bits); 1 + 2^-7 is kept by both
    b16 = dumps.rows_to_state_dict(table("bfloat16"), "bfloat16")["b"].float().tolist()
    f16 = dumps.rows_to_state_dict(table("float16"), "float16")["b"].float().tolist()
    assert b16 == [1.0, 1.0, 1 + 2**-7, 3.0]
    assert f16 == [1.0, 1 + 2**-10, 1 + 2**-7, 3.0]


def test_a_bfloat16_dump_takes_about_half_the_bytes_on_disk(tmp_path):
    torch.manual_seed(1)
    big = {"w": torch.randn(512, 512), "b": torch.randn(512)}
    sizes = {}
    for dtype in ("float32", "bfloat16"):
        path = tmp_path / f"{dtype}.parquet"
        with dumps.DumpWriter(path) as writer:
            writer.write(dumps.state_dict_table(big, KINDS, dataset="d", family="mlp", arch="a",
                                                seed=0, epoch=0, dtype=dtype))  # fmt: skip
        sizes[dtype] = path.stat().st_size
        assert pq.read_table(path).num_rows == 2
    raw = 4 * (512 * 512 + 512)
    assert 0.8 < sizes["float32"] / raw < 1.1  # zstd finds little in random mantissas
    assert 0.35 < sizes["bfloat16"] / sizes["float32"] < 0.55  # the low 16 bits are zeros


def test_schema_lists_the_dump_dtypes_of_the_code():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["properties"]["dump"]["properties"]["dtype"]["enum"] == list(dumps.DUMP_DTYPES)


def test_a_training_job_with_bfloat16_dumps_records_it_and_the_zoo_gives_it_back(
    tmp_path, digits_file
):
    from weightzoo import jobs
    from weightzoo.zoo import open_zoo

    out = tmp_path / "results"
    unit = "dataset=digits/arch=mlp-d1-w4/setting=default/seeds-0-1.parquet"
    train = {"optimizer": "adam", "lr": 0.01, "batch_size": 64, "epochs": 1,
             "weight_decay": 0.0, "momentum": 0.9, "schedule": "cosine", "init_scale": 1.0,
             "train_fraction": 1.0}  # fmt: skip
    jobs.train_job(
        data_path=str(digits_file),
        unit={
            "dataset": "digits", "family": "mlp", "arch": "mlp-d1-w4",
            "arch_params": {"depth": 1, "width": 4, "activation": "relu"},
            "setting": "default", "setting_values": {}, "train": train, "seeds": [0, 1],
            "dump_epochs": [0, 1], "divergence": {"max_loss_ratio": 10.0, "patience": 2},
            "dump_dtype": "bfloat16",
        },
        outputs={
            "weights_out": str(out / "weights" / unit), "metrics_out": str(out / "metrics" / unit),
            "runs_out": str(out / "runs" / unit), "resume_dir": str(tmp_path / "resume"),
        },
        device="cpu", threads=1, vectorise=True,
    )  # fmt: skip
    values = pq.read_table(out / "weights" / unit).column("values").combine_chunks()
    flat = torch.from_numpy(values.flatten().to_numpy())
    assert torch.equal(flat, flat.to(torch.bfloat16).float())  # every value already rounded
    runs = pq.read_table(out / "runs" / unit).to_pylist()
    assert [json.loads(r["config"])["dump_dtype"] for r in runs] == ["bfloat16"] * 2
    (out / "tables").mkdir()
    pq.write_table(pq.read_table(out / "runs" / unit), out / "tables" / "runs.parquet")
    state = open_zoo(out).state_dict("digits", "mlp-d1-w4", 1, epoch=1)
    assert state["hidden.0.weight"].dtype == torch.bfloat16


def test_concat_files_gathers_many_small_row_groups_into_few(tmp_path, monkeypatch):
    """Thousands of per-run files become a few large row groups (a reader pays per row
    group), holding the same rows in the same order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from weightzoo import dumps

    monkeypatch.setattr(dumps, "GROUP_ROWS", 25)
    files = []
    for i in range(12):
        path = tmp_path / f"part{i}.parquet"
        pq.write_table(pa.table({"run": [i] * 4, "row": list(range(4))}), path)
        files.append(path)
    out = tmp_path / "all.parquet"
    assert dumps.concat_files(files, out) == 48
    f = pq.ParquetFile(out)
    assert [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)] == [28, 20]
    table = pq.read_table(out)
    assert table["run"].to_pylist() == [i for i in range(12) for _ in range(4)]
    assert table["row"].to_pylist() == list(range(4)) * 12
