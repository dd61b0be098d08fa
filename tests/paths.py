"""Where the tests find the repository (the tiers sit at different depths under tests/)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository root
PACKAGE = ROOT / "dlx"
EXPERIMENTS = ROOT / "experiments"
FIXTURES = ROOT / "tests" / "fixtures"
OLD_RUNS = FIXTURES / "runs-v0.1"  # one tiny run per family, written by dlx 0.1 on another machine
