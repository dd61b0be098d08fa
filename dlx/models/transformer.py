"""The Transformer (Vaswani et al., 2017), written out to be read.

The encoder-decoder as the paper's figure draws it::

    source tokens → embedding + positional encoding
        → N × [ self-attention → Add & Norm → feed-forward → Add & Norm ]   = memory
    target tokens (shifted right) → embedding + positional encoding
        → N × [ masked self-attention → Add & Norm
                → cross-attention to the memory → Add & Norm
                → feed-forward → Add & Norm ]
        → linear → scores over the vocabulary

``norm="post"`` is the paper's order (``LayerNorm(x + sublayer(x))``);
``norm="pre"`` (``x + sublayer(LayerNorm(x))``, plus one final LayerNorm)
trains more stably without warmup and is the default.

Encoder-only models share the same blocks: ``EncoderClassifier`` gives one
label per token (sequence labeling) or, with mean pooling, one per
sequence (classification). The vision transformer (``dlx/families/cnn/vit.py``)
reuses ``Encoder`` over image patches.

Every constructor takes plain numbers (no config objects), so other tools
can build the pieces directly; ``build_model`` maps a config onto them.
Token id 0 is padding everywhere.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlx.errors import ShapeError
from dlx.models.attention import MultiHeadAttention, WindowMask, attention_mask

PAD_ID = 0
ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


# --------------------------------------------------------------------------
# Positional encodings: (length) -> length × d_model, added to the embeddings


class SinusoidalEncoding(nn.Module):
    """Hand-crafted: ``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(…)``.

    Every position gets a unique pattern, and ``PE[p + k]`` is a linear
    function of ``PE[p]``, so attention can pick out relative offsets.
    """

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = max_len
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
        self.register_buffer("table", table, persistent=False)  # recomputed, never checkpointed

    def forward(self, length: int) -> torch.Tensor:
        return self.table[:length]


class LearnedEncoding(nn.Module):
    """Learned from data: one trainable vector per position (as in BERT, GPT)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = max_len
        self.table = nn.Parameter(torch.randn(max_len, d_model) * 0.1)

    def forward(self, length: int) -> torch.Tensor:
        return self.table[:length]


class NoEncoding(nn.Module):
    """No positions at all: self-attention then sees a *set* of tokens."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = max_len

    def forward(self, length: int) -> None:
        return None


POSITIONAL_ENCODINGS: dict[str, type[nn.Module]] = {
    "sinusoidal": SinusoidalEncoding, "learned": LearnedEncoding, "none": NoEncoding,
}


class TokenEmbedding(nn.Module):
    """Token ids → ``sqrt(d_model)`` · embedding + positional encoding → dropout."""

    def __init__(self, vocab_size: int, d_model: int, max_len: int, pos: str = "sinusoidal",
                 dropout: float = 0.0):
        super().__init__()
        if pos not in POSITIONAL_ENCODINGS:
            raise ShapeError(f"unknown positional encoding {pos!r} (choose from {', '.join(POSITIONAL_ENCODINGS)})")
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID)
        # Unit-variance vectors after the sqrt(d_model) scale below.
        nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()
        self.position = POSITIONAL_ENCODINGS[pos](max_len, d_model)
        self.scale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        if length > self.position.max_len:
            raise ShapeError(f"sequence of {length} tokens is longer than the model's maximum "
                             f"of {self.position.max_len}")
        x = self.embedding(tokens) * self.scale
        positions = self.position(length)
        if positions is not None:
            x = x + positions
        return self.dropout(x)


# --------------------------------------------------------------------------
# Blocks


class FeedForward(nn.Module):
    """Position-wise ``linear → activation → dropout → linear``."""

    def __init__(self, d_model: int, ff: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.linear1 = nn.Linear(d_model, ff)
        self.linear2 = nn.Linear(ff, d_model)
        self.activation = ACTIVATIONS[activation]
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


class Sublayer(nn.Module):
    """Add & Norm around one sublayer: pre-norm or post-norm residual."""

    def __init__(self, d_model: int, dropout: float, norm: str):
        super().__init__()
        if norm not in ("pre", "post"):
            raise ShapeError(f"norm must be 'pre' or 'post', got {norm!r}")
        self.pre = norm == "pre"
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, sublayer) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``sublayer(h) -> (output, extra)``; returns (new x, extra)."""
        if self.pre:
            out, extra = sublayer(self.norm(x))
            return x + self.dropout(out), extra
        out, extra = sublayer(x)
        return self.norm(x + self.dropout(out)), extra


