"""Every file in experiments/ validates: plain configs against their family's config
class, sweep files as sweeps and every one of their points."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlx import config as config_mod
from dlx.registry import FAMILIES, config_class
from dlx.sweep import is_sweep_file, load_sweep
from tests.paths import EXPERIMENTS

FILES = sorted(p for p in EXPERIMENTS.rglob("*") if p.is_file() and not p.name.startswith("."))


def _id(path: Path) -> str:
    return str(path.relative_to(EXPERIMENTS))


def test_there_are_experiments_for_every_family_folder():
    assert FILES, "experiments/ is empty"
    for folder in (p for p in EXPERIMENTS.iterdir() if p.is_dir()):
        assert folder.name in FAMILIES, f"experiments/{folder.name}/ is not a family ({', '.join(FAMILIES)})"


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_experiment_file_validates(path):
    assert path.suffix in (".yaml", ".yml"), f"{_id(path)}: experiments hold YAML files only"
    family = path.relative_to(EXPERIMENTS).parts[0]
    if is_sweep_file(path):
        sweep = load_sweep(path)  # raises ConfigError naming the point and key
        assert sweep.family == family, f"{_id(path)}: a {sweep.family} sweep in experiments/{family}/"
        assert sweep.question, f"{_id(path)}: the first line must be a comment: '# Answers: <the question>'"
        assert sweep.points or sweep.search  # a search chooses its trials as it goes
    else:
        config_mod.build(config_class(family), path)
