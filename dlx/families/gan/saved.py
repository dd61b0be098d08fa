"""Pictures from a saved GAN run: ``dlx sample`` (``dlx eval`` is ``evaluate.evaluate_run``)."""

from __future__ import annotations

from pathlib import Path

import torch

from dlx import viz
from dlx.checkpoint import default_device, load_saved
from dlx.errors import CheckpointError, DlxError
from dlx.families.gan.config import GANConfig
from dlx.families.gan.data import load_gan_data, resolve_classes, to_signed
from dlx.families.gan.evaluate import generate, saved_models, translate
from dlx.families.gan.model import GANModels, noise_for

DEFAULT_IMAGES = 64
DEFAULT_POINTS = 2000


def _resolve_label(label: str, classes: list[str]) -> int:
    try:
        (index,) = resolve_classes([label], classes, "--label", "this run's")
    except DlxError:
        raise DlxError(f"--label {label!r} is not one of this run's classes "
                       f"({', '.join(f'{i}={name}' for i, name in enumerate(classes))})") from None
    return index


@torch.no_grad()
def sample_run(run_dir: str | Path, count: int | None, label: str | None, out: str | Path,
               which: str = "last", seed: int = 0) -> Path:
    """``dlx sample``: write a PNG of generated samples; returns its path."""
    run_dir = Path(run_dir)
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise DlxError(f"--out must name a .png file, got {out}")
    if not out.parent.is_dir():
        raise DlxError(f"--out: directory {out.parent} does not exist")
    if out.is_dir():
        raise DlxError(f"--out {out} is a directory; name a .png file")
    saved = load_saved(run_dir, "gan", GANConfig, which)
    config, state, device = saved.config, saved.state, default_device()
    models = saved_models(saved, device)
    kind = config.model.kind
    if label is not None and kind != "conditional":
        raise DlxError(f"--label needs a conditional run; {run_dir.name} is a {kind!r} run")
    generator = torch.Generator().manual_seed(seed)
    if kind == "cycle":
        return _sample_cycle(config, models, count or 8, out, device)
    net = models.generators["G"]
    if config.is_toy:
        from dlx.data import toy2d

        mixture = toy2d.mixture(config.data.dataset, config.toy_std())
        count = count or DEFAULT_POINTS
        points = generate(net, noise_for(config, count, generator, device))
        real = mixture.sample(count, torch.Generator().manual_seed(seed + 1))
        figure = viz.scatter_figure(real, points, mixture.means, mixture.std,
                                    title=f"{run_dir.name}, step {state['step']}")
        viz.save_png(figure, out)
        return out
    count = count or DEFAULT_IMAGES
    noise = noise_for(config, count, generator, device)
    labels, columns = None, None
    if kind == "conditional":
        classes = list(state["classes"])
        if label is not None:
            labels = torch.full((count,), _resolve_label(label, classes), dtype=torch.long)
        else:
            labels, columns = torch.arange(count) % len(classes), len(classes)
        labels = labels.to(device)
    images = (generate(net, noise, labels) + 1) / 2
    viz.save_png(viz.image_grid(images, columns=columns), out)
    return out


def _sample_cycle(config: GANConfig, models: GANModels, count: int, out: Path, device: torch.device) -> Path:
    """Rows of (a, G_AB(a), G_BA(G_AB(a))) for the first ``count`` test images of domain A."""
    data = load_gan_data(config, device, progress=False)
    real = to_signed(data.domains[0].test_images[:count])
    if not len(real):
        raise CheckpointError("domain A has no test images to translate")
    there = translate(models.generators["G_AB"], real)
    back = translate(models.generators["G_BA"], there)
    triples = torch.stack([real, there, back], dim=1).flatten(0, 1)
    viz.save_png(viz.image_grid((triples + 1) / 2, columns=6), out)
    return out