class EncoderLayer(nn.Module):
    """Self-attention → Add & Norm → feed-forward → Add & Norm."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float = 0.0, norm: str = "pre",
                 score: str = "dot", activation: str = "relu"):
        super().__init__()
        self.self_attention = MultiHeadAttention(d_model, heads, score, dropout)
        self.feed_forward = FeedForward(d_model, ff, dropout, activation)
        self.attention_block = Sublayer(d_model, dropout, norm)
        self.feed_forward_block = Sublayer(d_model, dropout, norm)

    def forward(self, x, mask=None, need_weights=False):
        x, weights = self.attention_block(
            x, lambda h: self.self_attention(h, mask=mask, need_weights=need_weights))
        x, _ = self.feed_forward_block(x, lambda h: (self.feed_forward(h), None))
        return x, weights


class DecoderLayer(nn.Module):
    """Masked self-attention → Add & Norm → cross-attention → Add & Norm → feed-forward → Add & Norm."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float = 0.0, norm: str = "pre",
                 score: str = "dot", activation: str = "relu"):
        super().__init__()
        self.self_attention = MultiHeadAttention(d_model, heads, score, dropout)
        self.cross_attention = MultiHeadAttention(d_model, heads, score, dropout)
        self.feed_forward = FeedForward(d_model, ff, dropout, activation)
        self.self_block = Sublayer(d_model, dropout, norm)
        self.cross_block = Sublayer(d_model, dropout, norm)
        self.feed_forward_block = Sublayer(d_model, dropout, norm)

    def forward(self, x, memory, self_mask=None, memory_mask=None, causal=True, need_weights=False):
        x, self_weights = self.self_block(
            x, lambda h: self.self_attention(h, mask=self_mask, causal=causal, need_weights=need_weights))
        x, cross_weights = self.cross_block(
            x, lambda h: self.cross_attention(h, memory, mask=memory_mask, need_weights=need_weights))
        x, _ = self.feed_forward_block(x, lambda h: (self.feed_forward(h), None))
        return x, self_weights, cross_weights


class Encoder(nn.Module):
    """``layers`` encoder layers (plus a final LayerNorm when pre-norm).

    ``forward(x, mask)`` maps ``batch × length × d_model`` vectors to the
    same shape; ``mask`` as built by ``attention_mask``, or a ``WindowMask``
    (self-attention then runs banded on long sequences).
    """

    def __init__(self, d_model: int, heads: int, layers: int, ff: int, dropout: float = 0.0,
                 norm: str = "pre", score: str = "dot", activation: str = "relu"):
        super().__init__()
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, heads, ff, dropout, norm, score, activation) for _ in range(layers))
        self.final_norm = nn.LayerNorm(d_model) if norm == "pre" else nn.Identity()

    def forward(self, x, mask=None, need_weights=False):
        """Returns (vectors, per-layer attention weights or [])."""
        weights = []
        for layer in self.layers:
            x, layer_weights = layer(x, mask, need_weights)
            weights.append(layer_weights)
        return self.final_norm(x), weights if need_weights else []


class Decoder(nn.Module):
    """``layers`` decoder layers (plus a final LayerNorm when pre-norm)."""

    def __init__(self, d_model: int, heads: int, layers: int, ff: int, dropout: float = 0.0,
                 norm: str = "pre", score: str = "dot", activation: str = "relu"):
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, heads, ff, dropout, norm, score, activation) for _ in range(layers))
        self.final_norm = nn.LayerNorm(d_model) if norm == "pre" else nn.Identity()

    def forward(self, x, memory, self_mask=None, memory_mask=None, causal=True, need_weights=False):
        """Returns (vectors, [self weights per layer], [cross weights per layer])."""
        self_weights, cross_weights = [], []
        for layer in self.layers:
            x, self_w, cross_w = layer(x, memory, self_mask, memory_mask, causal, need_weights)
            self_weights.append(self_w)
            cross_weights.append(cross_w)
        return self.final_norm(x), self_weights, cross_weights


