"""A GAN run's memory estimate from its config (dlx/memory.py), kept apart so that the family record
and inspect-shapes both use it without importing each other. Torch-free."""

from __future__ import annotations

from typing import Any


def memory_estimate(config: Any) -> list[tuple[str, float]]:
    """Rough bytes of a run's big allocations (dlx/memory.py): G and D with gradients and Adam state,
    and one batch of noise."""
    from dlx.memory import BYTES_PER_PARAMETER, FLOAT, mlp_parameters

    model, batch = config.model, config.optim.batch_size
    noise = int(model.noise_dim or 0)
    size = int(getattr(config.data, "image_size", None) or 28)
    if model.name == "mlp":
        sample = 2 if str(config.data.dataset or "").startswith(("ring", "grid", "spiral", "moons", "gauss")) \
            else 3 * size * size
        pack = int(model.pack or 1)
        parameters = (mlp_parameters([noise + 16, *model.g_hidden, sample])
                      + mlp_parameters([sample * pack + 16, *model.d_hidden, 1]))
    else:  # convolutional G and D: 4x4 kernels over widths channels x (8, 4, 2, 1)
        c = int(model.channels or 0)
        convs = 16 * (8 * c * 4 * c + 4 * c * 2 * c + 2 * c * c + 3 * c)
        parameters = 2 * convs + (noise + 16) * 8 * c * 16
    return [("G and D parameters and Adam state", parameters * BYTES_PER_PARAMETER),
            ("one batch of noise", batch * noise * FLOAT * 4)]
