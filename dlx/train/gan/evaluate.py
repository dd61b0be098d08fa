"""Measuring and picturing a GAN: the numbers and images of each evaluation.

- 2-D mixtures: modes captured and the fraction of high-quality samples
  (``dlx.metrics.mode_coverage``) over ``eval.samples`` points.
- Images: Fréchet distance between the evaluation classifier's penultimate
  features of generated and real test images, the class histogram of
  generated images (a mode-collapse alarm) and, for conditional GANs, how
  often the classifier agrees with the class that was asked for.
- Cycle: the cycle-reconstruction error |x - F(G(x))| (pixels in [0, 1]) on
  test images of both domains and, when the classifier knows both domains,
  how often a translated image is classified into the target domain.

Every evaluation feeds the generator the same noise (a generator seeded
from the run seed, separate from the training streams), so the numbers
move only because the networks do, and evaluating never changes training.

``evaluate_run`` (``dlx eval``) computes the same numbers for a saved run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from dlx import metrics, viz
from dlx.checkpoint import SavedRun, load_weights, require
from dlx.configs.gan import GANConfig
from dlx.errors import CheckpointError, DlxError
from dlx.models.gan import GANModels, build_gan, interpolate, sample_noise
from dlx.train.gan.classifier import Classifier, check_classifier_run, load_classifier, resolve_classifier
from dlx.train.gan.data import GANData, ImageSet, load_gan_data, to_signed

EVAL_SEED = 2_147_483_000  # eval noise: seeded apart from every training stream
CHUNK = 500  # samples per generator call during evaluation
SCATTER_POINTS = 1000
INTERPOLATION_STEPS = 10
INTERPOLATION_ROWS = 10  # fixed["ends"] holds 2 × this many noise vectors


@torch.no_grad()
def generate(generator: torch.nn.Module, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``generator`` in eval mode on ``noise`` (in chunks); restores its mode."""
    was_training = generator.training
    generator.eval()
    outputs = [generator(noise[start:start + CHUNK], None if labels is None else labels[start:start + CHUNK])
               for start in range(0, noise.shape[0], CHUNK)]
    generator.train(was_training)
    return torch.cat(outputs).float()