# --------------------------------------------------------------------------
# Whole models


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder Transformer: source ids → scores for each next target id.

    Args:
        vocab_size: number of token ids (source and target share one vocabulary).
        d_model, heads, layers, ff, dropout, norm, score, activation: as in ``Encoder``.
        pos: ``"sinusoidal"``, ``"learned"`` or ``"none"``.
        window: self-attention only within this many positions (0: no limit);
            cross-attention always sees the whole source.
        max_len: longest sequence the positional encoding covers.

    ``forward(source, target_in)``: ``batch × S`` and ``batch × T`` ids
    (padding = 0; ``target_in`` starts with BOS) → ``batch × T × vocab_size``.
    """

    def __init__(self, vocab_size: int, d_model: int = 64, heads: int = 4, layers: int = 2, ff: int = 256,
                 dropout: float = 0.0, norm: str = "pre", pos: str = "sinusoidal", score: str = "dot",
                 window: int = 0, max_len: int = 64, activation: str = "relu"):
        super().__init__()
        self.window = window
        self.source_embedding = TokenEmbedding(vocab_size, d_model, max_len, pos, dropout)
        self.target_embedding = TokenEmbedding(vocab_size, d_model, max_len, pos, dropout)
        self.encoder = Encoder(d_model, heads, layers, ff, dropout, norm, score, activation)
        self.decoder = Decoder(d_model, heads, layers, ff, dropout, norm, score, activation)
        self.output = nn.Linear(d_model, vocab_size)

    def encode(self, source: torch.Tensor, need_weights: bool = False):
        """(memory ``batch × S × d_model``, memory mask, encoder weights per layer)."""
        padding = source == PAD_ID
        memory, weights = self.encoder(self.source_embedding(source), _self_mask(padding, self.window), need_weights)
        memory_mask = attention_mask(1, source.shape[1], key_padding=padding)
        return memory, memory_mask, weights

    def decode(self, target_in: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None,
               need_weights: bool = False):
        """(scores ``batch × T × vocab``, self weights, cross weights).

        Target padding needs no mask: padding only ever follows the real
        tokens, and the causal mask already hides every later position.
        """
        self_mask = WindowMask(self.window, causal=True) if self.window else None
        x, self_weights, cross_weights = self.decoder(
            self.target_embedding(target_in), memory, self_mask, memory_mask,
            causal=not self.window, need_weights=need_weights)
        return self.output(x), self_weights, cross_weights

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        memory, memory_mask, _ = self.encode(source)
        return self.decode(target_in, memory, memory_mask)[0]

    def attention_maps(self, source: torch.Tensor, target_in: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Weights for pictures: ``{"encoder_self"|"decoder_self"|"cross": [layer: B×H×Lq×Lk]}``."""
        memory, memory_mask, encoder_weights = self.encode(source, need_weights=True)
        _, self_weights, cross_weights = self.decode(target_in, memory, memory_mask, need_weights=True)
        return {"encoder_self": encoder_weights, "decoder_self": self_weights, "cross": cross_weights}

    def positional_matrix(self, length: int) -> torch.Tensor:
        """The encoder's positional encoding, ``length × d_model`` (zeros for ``none``)."""
        return _positional_matrix(self.source_embedding, length)


class EncoderClassifier(nn.Module):
    """Encoder-only Transformer with a linear head.

    ``pool="none"``: one label per token (sequence labeling, ``batch × L ×
    labels``). ``pool="mean"``: the mean of the non-padding token vectors
    gives one label per sequence (classification, ``batch × labels``).
    Other arguments as in ``Seq2SeqTransformer``.
    """

    def __init__(self, vocab_size: int, num_labels: int, pool: str = "none", d_model: int = 64,
                 heads: int = 4, layers: int = 2, ff: int = 256, dropout: float = 0.0, norm: str = "pre",
                 pos: str = "sinusoidal", score: str = "dot", window: int = 0, max_len: int = 64,
                 activation: str = "relu"):
        super().__init__()
        if pool not in ("none", "mean"):
            raise ShapeError(f"pool must be 'none' or 'mean', got {pool!r}")
        self.pool = pool
        self.window = window
        self.source_embedding = TokenEmbedding(vocab_size, d_model, max_len, pos, dropout)
        self.encoder = Encoder(d_model, heads, layers, ff, dropout, norm, score, activation)
        self.output = nn.Linear(d_model, num_labels)

    def encode(self, source: torch.Tensor, need_weights: bool = False):
        padding = source == PAD_ID
        vectors, weights = self.encoder(self.source_embedding(source), _self_mask(padding, self.window), need_weights)
        return vectors, padding, weights

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        vectors, padding, _ = self.encode(source)
        if self.pool == "mean":
            keep = (~padding).unsqueeze(-1).to(vectors.dtype)
            vectors = (vectors * keep).sum(1) / keep.sum(1).clamp(min=1)
        return self.output(vectors)

    def attention_maps(self, source: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        return {"encoder_self": self.encode(source, need_weights=True)[2]}

    def positional_matrix(self, length: int) -> torch.Tensor:
        return _positional_matrix(self.source_embedding, length)


def _self_mask(padding: torch.Tensor, window: int):
    """Encoder self-attention mask: described (banded when that pays) with a window, else drawn."""
    if window:
        return WindowMask(window, key_padding=padding)
    return attention_mask(padding.shape[1], padding.shape[1], key_padding=padding)


def _positional_matrix(embedding: TokenEmbedding, length: int) -> torch.Tensor:
    length = min(length, embedding.position.max_len)
    table = embedding.position(length)
    if table is None:
        return torch.zeros(length, embedding.embedding.embedding_dim)
    return table.detach().float().cpu()


def build_model(model_config, kind: str, vocab_size: int, num_labels: int, max_len: int) -> nn.Module:
    """The model for a task of ``kind`` (seq2seq | labeling | classification) from ``model_config``."""
    sizes = dict(d_model=model_config.d_model, heads=model_config.heads, layers=model_config.layers,
                 ff=model_config.ff, dropout=model_config.dropout, norm=model_config.norm,
                 pos=model_config.pos, score=model_config.score, window=model_config.window,
                 max_len=max_len, activation=model_config.activation)
    if kind == "seq2seq":
        return Seq2SeqTransformer(vocab_size, **sizes)
    pool = "mean" if kind == "classification" else "none"
    return EncoderClassifier(vocab_size, num_labels, pool, **sizes)
