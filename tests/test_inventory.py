"""The check of results/ before any job: which folders a run could not write."""

from __future__ import annotations

import os

from weightzoo import inventory


def test_a_folder_that_does_not_exist_yet_is_decided_by_its_nearest_parent_once(
    tmp_path, monkeypatch
):
    (tmp_path / "results" / "figures").mkdir(parents=True)
    asked = []

    def access(path, mode):
        asked.append(path)
        return not path.endswith("figures")  # the figures folder is read-only

    monkeypatch.setattr(inventory.os, "access", access)
    folders = [tmp_path / "results" / "figures" / "a" / "b", tmp_path / "results" / "figures"]
    folders += [tmp_path / "results" / f"weights/arch=a{i}/setting=s" for i in range(100)]
    assert inventory.unwritable(folders) == [tmp_path / "results" / "figures"]
    # 102 folders, two existing ones decide them all, each asked once
    assert sorted(asked) == sorted(str(tmp_path / "results" / p) for p in ("", "figures"))
    assert os.path.isdir(tmp_path / "results")  # nothing created
