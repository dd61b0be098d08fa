"""Numbers computed from predictions: accuracy, confusion matrices, …

Family-specific metrics (Fréchet distance, mode coverage, BLEU) live here
too, so every trainer and ``dlx eval`` computes them the same way.
"""

from __future__ import annotations

import torch


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``matrix[true, predicted]`` counts (int64), computed with one bincount."""
    flat = labels.long() * num_classes + predictions.long()
    counts = torch.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def accuracy_from_confusion(matrix: torch.Tensor) -> float:
    total = int(matrix.sum())
    return float(matrix.diagonal().sum()) / total if total else 0.0


def per_class_accuracy(matrix: torch.Tensor) -> list[float]:
    """Recall of each class (row-normalised diagonal); 0 for empty rows."""
    rows = matrix.sum(dim=1).clamp(min=1)
    return (matrix.diagonal().double() / rows.double()).tolist()


# --------------------------------------------------------------------------
# Sequences (Transformer family): token and exact-match accuracy, BLEU


def token_accuracy_counts(predictions: torch.Tensor, targets: torch.Tensor,
                          ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct, counted) tokens, skipping target positions equal to ``ignore_index``.

    Returned as tensors so that a training loop can sum them without a device sync.
    """
    counted = targets != ignore_index
    correct = (predictions == targets) & counted
    return correct.sum(), counted.sum()


def exact_match_count(predictions: torch.Tensor, targets: torch.Tensor, end_id: int,
                      pad_id: int = 0) -> torch.Tensor:
    """How many rows of ``predictions`` equal ``targets`` up to and including the first ``end_id``.

    Both are ``N × L`` id tensors (any widths); everything after a row's
    first ``end_id`` is ignored, so trailing junk after EOS does not count.
    """
    width = max(predictions.shape[1], targets.shape[1])
    cut_predictions = _cut_after(predictions, end_id, pad_id, width)
    return (cut_predictions == _cut_after(targets, end_id, pad_id, width)).all(1).sum()


def _cut_after(ids: torch.Tensor, end_id: int, pad_id: int, width: int) -> torch.Tensor:
    ids = torch.nn.functional.pad(ids, (0, width - ids.shape[1]), value=pad_id)
    ended = (ids == end_id).long().cumsum(1)
    after_end = (ended - (ids == end_id).long()) > 0  # strictly after the first end_id
    return ids.masked_fill(after_end, pad_id)


def bleu(hypotheses: list[str], references: list[str], tokenize: str = "13a") -> float:
    """Corpus BLEU (0-100) of detokenised text, exactly ``sacrebleu.corpus_bleu``'s number.

    One reference per hypothesis. Standard BLEU: n-grams up to 4, no
    effective order (a corpus without 4-gram matches scores 0), sacrebleu's
    default ``exp`` smoothing, and its ``tokenize`` tokenizer (``13a``, as
    published scores use). ``force`` only silences sacrebleu's "looks
    tokenised" warning: dlx scores the text as the data file wrote it.
    """
    from sacrebleu.metrics import BLEU

    if not hypotheses:
        return 0.0
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    scorer = BLEU(tokenize=tokenize, force=True)
    return float(scorer.corpus_score(hypotheses, [references]).score)


# --------------------------------------------------------------------------
# Grapheme-to-phoneme: word and phoneme error rates against several references


def edit_distance(hypothesis, reference) -> int:
    """Levenshtein distance between two token sequences (unit-cost substitution, insertion, deletion)."""
    hypothesis, reference = list(hypothesis), list(reference)
    previous = list(range(len(reference) + 1))
    for i, token in enumerate(hypothesis, 1):
        current = [i]
        for j, wanted in enumerate(reference, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (token != wanted)))
        previous = current
    return previous[-1]


def closest_reference(hypothesis, references) -> tuple[int, int]:
    """(edit distance, length) of the reference closest to ``hypothesis``.

    Ties go to the earliest reference (the dictionary lists its main
    pronunciation first).
    """
    hypothesis = list(hypothesis)
    best = None
    for reference in references:
        distance = edit_distance(hypothesis, reference)
        if best is None or distance < best[0]:
            best = (distance, len(reference))
    if best is None:
        raise ValueError("a word needs at least one reference pronunciation")
    return best


