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
