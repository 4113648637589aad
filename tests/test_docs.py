"""The README is a short front page; the manual in docs/ builds offline as a strict site."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from weightzoo import bottom_line, vega

ROOT = Path(__file__).resolve().parents[1]


def nav_pages(nav) -> list[str]:
    """Every page file the mkdocs nav names, in order."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for v in nav.values() for p in nav_pages(v)]
    return [p for item in nav for p in nav_pages(item)]


def test_readme_is_a_short_front_page_with_the_generated_section():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert text.index(bottom_line.README_START) < text.index(bottom_line.README_END)
    assert "```bash\nmake run" in text and "make test" in text


def test_every_link_of_the_readme_and_the_docs_reaches_a_file():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_docs_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = nav_pages(config["nav"])
    assert len(listed) == len(set(listed))
    on_disk = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert sorted(listed) == on_disk, "add the page to mkdocs.yml's nav (or remove it there)"


def without_network() -> list[str]:
    """A command prefix that runs its command with no network (a fresh network namespace,
    as root), or [] where that cannot be made."""
    if shutil.which("unshare") is None:
        return []
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return ["unshare", "-n"] if probe.returncode == 0 else []


def test_docs_site_builds_strict_with_nothing_fetched(tmp_path: Path):
    try:
        import material  # noqa: F401  (mkdocs-material, the theme)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("mkdocs-material is not installed, but CI is set (the dev extra has it)")
        pytest.skip("mkdocs-material is not installed (pip install -e '.[dev]')")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [*without_network(), sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    pages = sorted(site.glob("*.html"))
    assert {p.stem for p in pages} >= {"index", "configuration", "claims"}
    for page in pages:
        text = page.read_text()
        vega.check_offline(text, page.name)  # no script, style sheet or image from the network
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page.name
    for sheet in site.rglob("*.css"):
        assert not re.search(r"@import\s+url\(\s*['\"]?https?:", sheet.read_text()), sheet
