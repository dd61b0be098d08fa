"""``dlx inspect-shapes``: every tensor's shape, the rule behind it, checked against PyTorch.

The CLI (``dlx/commands/inspect.py``, one command per target) imports these
modules inside its commands, so ``dlx --help`` never loads torch.

Modules (torch is imported only by the ones that need it):

- ``report``: ``Row`` and ``Report``, the numbers every target produces, and their formatting;
- ``rules``: the output-shape rule of each layer type, with the numbers filled in, and floor notes;
- ``trace``: ``trace_model(model, inputs, …)``, a forward-hook tracer for any ``nn.Module``
  (shapes, ✓ against the rule, parameters, FLOPs via ``torch.utils.flop_counter``, receptive field);
- ``flops``: ``flop_counter()``, torch's FLOP counter plus the fused attention kernels it has no formula for;
- ``layers``: one conv/pool layer from flags (``WindowLayer``), checked with one-line ShapeErrors;
- ``compare``: ``--compare-fc`` (fully connected vs locally connected vs convolution);
- ``attention``: ``inspect_attention(…)``, self-attention step by step;
- ``models``: train-cnn / train-transformer models from their configs, ``trace_gan_pair``;
- ``render``: the rich table and the JSON (``to_json``, ``dumps``, ``render``).
"""
