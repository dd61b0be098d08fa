"""The docs site builds with ``mkdocs build --strict``: no broken link or anchor, no missing picture.

``make test`` builds the site too (``make docs``); this test keeps the check in the suite for runs of
pytest alone. The Reference pages are written into docs/reference/ by the build's hook.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.paths import ROOT

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("material", reason="the docs extra is not installed (pip install -e '.[docs]')")


def test_the_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for page in ("index.html", "getting-started/tensorboard.html", "guides/gan.html", "results/index.html",
                 "reference/commands.html", "reference/config.html", "reference/recipes.html"):
        assert (site / page).is_file(), f"{page} was not built"
    commands = (site / "reference" / "commands.html").read_text()
    assert "dlx train-graph" in commands and "--max-time" in commands
