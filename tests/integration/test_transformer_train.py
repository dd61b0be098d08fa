"""dlx train-transformer end to end on tiny generated tasks and files (DESIGN.md contracts)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
import yaml

from tests.cnn_helpers import cli, interrupt_at, meta, same_weights

# A one-layer model on short sequences: a whole run takes a second or two.
TINY = [
    "--d-model", "16", "--heads", "2", "--layers", "1", "--ff", "32", "--batch-size", "32", "--no-progress",
    "--set", "data.train_size=256", "--set", "data.test_size=40", "--set", "data.max_len=6",
    "--set", "optim.warmup_steps=4", "--set", "eval.examples=3",
]


def only_run(runs_root) -> Path:
    runs = [p for p in (Path(runs_root) / "transformer").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def weights(run_dir: Path, which: str = "last") -> dict[str, torch.Tensor]:
    from dlx import checkpoint

    return checkpoint.load(run_dir / "checkpoints" / f"{which}.pt")["model"]


def error_lines(captured: str) -> list[str]:
    return [line for line in captured.splitlines() if line.startswith("dlx: error")]


def test_run_directory_metrics_and_tensorboard_record(runs_dir, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert cli(["train-transformer", *TINY, "--epochs", "2", "--runs-dir", runs_dir, "--pos", "learned",
                "--set", "run.log_every=2"]) == 0
    run = only_run(runs_dir)
    assert meta(run)["status"] == "completed" and meta(run)["family"] == "transformer"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["task"] == "reverse" and saved["model"]["pos"] == "learned"
    result = summary(run)
    assert result["task"] == "reverse" and result["global_step"] == 2 * 256 // 32
    assert 0 <= result["exact_match"] <= result["token_accuracy"] <= 1 and result["test_examples"] == 40
    assert result["bleu"] is None and result["bleu_tokenize"] is None  # BLEU is for text pairs only
    # eval.every null: a tenth of the 16 steps (every step here), epoch ends included: a curve of 10+ points.
    assert [entry[0] for entry in result["history"]] == list(range(1, 17))
    assert (run / "checkpoints" / "best.pt").is_file() and str(run) in capsys.readouterr().out
    events = EventAccumulator(str(run), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    for scalar in ("train/loss", "train/epoch_loss", "train/token_accuracy", "opt/lr", "opt/grad_norm",
                   "perf/tokens_per_s", "val/loss", "val/token_accuracy", "val/exact_match"):
        assert scalar in tags["scalars"], scalar
    for image in ("attention/encoder_self/layer1", "attention/decoder_self/layer1", "attention/cross/layer1",
                  "positional_encoding/matrix"):
        assert image in tags["images"], image
    assert len(events.Images("positional_encoding/matrix")) == 3  # at the start, then each evaluation (learned)
    assert any("eval/examples" in tag for tag in tags["tensors"])


def test_eval_and_translate_use_the_saved_run(runs_dir, capsys):
    assert cli(["train-transformer", *TINY, "--epochs", "1", "--runs-dir", runs_dir, "--task", "copy"]) == 0
    run = only_run(runs_dir)
    capsys.readouterr()
    assert cli(["eval", run, "--checkpoint", "last", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["exact_match"] == pytest.approx(summary(run)["exact_match"])
    assert result["task"] == "copy" and result["step"] == summary(run)["global_step"]
    assert cli(["translate", run, "4 2 1", "--beam", "2"]) == 0
    output = capsys.readouterr().out.strip()
    assert set(output) <= set("0123456789")  # only the task's symbols come out
    assert cli(["translate", run, "4z1"]) == 2
    assert "not in this run's vocabulary" in error_lines(capsys.readouterr().err)[0]


@pytest.mark.parametrize("task, kind", [("repeats", "labeling"), ("majority", "classification")])
def test_encoder_only_tasks(runs_dir, capsys, task, kind):
    assert cli(["train-transformer", *TINY, "--epochs", "1", "--runs-dir", runs_dir, "--task", task]) == 0
    run = only_run(runs_dir)
    assert summary(run)["kind"] == kind and 0 < summary(run)["token_accuracy"] <= 1
    capsys.readouterr()
    assert cli(["translate", run, "1213"]) == 0
    output = capsys.readouterr().out.strip()
    if kind == "labeling":
        assert [pair.split("/")[0] for pair in output.split()] == list("1213")
        assert all(pair.split("/")[1] in ("new", "repeat") for pair in output.split())
    else:
        assert output in ("low", "high", "tie")


def test_pairs_file_learns_with_beam_search_and_reports_bleu(runs_dir, tmp_path, capsys):
    # Word-level "translation": each word maps to a fixed other word. Four words a line at
    # least: standard BLEU needs 4-grams (a corpus of 3-word lines scores 0).
    words = {"one": "un", "two": "deux", "three": "trois", "four": "quatre", "five": "cinq"}
    generator = torch.Generator().manual_seed(0)
    lines = []
    for _ in range(300):
        picks = [list(words)[i] for i in torch.randint(0, 5, (4,), generator=generator).tolist()]
        lines.append(" ".join(picks) + "\t" + " ".join(words[w] for w in picks))
    data = tmp_path / "pairs.tsv"
    data.write_text("\n".join(lines) + "\n")
    assert cli(["train-transformer", "--data", data, "--tokens", "word", "--beam", "3", "--epochs", "12",
                "--d-model", "32", "--heads", "2", "--layers", "1", "--ff", "64", "--batch-size", "16",
                "--lr", "0.005", "--warmup", "20", "--no-progress", "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    result = summary(run)
    assert result["task"] == "pairs" and result["beam"] == 3 and result["test_examples"] == 30
    assert result["bleu"] is not None and result["bleu"] > 50 and result["exact_match"] > 0.5
    assert result["bleu_tokenize"] == "13a"
    capsys.readouterr()
    assert cli(["translate", run, "two five one four"]) == 0
    assert capsys.readouterr().out.strip() == "deux cinq un quatre"


def test_eval_finds_moved_data_files_in_data_dir(runs_dir, tmp_path, capsys):
    conll = tmp_path / "tags.conll"
    conll.write_text("".join(f"the\tDET\n{noun}\tNOUN\nruns\tVERB\n\n" for noun in ["cat", "dog", "sun"] * 10))
    assert cli(["train-transformer", *TINY, "--epochs", "1", "--data", conll, "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    moved = tmp_path / "moved"
    moved.mkdir()
    conll.rename(moved / conll.name)
    capsys.readouterr()
    assert cli(["eval", run, "--json"]) == 2  # the file is gone from where the run read it
    assert cli(["eval", run, "--json", "--data-dir", moved]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["token_accuracy"] == pytest.approx(summary(run)["token_accuracy"])


def test_conll_and_classification_files(runs_dir, tmp_path):
    conll = tmp_path / "tags.conll"
    conll.write_text("".join(f"the\tDET\n{noun}\tNOUN\nruns\tVERB\n\n" for noun in ["cat", "dog", "sun"] * 10))
    assert cli(["train-transformer", *TINY, "--epochs", "1", "--data", conll, "--runs-dir", runs_dir / "a"]) == 0
    assert summary(only_run(runs_dir / "a"))["kind"] == "labeling"
    reviews = tmp_path / "reviews.tsv"
    reviews.write_text("".join(f"so good {i}\tpos\nso bad {i}\tneg\n" for i in range(20)))
    assert cli(["train-transformer", *TINY, "--epochs", "1", "--task", "classify", "--data", reviews,
                "--tokens", "word", "--runs-dir", runs_dir / "b"]) == 0
    assert summary(only_run(runs_dir / "b"))["kind"] == "classification"


# --------------------------------------------------------------------------
# Positional encoding matters where order matters


# Two layers are needed (one layer stalls near 55% exact match); about 16 CPU-seconds per run here.
GAP = ["--d-model", "32", "--heads", "4", "--layers", "2", "--ff", "64", "--batch-size", "64", "--epochs", "2",
       "--lr", "0.003", "--no-progress", "--set", "data.train_size=12000", "--set", "data.test_size=200",
       "--set", "data.min_len=4", "--set", "data.max_len=6", "--set", "data.vocab_size=8",
       "--set", "optim.warmup_steps=30"]


# One run a test: the three took 49 CPU-seconds together, near the minute one test may take.
@pytest.mark.parametrize("pos", ["sinusoidal", "learned", "none"])
def test_reverse_needs_positions(runs_dir, pos):
    assert cli(["train-transformer", *GAP, "--pos", pos, "--runs-dir", runs_dir]) == 0
    exact = summary(only_run(runs_dir))["exact_match"]
    if pos == "none":
        assert exact <= 0.1, exact  # without positions the source is a bag of symbols
    else:
        assert exact >= 0.9, exact


# --------------------------------------------------------------------------
# Resume and clear errors


def test_interrupted_then_resumed_run_is_bit_exact(runs_dir, monkeypatch):
    flags = [*TINY, "--epochs", "2", "--dropout", "0.2", "--set", "eval.every=5"]
    assert cli(["train-transformer", *flags, "--runs-dir", runs_dir / "straight"]) == 0
    # open_run's call, 8 steps per epoch, one more at the end of epoch 1: stop at step 12
    interrupt_at(monkeypatch, 14, signum=signal.SIGINT)
    assert cli(["train-transformer", *flags, "--runs-dir", runs_dir / "split"]) == 128 + 2
    run = only_run(runs_dir / "split")
    assert meta(run)["status"] == "interrupted"
    from dlx import checkpoint

    assert checkpoint.load(run / "checkpoints" / "last.pt")["step"] == 12
    monkeypatch.undo()
    assert cli(["train-transformer", "--resume", run, "--no-progress"]) == 0
    assert meta(run)["status"] == "completed" and len(meta(run)["resumed_at"]) == 1
    straight = only_run(runs_dir / "straight")
    assert same_weights(weights(straight), weights(run))
    assert [h[2] for h in summary(run)["history"]] == [h[2] for h in summary(straight)["history"]]


def test_clear_errors_leave_no_run_directory(runs_dir, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("hello\tworld\nno tab on this line\n")
    assert cli(["train-transformer", *TINY, "--data", bad, "--runs-dir", runs_dir]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "bad.tsv line 2: expected source<TAB>target" in lines[0]
    assert cli(["train-transformer", *TINY, "--set", "model.dmodel=8", "--runs-dir", runs_dir]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "model.dmodel: unknown key (did you mean 'd_model'?)" in lines[0]
    assert cli(["train-transformer", *TINY, "--heads", "3", "--runs-dir", runs_dir]) == 2
    assert "model.heads: 3 does not divide d_model 16" in error_lines(capsys.readouterr().err)[0]
    assert cli(["train-transformer", "--task", "pairs", "--runs-dir", runs_dir]) == 2
    assert "give --data FILE" in error_lines(capsys.readouterr().err)[0]
    assert not (runs_dir / "transformer").exists() or not any((runs_dir / "transformer").iterdir())


def test_resume_refuses_a_cnn_run_and_exactness_breaking_changes(runs_dir, tmp_path, capsys):
    fake = tmp_path / "cnn-run"
    (fake / "checkpoints").mkdir(parents=True)
    (fake / "meta.json").write_text(json.dumps({"family": "cnn", "status": "interrupted"}))
    assert cli(["train-transformer", "--resume", fake]) == 2
    assert "is a 'cnn' run, not a 'transformer' run" in error_lines(capsys.readouterr().err)[0]
    assert cli(["train-transformer", *TINY, "--epochs", "1", "--runs-dir", runs_dir]) == 0
    run = only_run(runs_dir)
    before = (run / "meta.json").read_text()
    capsys.readouterr()
    assert cli(["train-transformer", "--resume", run, "--pos", "none"]) == 2
    assert "model.pos: cannot change when resuming" in error_lines(capsys.readouterr().err)[0]
    assert (run / "meta.json").read_text() == before
    assert cli(["translate", tmp_path, "123"]) == 2
    assert "not a dlx run directory" in error_lines(capsys.readouterr().err)[0]
