"""The documentation site builds with warnings as errors (`mkdocs build --strict`: a broken
link, a page left out of the nav or a reference that does not resolve fails), and the README
stays one screen or two, its links pointing at files that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_site_builds_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (make install installs it)")
    pytest.importorskip("mkdocstrings_handlers.python", reason="the docs extra is not installed (make install installs it)")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=600, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-4000:]
    assert "WARNING" not in done.stderr, done.stderr[-4000:]
    site = tmp_path / "site"
    for page in ("index.html", "data/index.html", "reference/umi_data/index.html", "differences/index.html", "guarantees/index.html"):
        assert (site / page).is_file(), page
    assert "build_corpus" in (site / "reference/umi_data/index.html").read_text()  # the reference is generated


def test_the_readme_is_short_and_its_links_resolve() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links and all((REPO / link).exists() for link in links if not link.startswith("http")), links


def test_the_data_cards_link_resolves() -> None:
    """The corpus card points readers at docs/differences.md: the page stays at that path."""
    assert (REPO / "docs" / "differences.md").is_file()
