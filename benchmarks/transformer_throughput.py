"""Training throughput: dlx's Transformer vs ``torch.nn.Transformer`` of the same sizes.

Both models get the same embeddings, sinusoidal positions, output layer,
masks (source padding, causal decoder), batches, loss and optimizer; only
the encoder-decoder core differs. Blocks of training steps alternate
between the two, several times, and the median tokens/s of each is
reported, so that load from other processes hits both alike. Prints one
JSON object; ``ratio`` = dlx / torch (>= 1.0: dlx is at least as fast).

    python benchmarks/transformer_throughput.py                # dlx's default reverse-task sizes
    python benchmarks/transformer_throughput.py --size medium  # d_model 256, 4 layers, length 32
    python benchmarks/transformer_throughput.py --size g2p     # g2p's recipe on real CMUdict batches

``--size g2p`` takes the model sizes and batch size from ``--task g2p``'s
recipe and real training batches of the CMU Pronouncing Dictionary, bucketed
by length as the trainer makes them (needs the cmudict package).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings

import torch
import torch.nn.functional as F
from cpuinfo import cpu_info  # benchmarks/cpuinfo.py (this folder is on sys.path)
from torch import nn

from dlx.models.transformer import Seq2SeqTransformer, SinusoidalEncoding

SIZES = {
    # dlx train-transformer's defaults on the reverse task
    "small": dict(d_model=64, heads=4, layers=2, ff=128, vocab=14, min_len=3, max_len=10, batch=128),
    "medium": dict(d_model=256, heads=8, layers=4, ff=1024, vocab=1000, min_len=16, max_len=32, batch=64),
}


def g2p_size() -> dict:
    """``--task g2p``'s model and batch sizes (its recipe over the family's defaults)."""
    from dlx import recipes
    from dlx.families.transformer.config import TransformerConfig

    model, recipe = TransformerConfig().model, recipes.load(TransformerConfig, "g2p")
    sizes = {key: recipe["model"].get(key, getattr(model, key))
             for key in ("d_model", "heads", "layers", "ff", "dropout")}
    return dict(**sizes, batch=recipe["optim"].get("batch_size", TransformerConfig().optim.batch_size))


def g2p_batches(size: dict, count: int) -> tuple[list, int, int]:
    """(the first ``count`` bucketed training batches of g2p as the trainer makes them, vocabulary, max length)."""
    from dlx.families.transformer.config import SequenceDataConfig
    from dlx.families.transformer.data import epoch_order, make_batch
    from dlx.families.transformer.tasks import load_task

    task = load_task(SequenceDataConfig(task="g2p"))
    order = epoch_order(task.train, 0, 0, 0, 1, len(task.train), size["batch"], bucket=True)
    batches = []
    for indices in order.split(size["batch"])[:count]:
        batch = make_batch(task.train, task.kind, indices, indices)
        batches.append((batch.source, batch.target_in, batch.target, batch.tokens))
    return batches, len(task.vocab), task.max_len


class TorchTransformer(nn.Module):
    """``nn.Transformer`` (pre-norm, batch-first) wrapped exactly like dlx's model."""

    def __init__(self, vocab: int, d_model: int, heads: int, layers: int, ff: int, max_len: int,
                 dropout: float):
        super().__init__()
        self.source_embedding = nn.Embedding(vocab, d_model, padding_idx=0)
        self.target_embedding = nn.Embedding(vocab, d_model, padding_idx=0)
        self.position = SinusoidalEncoding(max_len, d_model)
        self.scale = d_model ** 0.5
        self.core = nn.Transformer(d_model, heads, layers, layers, ff, dropout, batch_first=True, norm_first=True)
        self.output = nn.Linear(d_model, vocab)
        self.dropout = nn.Dropout(dropout)

    def embed(self, embedding: nn.Embedding, tokens: torch.Tensor) -> torch.Tensor:
        return self.dropout(embedding(tokens) * self.scale + self.position(tokens.shape[1]))

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        padding = source == 0
        causal = nn.Transformer.generate_square_subsequent_mask(target_in.shape[1])
        x = self.core(self.embed(self.source_embedding, source), self.embed(self.target_embedding, target_in),
                      tgt_mask=causal, src_key_padding_mask=padding, memory_key_padding_mask=padding,
                      tgt_is_causal=True)
        return self.output(x)


