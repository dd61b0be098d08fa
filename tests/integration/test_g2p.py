"""G2P end to end on a slice of the real lexicon: train, eval, translate, and an exact resume."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.cnn_helpers import cli, interrupt_at, meta, same_weights

TINY = ["--task", "g2p", "--d-model", "32", "--heads", "2", "--layers", "1", "--ff", "64", "--batch-size", "64",
        "--epochs", "2", "--lr", "0.005", "--warmup", "10", "--limit-train", "2000", "--no-progress",
        "--set", "data.limit_test=200", "--set", "eval.beam=3"]


def only_run(root: Path) -> Path:
    runs = [p for p in (root / "transformer").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]



def test_train_eval_translate(runs_dir, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert cli(["train-transformer", *TINY, "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    result = json.loads((run / "summary.json").read_text())
    assert result["task"] == "g2p" and result["test_examples"] == 200 and result["validation_examples"] == 200
    assert 0 <= result["test_wer"] <= 1 and 0 <= result["test_wer_beam"] <= 1
    assert result["test_per"] >= 0 and result["test_per_beam"] >= 0  # PER can pass 1: insertions count
    assert result["exact_match"] == pytest.approx(1 - result["test_wer"]) and result["beam"] == 3
    # eval.every null: every tenth of the run and each epoch's end (2000 examples / 64 = 32 steps an epoch).
    assert [entry[0] for entry in result["history"]] == [*range(6, 31, 6), 32, *range(36, 61, 6), 64]
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    for tag in ("val/wer", "val/per", "val/exact_match", "hparam/test_wer", "hparam/test_wer_beam", "hparam/test_per"):
        assert tag in events.Tags()["scalars"], tag
    # The test numbers, measured once, are HParams metrics only: no one-point test/* charts.
    assert not [tag for tag in events.Tags()["scalars"] if tag.startswith("test/")]
    assert events.Scalars("hparam/test_wer_beam")[-1].value == pytest.approx(result["test_wer_beam"])
    capsys.readouterr()

    assert cli(["eval", run, "--checkpoint", "last", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test_wer"] == pytest.approx(result["test_wer"])
    assert evaluated["test_per_beam"] == pytest.approx(result["test_per_beam"])

    phonemes = set(TASK_PHONEMES)
    # This tiny run's validation exact match can stay 0 at every evaluation, so best.pt may be its first
    # (step 6), which emits nothing yet: the last weights spell.
    assert cli(["translate", run, "Pneumonia", "--checkpoint", "last"]) == 0
    output = capsys.readouterr().out.split()
    assert output and set(output) <= phonemes
    assert cli(["translate", run, "pneumonia", "--nbest", "3", "--beam", "3", "--checkpoint", "last"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    scores = [float(line.split()[0]) for line in lines]
    assert len(lines) == 3 and scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores)
    assert all(set(line.split()[1:]) <= phonemes for line in lines)
    assert cli(["translate", run, "dr. who"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "'.' are not in this run's alphabet" in error[0]
    assert cli(["translate", run, "cat", "--nbest", "4", "--beam", "2"]) == 2


TASK_PHONEMES = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V "
                 "W Y Z ZH").split()


def test_interrupted_bucketed_run_resumes_bit_exact(runs_dir, monkeypatch):
    flags = [*TINY, "--set", "eval.every=20", "--dropout", "0.1"]
    assert cli(["train-transformer", *flags, "--runs-dir", runs_dir / "straight"]) == 0
    interrupt_at(monkeypatch, 25, signum=signal.SIGINT)  # 32 steps per epoch: stop in the first, after a checkpoint
    assert cli(["train-transformer", *flags, "--runs-dir", runs_dir / "split"]) == 128 + 2
    run = only_run(runs_dir / "split")
    assert meta(run)["status"] == "interrupted"
    monkeypatch.undo()
    assert cli(["train-transformer", "--resume", run, "--no-progress"]) == 0
    straight = only_run(runs_dir / "straight")
    from dlx import checkpoint

    assert same_weights(checkpoint.load(straight / "checkpoints" / "last.pt")["model"],
                        checkpoint.load(run / "checkpoints" / "last.pt")["model"])
    summaries = [json.loads((r / "summary.json").read_text()) for r in (straight, run)]
    assert summaries[0]["test_wer"] == summaries[1]["test_wer"]