def g2p_error_counts(hypotheses, references) -> tuple[int, int, int, int]:
    """(wrong words, words, phoneme edits, reference phonemes) of a list of outputs.

    ``hypotheses[i]`` is one output (a phoneme sequence); ``references[i]``
    every correct pronunciation of that word. A word is wrong unless its
    output equals one of them. Its phoneme edits are the edit distance to
    the closest reference, counted against that reference's length.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} outputs but {len(references)} reference lists")
    wrong = edits = phonemes = 0
    for hypothesis, word_references in zip(hypotheses, references):
        distance, length = closest_reference(hypothesis, word_references)
        wrong += distance > 0
        edits += distance
        phonemes += length
    return wrong, len(hypotheses), edits, phonemes


def g2p_error_rates(hypotheses, references) -> dict[str, float]:
    """Word error rate and phoneme error rate (both in [0, 1]) over a list of words.

    WER = wrong words / words. PER = Σ edit distances to each word's
    closest reference / Σ those references' lengths: one corpus-level ratio
    (a long word weighs more than a short one), not a mean of per-word
    ratios. An output equal to any reference has distance 0, so PER counts
    no error where WER counts none.
    """
    wrong, words, edits, phonemes = g2p_error_counts(hypotheses, references)
    return {"wer": wrong / max(words, 1), "per": edits / max(phonemes, 1)}


# --------------------------------------------------------------------------
# GANs (issue 5): Fréchet distance, mode coverage, class histograms


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) covariance of N×D features, in float64."""
    features = features.detach().double().cpu()
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"need an N×D feature matrix with N >= 2, got shape {tuple(features.shape)}")
    mean = features.mean(dim=0)
    centred = features - mean
    return mean, centred.T @ centred / (features.shape[0] - 1)


def sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (via ``eigh``).

    Eigenvalues that round-off pushed slightly below zero are clamped to 0.
    """
    matrix = matrix.double()
    symmetric = (matrix + matrix.T) / 2
    eigenvalues, eigenvectors = torch.linalg.eigh(symmetric)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


def frechet_distance(mean1: torch.Tensor, cov1: torch.Tensor, mean2: torch.Tensor, cov2: torch.Tensor) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mean1, cov1) and N(mean2, cov2).

    ``|m1 - m2|² + Tr(C1 + C2 - 2 (C1 C2)^½)``. ``C1 C2`` is not symmetric,
    but it is similar to ``C1^½ C2 C1^½``, which is symmetric PSD, so the
    trace of its square root is the sum of the square roots of that matrix's
    eigenvalues — stable with ``eigh`` alone (no scipy).
    """
    mean1, mean2, cov1, cov2 = (t.detach().double().cpu() for t in (mean1, mean2, cov1, cov2))
    root1 = sqrtm_psd(cov1)
    middle = root1 @ cov2 @ root1
    middle = (middle + middle.T) / 2
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    distance = (mean1 - mean2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * trace_sqrt
    return max(float(distance), 0.0)


def frechet_distance_features(features1: torch.Tensor, features2: torch.Tensor) -> float:
    """Fréchet distance between the gaussians fitted to two feature sets."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def mode_coverage(samples: torch.Tensor, means: torch.Tensor, std: float, sigmas: float = 3.0) -> dict:
    """Modes captured and high-quality fraction of 2-D samples (VEEGAN / PacGAN).

    A sample is *high quality* when it lies within ``sigmas`` standard
    deviations of its nearest mode; a mode is *captured* when it is the
    nearest mode of at least one high-quality sample. Also returns how many
    high-quality samples each mode got.
    """
    samples = samples.detach().float().cpu()
    distances = torch.cdist(samples, means.float().cpu())
    nearest_distance, nearest = distances.min(dim=1)
    high_quality = nearest_distance <= sigmas * std
    per_mode = torch.bincount(nearest[high_quality], minlength=means.shape[0])
    return {
        "modes_captured": int((per_mode > 0).sum()),
        "high_quality": float(high_quality.float().mean()) if len(samples) else 0.0,
        "per_mode": per_mode.tolist(),
    }


def class_histogram(predictions: torch.Tensor, num_classes: int) -> list[float]:
    """Fraction of ``predictions`` in each class (sums to 1; zeros when empty)."""
    counts = torch.bincount(predictions.long().flatten().cpu(), minlength=num_classes).double()
    return (counts / counts.sum().clamp(min=1)).tolist()


def normalized_entropy(fractions: list[float]) -> float:
    """Entropy of a histogram divided by log(classes): 1 is uniform, 0 is one class."""
    import math

    if len(fractions) < 2:
        return 1.0
    entropy = -sum(p * math.log(p) for p in fractions if p > 0)
    return max(entropy / math.log(len(fractions)), 0.0) + 0.0  # + 0.0: never -0.0 (max(-0.0, 0.0) is -0.0)