def make_batches(size: dict, count: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]:
    """Random variable-length (source, target_in, target_out, real tokens) batches, padded with 0."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        lengths = torch.randint(size["min_len"], size["max_len"] + 1, (size["batch"],), generator=gen)
        width = int(lengths.max())
        real = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)
        source = torch.where(real, torch.randint(4, size["vocab"], (size["batch"], width), generator=gen), 0)
        # A copy task: BOS + source in, source + end out (the decoder's length is the source's + 1).
        target_in = torch.cat([torch.ones(size["batch"], 1, dtype=torch.long), source], dim=1)
        target_out = torch.cat([source, torch.zeros(size["batch"], 1, dtype=torch.long)], dim=1)
        batches.append((source, target_in, target_out, int(2 * lengths.sum() + size["batch"])))
    return batches


def train_block(model, optimizer, batches) -> float:
    """Train on every batch once; returns real tokens per second."""
    tokens = 0
    start = time.perf_counter()
    for source, target_in, target_out, real_tokens in batches:
        scores = model(source, target_in)
        loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), target_out.reshape(-1), ignore_index=0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        tokens += real_tokens
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES) + ["g2p"], default="small")
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed block")
    parser.add_argument("--repeats", type=int, default=7, help="timed blocks per model (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: least noise on a shared box)")
    parser.add_argument("--dropout", type=float, default=None, help="default: g2p's recipe, else 0")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # nn.Transformer warns that pre-norm layers cannot use its nested-tensor inference path (not used here).
    warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
    if args.size == "g2p":
        size = g2p_size()
        args.dropout = size.pop("dropout") if args.dropout is None else args.dropout
        batches, size["vocab"], max_len = g2p_batches(size, args.steps)
    else:
        size = SIZES[args.size]
        max_len = size["max_len"] + 1
        batches = make_batches(size, args.steps)
    args.dropout = args.dropout or 0.0
    torch.manual_seed(0)
    dlx_model = Seq2SeqTransformer(size["vocab"], size["d_model"], size["heads"], size["layers"], size["ff"],
                                   args.dropout, norm="pre", max_len=max_len)
    torch_model = TorchTransformer(size["vocab"], size["d_model"], size["heads"], size["layers"], size["ff"],
                                   max_len, args.dropout)
    models = {"dlx": dlx_model, "torch": torch_model}
    optimizers = {name: torch.optim.Adam(model.parameters(), 1e-3) for name, model in models.items()}
    for name, model in models.items():  # warm up allocators and kernels
        model.train()
        train_block(model, optimizers[name], batches[: max(3, args.steps // 4)])
    rates: dict[str, list[float]] = {name: [] for name in models}
    for repeat in range(args.repeats):
        order = list(models) if repeat % 2 == 0 else list(reversed(models))  # alternate who goes first
        for name in order:
            rates[name].append(train_block(models[name], optimizers[name], batches))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(json.dumps({
        "cpu": cpu_info(),  # benchmarks/cpuinfo.py: which CPU these numbers are from
        "benchmark": "transformer_throughput",
        "size": args.size,
        **{key: value for key, value in size.items()},
        "dropout": args.dropout,
        "parameters": {name: sum(p.numel() for p in model.parameters()) for name, model in models.items()},
        "steps_per_block": args.steps,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "device": f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "dlx_tokens_per_s": round(medians["dlx"], 1),
        "torch_tokens_per_s": round(medians["torch"], 1),
        "ratio": round(medians["dlx"] / medians["torch"], 3),
        "all_tokens_per_s": {name: [round(v) for v in values] for name, values in rates.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
