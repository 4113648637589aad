"""Job plumbing: the checkout's library runs, whatever else is installed."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_job_scripts_import_this_checkouts_library_before_an_installed_copy(tmp_path):
    other = tmp_path / "site" / "weightzoo"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("__version__ = 'another copy'\n")
    code = "import _src_path, weightzoo; print(weightzoo.__file__)"
    env = {"PYTHONPATH": f"{tmp_path / 'site'}:{ROOT / 'workflow' / 'scripts'}"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(ROOT / "src" / "weightzoo" / "__init__.py")


def test_statistics_of_a_pack_are_the_files_of_one_job_per_block(tmp_path):
    import pyarrow.parquet as pq
    from test_integrity import HIST, write_weights

    from weightzoo import jobs

    weights = [tmp_path / f"w{i}.parquet" for i in range(2)]
    for path in weights:
        write_weights(path)
    shared = {"family": "mlp", "in_shape": [1, 8, 8], "hist": HIST, "spectral": None}
    jobs.stats_pack_job(
        weights_paths=weights,
        stats_outs=[tmp_path / f"pack_s{i}.parquet" for i in range(2)],
        maps_outs=[tmp_path / f"pack_m{i}.parquet" for i in range(2)],
        **shared,
    )
    for i, path in enumerate(weights):
        jobs.stats_job(
            weights_path=path,
            stats_out=tmp_path / f"s{i}.parquet",
            maps_out=tmp_path / f"m{i}.parquet",
            **shared,
        )
        for kind in ("s", "m"):  # the same bytes (tables with NaN never compare equal)
            alone = tmp_path / f"{kind}{i}.parquet"
            assert pq.read_metadata(alone).num_rows > 0
            assert (tmp_path / f"pack_{kind}{i}.parquet").read_bytes() == alone.read_bytes()
