"""Model selection on a validation split held out from the training data; the test split reported once.

CNN, GAN (images; 2-D mixtures need none) and Transformer (generated and file tasks), and runs
from before validation splits, which keep training without one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from dlx.data.splits import holdout
from dlx.errors import ConfigError
from tests.paths import OLD_RUNS

# -- the split itself ------------------------------------------------------------------------


def test_holdout_is_seeded_disjoint_and_in_order():
    kept, held_out = holdout(1000, 100)
    assert len(held_out) == 100 and len(kept) == 900
    assert set(kept.tolist()).isdisjoint(held_out.tolist())
    assert sorted(kept.tolist() + held_out.tolist()) == list(range(1000))
    assert torch.equal(kept, kept.sort().values) and torch.equal(held_out, held_out.sort().values)
    again_kept, again_held = holdout(1000, 100)
    assert torch.equal(kept, again_kept) and torch.equal(held_out, again_held)
    assert not torch.equal(held_out, torch.arange(100))  # shuffled, not the first 100
    assert not torch.equal(holdout(1000, 100, seed=1)[1], held_out)


def test_holdout_refuses_to_leave_nothing_to_train_on():
    with pytest.raises(ConfigError, match="data.val_size: holding out 320 of the 320"):
        holdout(320, 320)
    assert len(holdout(320, 0)[1]) == 0


# -- runs from before validation splits ----------------------------------------------------------


def copy_old_cnn_run(tmp_path: Path) -> tuple[Path, Path]:
    """(runs folder, run): a copy of dlx 0.1's CNN run, from before validation splits."""
    root = tmp_path / "runs"
    shutil.copytree(OLD_RUNS / "cnn", root / "cnn")
    (run,) = [path for path in (root / "cnn").iterdir() if path.is_dir()]
    return root, run


@pytest.fixture
def old_cnn_run(tmp_path) -> tuple[Path, Path]:
    return copy_old_cnn_run(tmp_path)


def test_an_old_config_lacks_the_key(old_cnn_run):
    _, run = old_cnn_run
    assert "val_size" not in yaml.safe_load((run / "config.yaml").read_text())["data"]


# -- Transformer ---------------------------------------------------------------------------------


def sequence_config(**values):
    from dlx import config as config_mod
    from dlx.families.transformer.config import SequenceDataConfig

    values.setdefault("train_size", 300)
    values.setdefault("test_size", 100)
    return config_mod.from_dict(SequenceDataConfig, values)


def source_rows(split) -> set[bytes]:
    return {bytes(row.numpy().astype("int64").tobytes()) for row in split.source}


def test_generated_validation_comes_from_a_third_seed_and_changes_nothing_else():
    from dlx.families.transformer.tasks import load_task

    task = load_task(sequence_config(task="reverse", val_size=80))
    without = load_task(sequence_config(task="reverse", val_size=0))
    assert without.validation is None and len(task.validation) == 80
    assert torch.equal(task.train.source, without.train.source) and torch.equal(task.test.source, without.test.source)
    assert source_rows(task.validation).isdisjoint(source_rows(task.train) | source_rows(task.test))
    assert task.max_len == without.max_len  # the model's size does not depend on it


def test_file_validation_comes_off_the_training_file_and_keeps_the_vocabulary(tmp_path):
    from dlx.families.transformer.tasks import load_task

    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"the cat {i}\tle chat {i}\n" for i in range(40)))
    common = {"task": "pairs", "path": str(path), "tokens": "word", "test_fraction": 0.25}
    task = load_task(sequence_config(**common, val_size=1000))
    without = load_task(sequence_config(**common, val_size=0))
    assert (len(task.train), len(task.validation), len(task.test)) == (22, 8, 10)  # at most 25% of the 30
    assert task.vocab.tokens == without.vocab.tokens  # old runs' checkpoints still fit
    assert sorted(task.train.texts + task.validation.texts) == sorted(without.train.texts)
    assert set(task.validation.texts).isdisjoint(task.train.texts)
    assert task.test.texts == without.test.texts


class _Session:
    def __init__(self):
        self.printed = []

    def print(self, *args, **kwargs):
        self.printed.append(" ".join(map(str, args)))


@pytest.mark.parametrize("family", ["cnn", "gan", "transformer"])
def test_only_checkpoints_from_before_splits_turn_the_split_off(family):
    from dlx import registry
    from dlx.resume import keep_old_split

    config_class = registry.config_class(family)
    for position, expected in (({"step": 5}, 0), ({"step": 5, "val_size": 700}, None)):
        config = config_class()
        if family == "gan":
            config.data.dataset = "fashion-mnist"
        default = config.data.val_size
        session = _Session()
        turned_off = keep_old_split(config, {"position": position}, session.print, "as it did")
        assert config.data.val_size == (default if expected is None else expected)
        assert turned_off == (expected is not None) and len(session.printed) == int(turned_off)