@torch.no_grad()
def translate(translator: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``translator`` in eval mode on ``images`` (in chunks); restores its mode."""
    was_training = translator.training
    translator.eval()
    outputs = [translator(images[start:start + CHUNK]) for start in range(0, images.shape[0], CHUNK)]
    translator.train(was_training)
    return torch.cat(outputs).float()


@dataclass
class Evaluator:
    """Evaluates one run's networks; holds what does not change between evaluations."""

    config: GANConfig
    data: GANData
    device: torch.device
    classifier: Classifier | None = None
    reference: dict = field(default_factory=dict)  # name → (mean, cov) of real test features
    last: dict = field(default_factory=dict)  # samples of the latest evaluation, for pictures

    def __post_init__(self) -> None:
        count = self.config.eval_samples()
        if self.classifier is None:
            return
        if self.data.images is not None:
            named_sets = [("real", self.data.images)]
        else:
            named_sets = list(zip(("A", "B"), self.data.domains or (), strict=False))
        for name, image_set in named_sets:
            if image_set.dataset == self.classifier.dataset:
                features, _ = self.classifier.embed(to_signed(image_set.test_images[:count]))
                self.reference[name] = metrics.feature_statistics(features)

    def _eval_noise(self, count: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(EVAL_SEED - self.config.run.seed)
        return sample_noise(self.config.model.noise, count, self.config.noise_dim(), generator, self.device)

    def evaluate(self, models: GANModels) -> dict:
        """Metrics of the current networks (rank 0 only: plain Python numbers and lists)."""
        if self.data.mixture is not None:
            return self._evaluate_mixture(models.generators["G"])
        if self.data.images is not None:
            return self._evaluate_images(models.generators["G"])
        return self._evaluate_cycle(models.generators["G_AB"], models.generators["G_BA"])

    def _evaluate_mixture(self, generator: torch.nn.Module) -> dict:
        mixture = self.data.mixture
        samples = generate(generator, self._eval_noise(self.config.eval_samples()))
        self.last["samples"] = samples[:SCATTER_POINTS].cpu()
        return metrics.mode_coverage(samples, mixture.means, mixture.std)

    def _evaluate_images(self, generator: torch.nn.Module) -> dict:
        if self.classifier is None:
            return {}
        images: ImageSet = self.data.images
        count = self.config.eval_samples()
        conditional = self.config.model.kind == "conditional"
        labels = (torch.arange(count) % self.data.num_classes).to(self.device) if conditional else None
        fakes = generate(generator, self._eval_noise(count), labels)
        features, predictions = self.classifier.embed(fakes)
        histogram = metrics.class_histogram(predictions, len(self.classifier.classes))
        result = {"class_histogram": dict(zip(self.classifier.classes, histogram, strict=True)),
                  "class_entropy": metrics.normalized_entropy(histogram)}
        if "real" in self.reference:
            result["fid"] = metrics.frechet_distance(*metrics.feature_statistics(features), *self.reference["real"])
        if conditional:
            wanted = torch.tensor(images.class_ids)[labels.cpu()]
            result["conditional_accuracy"] = float((predictions == wanted).float().mean())
        return result

    def _evaluate_cycle(self, a_to_b: torch.nn.Module, b_to_a: torch.nn.Module) -> dict:
        domain_a, domain_b = self.data.domains
        count = self.config.eval_samples()
        real_a = to_signed(domain_a.test_images[:count])
        real_b = to_signed(domain_b.test_images[:count])
        fake_b, fake_a = translate(a_to_b, real_a), translate(b_to_a, real_b)
        # |x - F(G(x))| with pixels in [0, 1]: the [-1, 1] difference halved.
        error_a = float((translate(b_to_a, fake_b) - real_a).abs().mean()) / 2
        error_b = float((translate(a_to_b, fake_a) - real_b).abs().mean()) / 2
        result = {"cycle_error": (error_a + error_b) / 2, "cycle_error_a": error_a, "cycle_error_b": error_b}
        if self.classifier is not None and "A" in self.reference and "B" in self.reference:
            for name, fakes, target in (("ab", fake_b, domain_b), ("ba", fake_a, domain_a)):
                features, predictions = self.classifier.embed(fakes)
                in_target = torch.isin(predictions, torch.tensor(target.class_ids))
                result[f"translation_accuracy_{name}"] = float(in_target.float().mean())
                result[f"fid_{name}"] = metrics.frechet_distance(
                    *metrics.feature_statistics(features), *self.reference[name[-1].upper()])
        return result

    # -- pictures ------------------------------------------------------------------

    @torch.no_grad()
    def log_pictures(self, writer, models: GANModels, fixed: dict, result: dict, step: int) -> None:
        """Sample grids from the fixed noise, interpolations, scatter plots, class histograms."""
        if self.data.domains is not None:
            self._log_cycle(writer, models, step)
            return
        generator = models.generators["G"]
        noise, labels = fixed["noise"].to(self.device), fixed.get("labels")
        labels = labels.to(self.device) if labels is not None else None
        spherical = self.config.model.noise == "gaussian"
        if self.data.mixture is not None:
            mixture = self.data.mixture
            real = mixture.sample(SCATTER_POINTS, torch.Generator().manual_seed(EVAL_SEED))
            ends = fixed["ends"].to(self.device)
            path = generate(generator, interpolate(ends[0], ends[1], 32, spherical))
            title = (f"step {step}: {result.get('modes_captured', '?')}/{mixture.num_modes} modes, "
                     f"{100 * result.get('high_quality', 0):.1f}% high quality")
            figure = viz.scatter_figure(real, self.last.get("samples", generate(generator, noise)),
                                        mixture.means, mixture.std, path, title)
            writer.add_image("samples/scatter", figure, step, dataformats="HWC")
            return
        columns = self.data.num_classes if labels is not None else 8
        writer.add_image("samples/fixed_noise", viz.image_grid((generate(generator, noise, labels) + 1) / 2,
                                                               columns=columns), step)
        rows = min(self.data.num_classes, INTERPOLATION_ROWS) if labels is not None else 4
        ends = fixed["ends"].to(self.device)
        path = torch.cat([interpolate(ends[2 * row], ends[2 * row + 1], INTERPOLATION_STEPS, spherical)
                          for row in range(rows)])
        path_labels = (torch.arange(rows, device=self.device).repeat_interleave(INTERPOLATION_STEPS)
                       if labels is not None else None)
        writer.add_image("samples/interpolation", viz.image_grid(
            (generate(generator, path, path_labels) + 1) / 2, columns=INTERPOLATION_STEPS), step)
        if "class_histogram" in result:
            histogram = result["class_histogram"]
            figure = viz.histogram_figure(list(histogram.values()), list(histogram), f"generated, step {step}")
            writer.add_image("eval/class_histogram", figure, step, dataformats="HWC")

    def _log_cycle(self, writer, models: GANModels, step: int) -> None:
        domain_a, domain_b = self.data.domains
        for tag, images, forward, backward in (
                ("samples/A_to_B_to_A", domain_a.test_images[:8], "G_AB", "G_BA"),
                ("samples/B_to_A_to_B", domain_b.test_images[:8], "G_BA", "G_AB")):
            real = to_signed(images)
            there = translate(models.generators[forward], real)
            back = translate(models.generators[backward], there)
            triples = torch.stack([real, there, back], dim=1).flatten(0, 1)  # a, G(a), F(G(a)), …
            writer.add_image(tag, viz.image_grid((triples + 1) / 2, columns=6), step)


def score(result: dict) -> float | None:
    """Higher is better: what ``best.pt`` keeps (None: nothing measured)."""
    if "modes_captured" in result:
        return result["modes_captured"] + result["high_quality"]
    if "fid" in result:
        return -result["fid"]
    if "cycle_error" in result:
        return -result["cycle_error"]
    return None


def scalars(result: dict) -> dict[str, float]:
    """The plain numbers of an evaluation, as ``eval/<name>`` TensorBoard scalars."""
    return {f"eval/{key}": float(value) for key, value in result.items() if isinstance(value, (int, float))}


def make_evaluator(config: GANConfig, data: GANData, device: torch.device, say) -> tuple[Evaluator, dict]:
    """The run's evaluator and what to remember about it in checkpoints.

    Image metrics need the evaluation classifier: ``eval.classifier`` or the
    cached one (trained now if missing). A cycle GAN uses it only when both
    domains come from the same dataset.
    """
    datasets = ({data.images.dataset} if data.images is not None
                else {d.dataset for d in data.domains} if data.domains is not None else set())
    classifier = None
    if config.eval.image_metrics and len(datasets) == 1:
        (dataset,) = datasets
        run_dir = resolve_classifier(config.eval.classifier, dataset, config.data.data_dir, say)
        classifier = load_classifier(run_dir, dataset, data.sample_shape, device)
    extra = {"eval_classifier": str(classifier.run_dir)} if classifier is not None else {}
    return Evaluator(config, data, device, classifier), extra


def describe_result(result: dict) -> str:
    """One line for the console."""
    parts = []
    if "modes_captured" in result:
        parts.append(f"modes {result['modes_captured']}  high quality {100 * result['high_quality']:.1f}%")
    for key, label in (("fid", "FID"), ("conditional_accuracy", "cond. acc"), ("class_entropy", "class entropy"),
                       ("cycle_error", "cycle error"), ("translation_accuracy_ab", "A→B acc"),
                       ("translation_accuracy_ba", "B→A acc")):
        if key in result:
            parts.append(f"{label} {result[key]:.4g}")
    return "  ".join(parts) or "no metrics (eval.image_metrics is off)"


# -- saved runs: dlx eval ------------------------------------------------------------


def saved_models(saved: SavedRun, device: torch.device) -> GANModels:
    """A saved run's networks with the checkpoint's weights, in eval mode on ``device``."""
    config, state = saved.config, saved.state
    conditional = config.model.kind == "conditional"
    require(state, ("models", "sample_shape", "step") + (("classes",) if conditional else ()), saved.path)
    shape = state["sample_shape"]
    if (not isinstance(shape, (list, tuple)) or len(shape) not in (1, 3)
            or not all(isinstance(size, int) and 0 < size <= 4096 for size in shape)):
        raise CheckpointError(f"checkpoint {saved.path} has an impossible sample_shape {shape!r}")
    num_classes = len(state["classes"] or []) if conditional else 0
    models = build_gan(config, tuple(shape), num_classes)
    require(state["models"], list(models.all()), saved.path, "models")
    for role, net in models.all().items():
        load_weights(net, state["models"][role], saved.path, f"{role} network")
        net.to(device).eval()
    return models


def evaluate_run(run_dir: str | Path, which: str = "best", data_dir: str | None = None) -> dict:
    """``dlx eval``: the run's metrics at a checkpoint, computed afresh."""
    from dlx.checkpoint import default_device, load_saved

    saved = load_saved(run_dir, "gan", GANConfig, which, data_dir)
    config, state, device = saved.config, saved.state, default_device()
    data = load_gan_data(config, device)
    models = saved_models(saved, device)
    saved_classifier = state.get("eval_classifier")
    image_set = data.images if data.images is not None else (data.domains or [None])[0]
    if saved_classifier and not config.eval.classifier and image_set is not None:
        try:  # the classifier the run was measured with, while it still exists
            config.eval.classifier = str(check_classifier_run(saved_classifier, image_set.dataset))
        except DlxError:
            pass  # gone: fall back to the cached one
    evaluator, extra = make_evaluator(config, data, device, print)
    result = evaluator.evaluate(models)
    return {"run_dir": str(run_dir), "checkpoint": which, "step": int(state["step"]), **result, **extra}
