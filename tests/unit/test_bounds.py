"""Bounds checked in-process: sweep size limits and non-finite numbers.

The resource-bounded child processes are in tests/system/test_bounds.py.
"""

from __future__ import annotations

import pytest
import yaml


def test_max_points_is_configurable(tmp_path, capsys):
    from tests.cnn_helpers import cli

    sweep = tmp_path / "small.yaml"
    sweep.write_text(yaml.safe_dump({"sweep": {"family": "cnn", "grid": {"optim.lr": [0.1, 0.2, 0.3]},
                                               "seeds": 2}}))
    assert cli(["sweep", sweep, "--dry-run", "--max-points", "5"]) == 2
    assert "the sweep has 6 runs" in capsys.readouterr().err
    assert cli(["sweep", sweep, "--dry-run", "--max-points", "6"]) == 0


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", ".inf", "1e999"])
def test_non_finite_numbers_are_refused_anywhere(value, capsys):
    from tests.cnn_helpers import cli

    assert cli(["train-cnn", "--set", f"optim.lr={value}", "--print-config"]) == 2
    assert "must be a finite number" in capsys.readouterr().err
