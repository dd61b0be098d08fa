"""dlx tensorboard refuses a runs directory that does not exist."""

from __future__ import annotations

from tests.cnn_helpers import cli


def test_tensorboard_needs_an_existing_runs_directory(tmp_path, capsys):
    assert cli(["tensorboard", tmp_path / "nowhere"]) == 2
    assert "runs directory" in capsys.readouterr().err
