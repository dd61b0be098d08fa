"""Working with a saved GAN run: ``dlx eval`` (metrics) and ``dlx sample`` (pictures)."""

from __future__ import annotations

from pathlib import Path

import torch

from dlx.configs.gan import GANConfig
from dlx.errors import CheckpointError, DlxError
from dlx.models.gan import GANModels, build_gan, sample_noise
from dlx.train.gan import FAMILY

DEFAULT_IMAGES = 64
DEFAULT_POINTS = 2000


def load_run(run_dir: str | Path, which: str, data_dir: str | None = None, load_data: bool = True):
    """(config, checkpoint state, networks in eval mode, data or None, device) of a saved run."""
    from dlx import checkpoint
    from dlx import config as config_mod
    from dlx.resume import run_config

    run_dir = Path(run_dir)
    config: GANConfig = config_mod.build(GANConfig, base=run_config(run_dir, FAMILY))
    if data_dir:
        config.data.data_dir = data_dir
    path = run_dir / "checkpoints" / f"{which}.pt"
    if which == "best" and not path.is_file():
        path = run_dir / "checkpoints" / "last.pt"  # a run stopped before its first evaluation
    state = checkpoint.load(path, FAMILY)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = None
    if load_data:
        from dlx.train.gan_data import load_gan_data

        data = load_gan_data(config, device)
    num_classes = len(state.get("classes") or []) if config.model.kind == "conditional" else 0
    models = build_gan(config, tuple(state["sample_shape"]), num_classes)
    for role, net in models.all().items():
        net.load_state_dict(state["models"][role])
        net.to(device).eval()
    return config, state, models, data, device


def evaluate_run(run_dir: str | Path, which: str = "best", data_dir: str | None = None) -> dict:
    """``dlx eval``: the run's metrics at a checkpoint, computed afresh."""
    from dlx.train.gan_classifier import check_classifier_run
    from dlx.train.gan_eval import Evaluator, make_evaluator

    config, state, models, data, device = load_run(run_dir, which, data_dir)
    saved_classifier = state.get("eval_classifier")
    image_set = data.images if data.images is not None else (data.domains or [None])[0]
    if saved_classifier and not config.eval.classifier and image_set is not None:
        try:  # the classifier the run was measured with, while it still exists
            config.eval.classifier = str(check_classifier_run(saved_classifier, image_set.dataset))
        except DlxError:
            pass  # gone: fall back to the cached one
    evaluator: Evaluator
    evaluator, extra = make_evaluator(config, data, device, print)
    result = evaluator.evaluate(models)
    return {"run_dir": str(run_dir), "checkpoint": which, "step": int(state["step"]), **result, **extra}


def _resolve_label(label: str, classes: list[str]) -> int:
    from dlx.train.gan_data import resolve_classes

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
    from dlx import viz
    from dlx.train.gan_eval import generate, translate

    run_dir = Path(run_dir)
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise DlxError(f"--out must name a .png file, got {out}")
    if not out.parent.is_dir():
        raise DlxError(f"--out: directory {out.parent} does not exist")
    config, state, models, _, device = load_run(run_dir, which, load_data=False)
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
        points = generate(net, sample_noise(config.model.noise, count, config.noise_dim(), generator, device))
        real = mixture.sample(count, torch.Generator().manual_seed(seed + 1))
        figure = viz.scatter_figure(real, points, mixture.means, mixture.std,
                                    title=f"{run_dir.name}, step {state['step']}")
        viz.save_png(figure, out)
        return out
    count = count or DEFAULT_IMAGES
    noise = sample_noise(config.model.noise, count, config.noise_dim(), generator, device)
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
    from dlx import viz
    from dlx.train.gan_data import load_gan_data, to_signed
    from dlx.train.gan_eval import translate

    data = load_gan_data(config, device, progress=False)
    real = to_signed(data.domains[0].test_images[:count])
    if not len(real):
        raise CheckpointError("domain A has no test images to translate")
    there = translate(models.generators["G_AB"], real)
    back = translate(models.generators["G_BA"], there)
    triples = torch.stack([real, there, back], dim=1).flatten(0, 1)
    viz.save_png(viz.image_grid((triples + 1) / 2, columns=6), out)
    return out
