"""dlx/families/transformer/frames.py and ``--task frames``: long sequences, local labels, banded attention."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from dlx import config as config_mod
from dlx import recipes
from dlx.families.transformer import frames
from dlx.families.transformer.config import SequenceDataConfig, TransformerConfig
from dlx.families.transformer.frames import (
    class_count,
    generate_frames,
    load_frames_task,
    symbol_log_likelihoods,
    window_vote,
)
from dlx.families.transformer.tasks import IGNORE, PAD, SPECIALS
from tests.cnn_helpers import cli
from tests.paths import ROOT


def data_config(**values) -> SequenceDataConfig:
    values = {"task": "frames", "vocab_size": 16, "min_len": 300, "max_len": 600, "train_size": 40,
              "test_size": 8, "val_size": 4, **values}
    return config_mod.from_dict(SequenceDataConfig, values)


def label_runs(target_row: torch.Tensor) -> list[int]:
    """Lengths of the maximal runs of equal labels in one row (padding dropped)."""
    labels = target_row[target_row != IGNORE]
    change = torch.ones(len(labels), dtype=torch.bool)
    change[1:] = labels[1:] != labels[:-1]
    starts = torch.nonzero(change).flatten().tolist() + [len(labels)]
    return [end - start for start, end in zip(starts, starts[1:])]


# --------------------------------------------------------------------------
# The generator


def test_same_seed_same_data_other_seed_other_data():
    config = data_config()
    first, again = generate_frames(config, 40, 7), generate_frames(config, 40, 7)
    assert torch.equal(first.source, again.source) and torch.equal(first.target, again.target)
    other = generate_frames(config, 40, 8)
    assert not torch.equal(first.source, other.source)
    task = load_frames_task(config)
    assert torch.equal(task.train.source, generate_frames(config, 40, config.seed).source)
    # Test and validation come from their own seeds: none of their sequences is a training one.
    assert not torch.equal(task.test.source[:4], task.train.source[:4])
    assert not torch.equal(task.validation.source, task.test.source[:4])


def test_shapes_lengths_padding_and_alphabet():
    config = data_config()
    task = load_frames_task(config)
    split = task.train
    assert task.kind == "labeling" and task.labels == list("ABCDEFGH") and split.source.shape == (40, 600)
    assert int(split.source_lengths.min()) >= 300 and int(split.source_lengths.max()) <= 600
    for source, target, length in zip(split.source, split.target, split.source_lengths):
        length = int(length)
        assert (source[length:] == PAD).all() and (target[length:] == IGNORE).all()
        assert (source[:length] >= len(SPECIALS)).all() and (source[:length] < len(SPECIALS) + 16).all()
        assert (target[:length] >= 0).all() and (target[:length] < class_count(16)).all()


def test_a_label_is_shared_by_one_segment_of_at_most_longest_frames():
    """Each segment differs from the one before, so runs of equal labels are the segments; every
    one is within data.segment (the last one may be cut by the sequence's end). A frame's segment,
    all that decides its label, therefore lies within longest - 1 frames of it."""
    config = data_config(segment=[3, 9])
    split = generate_frames(config, 30, 0)
    lengths = []
    for row in split.target:
        runs = label_runs(row)
        assert all(3 <= run <= 9 for run in runs[:-1]) and 1 <= runs[-1] <= 9
        lengths += runs[:-1]
    assert min(lengths) == 3 and max(lengths) == 9  # the whole range is used


def test_one_frame_is_ambiguous_its_neighbourhood_is_not():
    """The symbol of a frame follows the emission table; votes of nearby frames beat one frame by far."""
    config = data_config(noise=0.5, train_size=60)
    split = load_frames_task(config).train
    real = split.target != IGNORE
    table = symbol_log_likelihoods(16, 0.5).exp()
    symbols, classes = split.source[real] - len(SPECIALS), split.target[real]
    for c in range(class_count(16)):  # observed emission frequencies match the table
        observed = torch.bincount(symbols[classes == c], minlength=16).double()
        assert torch.allclose(observed / observed.sum(), table[c], atol=0.02)

    def accuracy(radius: int) -> float:
        predicted = window_vote(split.source, 16, 0.5, radius)
        return float((predicted[real] == split.target[real]).double().mean())

    single, local = accuracy(0), accuracy(8)
    assert single == pytest.approx(0.5 + 0.5 * 2 / 16, abs=0.02)  # own symbols, or noise that hits them
    assert local > 0.85 and local > single + 0.25
    oracle = frames.boundary_oracle(split.source, split.target, 16, 0.5)  # the whole segment, boundaries known
    assert float((oracle[real] == split.target[real]).double().mean()) > max(0.97, local + 0.05)


def test_the_window_vote_reads_nothing_beyond_its_radius():
    config = data_config()
    source = generate_frames(config, 2, 0).source
    changed = source.clone()
    changed[:, 200:] = torch.randint(len(SPECIALS), len(SPECIALS) + 16, changed[:, 200:].shape)
    before, after = window_vote(source, 16, 0.5, 10), window_vote(changed, 16, 0.5, 10)
    assert torch.equal(before[:, :190], after[:, :190])
    assert not torch.equal(before[:, 190:400], after[:, 190:400])


# --------------------------------------------------------------------------
# The model: windowed attention on these lengths runs banded and sees only its receptive field


def test_a_windowed_model_on_frames_runs_banded_and_sees_layers_times_window(monkeypatch):
    from dlx.models import attention
    from dlx.models.transformer import build_model

    calls = []
    banded = attention.banded_attention
    monkeypatch.setattr(attention, "banded_attention", lambda *a, **k: calls.append(1) or banded(*a, **k))
    sizes = SimpleNamespace(d_model=16, heads=2, layers=2, ff=32, dropout=0.0, norm="pre", pos="sinusoidal",
                            score="dot", window=6, activation="relu")
    torch.manual_seed(0)
    model = build_model(sizes, "labeling", 20, 8, 600).eval()
    source = generate_frames(data_config(), 2, 0).source[:, :400]
    changed = source.clone()
    changed[:, 250:] = torch.where(changed[:, 250:] == PAD, PAD, (changed[:, 250:] - 3) % 16 + 4)
    with torch.no_grad():
        before, after = model(source), model(changed)
    assert len(calls) == 4  # both layers, both forward passes
    reach = sizes.layers * sizes.window  # each layer widens what a frame sees by one window
    assert torch.allclose(before[:, :250 - reach], after[:, :250 - reach], atol=1e-6)
    assert not torch.allclose(before[:, 250 - reach:250], after[:, 250 - reach:250], atol=1e-4)


# --------------------------------------------------------------------------
# The recipe, the experiments file, the bounds


def test_the_plain_command_gets_the_recipe_with_a_window():
    config = config_mod.build(TransformerConfig, flags={"data.task": "frames"})
    recipe = recipes.load(TransformerConfig, "frames")
    assert config.model.window == recipe["model"]["window"] > 0
    assert config.data.max_len == recipe["data"]["max_len"] >= 2000
    assert "data.segment" not in config.unused_keys() and "data.noise" not in config.unused_keys()
    plain = config_mod.build(TransformerConfig)
    assert {"data.segment", "data.noise"} <= plain.unused_keys() and plain.model.window == 0


def test_the_experiments_file_spells_out_the_plain_recipe():
    from_file = config_mod.build(TransformerConfig, ROOT / "experiments" / "transformer" / "frames.yaml")
    plain = config_mod.build(TransformerConfig, flags={"data.task": "frames"})
    assert config_mod.to_dict(from_file) == config_mod.to_dict(plain)


@pytest.mark.parametrize("setting, words", [
    ("data.segment=[0,5]", "data.segment"),
    ("data.segment=[9,5]", "data.segment"),
    ("data.vocab_size=3", "data.vocab_size"),
    ("data.noise=1.0", "data.noise"),
    ("data.train_size=100000", "at most 33,554,432"),
])
def test_bad_frames_settings_are_one_line(setting, words, runs_dir, capsys):
    assert cli(["train-transformer", "--task", "frames", "--set", setting, "--runs-dir", runs_dir]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dlx: error") and words in lines[0], err
    assert "Traceback" not in err and not any(runs_dir.iterdir())


# --------------------------------------------------------------------------
# End to end


def test_long_sequences_are_evaluated_in_small_batches():
    from dlx.families.transformer.evaluate import EVAL_BATCH, eval_batch_size

    assert eval_batch_size(12) == EVAL_BATCH  # the short tasks keep their batches
    assert eval_batch_size(4096) * 4096 <= 32_768 and eval_batch_size(100_000) == 1
