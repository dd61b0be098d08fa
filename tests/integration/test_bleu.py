"""BLEU end to end: a run's summary and dlx eval report sacreBLEU of the decoded outputs."""

from __future__ import annotations

import json

from dlx import metrics
from tests.cnn_helpers import cli
from tests.unit.families.transformer.test_bleu import SENTENCES, sacre, write_copy_pairs

# A tiny word-level model: a run takes a few seconds.
TINY_PAIRS = ["--tokens", "word", "--d-model", "32", "--heads", "2", "--layers", "1", "--ff", "64",
              "--batch-size", "16", "--lr", "0.005", "--warmup", "20", "--no-progress"]



def test_train_and_eval_report_sacrebleu_of_the_decoded_outputs(runs_dir, tmp_path, monkeypatch, capsys):
    from dlx.families.transformer import evaluate

    train = write_copy_pairs(tmp_path / "pairs.tsv", SENTENCES[:400])
    test_sentences = SENTENCES[400:440]
    test = write_copy_pairs(tmp_path / "held-out.tsv", test_sentences)
    calls = []
    real_bleu = metrics.bleu

    def recording_bleu(hypotheses, references, tokenize="13a"):
        calls.append((list(hypotheses), list(references), tokenize))
        return real_bleu(hypotheses, references, tokenize)

    monkeypatch.setattr(metrics, "bleu", recording_bleu)
    assert cli(["train-transformer", "--data", train, "--set", f"data.test_path={test}", *TINY_PAIRS,
                "--epochs", "3", "--runs-dir", runs_dir]) == 0
    (run,) = (runs_dir / "transformer").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    hypotheses, references, tokenize = calls[-1]  # the final evaluation's
    assert references == test_sentences and tokenize == "13a" == summary["bleu_tokenize"]
    assert summary["bleu"] == sacre(hypotheses, test_sentences)
    assert summary["bleu"] > 0
    # The hypotheses are the model's own outputs: `dlx translate` decodes the same text, except
    # where evaluation stopped a few tokens past the reference length (then it is a prefix).
    for source, hypothesis in zip(test_sentences, hypotheses, strict=True):
        full = evaluate.translate(run, source, which="last")
        assert full == hypothesis or full.startswith(hypothesis + " "), (hypothesis, full)
    # dlx eval of the saved run reports the same corrected number.
    capsys.readouterr()
    assert cli(["eval", run, "--checkpoint", "last", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bleu"] == summary["bleu"] and result["bleu_tokenize"] == "13a"
    assert calls[-1][0] == hypotheses
