"""Measuring and picturing a GAN: the numbers and images of each evaluation.

- 2-D mixtures: modes captured and the fraction of high-quality samples
  (``dlx.metrics.mode_coverage``) over ``eval.samples`` points. Every
  evaluation draws fresh samples, so a mixture needs no held-out split.
- Images: Fréchet distance between the evaluation classifier's penultimate
  features of generated and real images, the class histogram of
  generated images (a mode-collapse alarm) and, for conditional GANs, how
  often the classifier agrees with the class that was asked for.
- Cycle: the cycle-reconstruction error |x - F(G(x))| (pixels in [0, 1]) on
  real images of both domains and, when the classifier knows both domains,
  how often a translated image is classified into the target domain.

The real images are the validation split (held out of the training
images) during training, where the numbers choose ``best.pt``, and the test
split once, at the end, on ``best.pt``'s networks.

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
from dlx.errors import CheckpointError, DlxError
from dlx.families.gan import noise_picture
from dlx.families.gan.attention_maps import log_attention_maps
from dlx.families.gan.average import sampling_weights
from dlx.families.gan.classifier import Classifier, check_classifier_run, load_classifier, resolve_classifier
from dlx.families.gan.config import GANConfig
from dlx.families.gan.data import GANData, ImageSet, load_gan_data, to_signed
from dlx.families.gan.model import GANModels, build_gan, interpolate, noise_for

EVAL_SEED = 2_147_483_000  # eval noise: seeded apart from every training stream
CHUNK = 500  # samples per generator call during evaluation
SCATTER_POINTS = 1000
INTERPOLATION_STEPS = 10
INTERPOLATION_ROWS = 10  # fixed["ends"] holds 2 × this many noise vectors
CYCLE_ROWS = 4  # real images shown translated and back, per direction


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
    # (split, "real" | "A" | "B") → (mean, cov) of the classifier's features of real images, made when first needed.
    reference: dict = field(default_factory=dict)
    last: dict = field(default_factory=dict)  # samples of the latest evaluation, for pictures

    def _reference(self, split: str, name: str, image_set: ImageSet) -> tuple | None:
        """Feature statistics of up to ``eval.samples`` real images of ``split`` (None: no classifier for them)."""
        if self.classifier is None or image_set.dataset != self.classifier.dataset:
            return None
        if (split, name) not in self.reference:
            images, _ = image_set.split(split)
            features, _ = self.classifier.embed(to_signed(images[:self.config.eval_samples()]))
            self.reference[split, name] = metrics.feature_statistics(features)
        return self.reference[split, name]

    def _eval_noise(self, count: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(EVAL_SEED - self.config.run.seed)
        return noise_for(self.config, count, generator, self.device)

    def evaluate(self, models: GANModels, split: str | None = None) -> dict:
        """Metrics of the current networks (rank 0 only: plain Python numbers and lists).

        Images are measured against ``split``: ``val`` during training, ``test``
        once at the end (None: what training uses, ``GANData.selection_split``).
        A 2-D mixture needs no split: every evaluation draws fresh samples.
        """
        split = split or self.data.selection_split
        if self.data.mixture is not None:
            return self._evaluate_mixture(models.generators["G"])
        if self.data.images is not None:
            return self._evaluate_images(models.generators["G"], split)
        return self._evaluate_cycle(models.generators["G_AB"], models.generators["G_BA"], split)

    def _evaluate_mixture(self, generator: torch.nn.Module) -> dict:
        mixture = self.data.mixture
        samples = generate(generator, self._eval_noise(self.config.eval_samples()))
        self.last["samples"] = samples[:SCATTER_POINTS].cpu()
        return metrics.mode_coverage(samples, mixture.means, mixture.std)

    def _evaluate_images(self, generator: torch.nn.Module, split: str) -> dict:
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
        reference = self._reference(split, "real", images)
        if reference is not None:
            result["fid"] = metrics.frechet_distance(*metrics.feature_statistics(features), *reference)
        if conditional:
            wanted = torch.tensor(images.class_ids)[labels.cpu()]
            result["conditional_accuracy"] = float((predictions == wanted).float().mean())
        return result

    def _evaluate_cycle(self, a_to_b: torch.nn.Module, b_to_a: torch.nn.Module, split: str) -> dict:
        domain_a, domain_b = self.data.domains
        count = self.config.eval_samples()
        real_a = to_signed(domain_a.split(split)[0][:count])
        real_b = to_signed(domain_b.split(split)[0][:count])
        fake_b, fake_a = translate(a_to_b, real_a), translate(b_to_a, real_b)
        # |x - F(G(x))| with pixels in [0, 1]: the [-1, 1] difference halved.
        error_a = float((translate(b_to_a, fake_b) - real_a).abs().mean()) / 2
        error_b = float((translate(a_to_b, fake_a) - real_b).abs().mean()) / 2
        result = {"cycle_error": (error_a + error_b) / 2, "cycle_error_a": error_a, "cycle_error_b": error_b}
        references = {"A": self._reference(split, "A", domain_a), "B": self._reference(split, "B", domain_b)}
        if self.classifier is not None and None not in references.values():
            for name, fakes, target in (("ab", fake_b, domain_b), ("ba", fake_a, domain_a)):
                features, predictions = self.classifier.embed(fakes)
                in_target = torch.isin(predictions, torch.tensor(target.class_ids))
                result[f"translation_accuracy_{name}"] = float(in_target.float().mean())
                result[f"fid_{name}"] = metrics.frechet_distance(
                    *metrics.feature_statistics(features), *references[name[-1].upper()])
        return result

    # -- pictures ------------------------------------------------------------------

    @torch.no_grad()
    def log_noise(self, writer) -> None:
        """The noise distribution G draws from, once (step 0): it never changes during a run."""
        if self.data.domains is not None:  # translators take images, not noise
            return
        writer.add_histogram("noise/z", self._eval_noise(self.config.eval_samples()).float().cpu(), 0)
        # The notes' two histograms, as the first picture of the Images tab (noise_picture.py).
        dim = self.config.noise_dim()
        pooled = self._eval_noise(-(-noise_picture.SAMPLES // dim)).float().cpu()
        noise_picture.log_noise_picture(writer, pooled, self.config.noise_label(), dim)

    @torch.no_grad()
    def log_pictures(self, writer, models: GANModels, fixed: dict, result: dict, step: int) -> None:
        """Sample grids from the fixed noise, interpolations, scatter plots, class pictures, D's scores;
        for a sagan, where its generator's attention looks."""
        if self.data.domains is not None:
            self._log_cycle(writer, models, step)
            return
        if self.data.mixture is not None:
            self._log_mixture(writer, models, fixed, result, step)
            return
        self._log_image_grids(writer, models.generators["G"], fixed, step)
        if self.config.model.name == "sagan":  # where G's self-attention looks (attention_maps.py)
            log_attention_maps(writer, models.generators["G"], fixed, self.data.images.kept_names, step,
                               self.device)
        self._log_image_statistics(writer, models, result, step)

    def _log_mixture(self, writer, models: GANModels, fixed: dict, result: dict, step: int) -> None:
        generator, mixture = models.generators["G"], self.data.mixture
        real = mixture.sample(SCATTER_POINTS, torch.Generator().manual_seed(EVAL_SEED))
        fake = self.last.get("samples")
        if fake is None:
            fake = generate(generator, fixed["noise"].to(self.device))
        ends = fixed["ends"].to(self.device)
        path = generate(generator, interpolate(ends[0], ends[1], 32, self.config.model.noise == "gaussian"))
        title = (f"step {step}: {result.get('modes_captured', '?')}/{mixture.num_modes} modes, "
                 f"{100 * result.get('high_quality', 0):.1f}% high quality")
        viz.add_figure(writer, "samples/scatter", viz.plot_scatter(real, fake, mixture.means, mixture.std, path,
                                                                   title), step)
        critic = models.discriminators["D"]
        panels = [("D", {"real": _scores(critic, real.to(self.device)), "generated": _scores(critic, fake)})]
        self._log_scores(writer, panels, "discriminator on real vs generated points", step)

    def _log_scores(self, writer, panels: list, what: str, step: int) -> None:
        xlabel = {"bce": "D's score (logit): > 0 says real"}.get(self.config.loss.name,
                                                                "critic value: higher says real")
        viz.add_figure(writer, "eval/discriminator_scores",
                       viz.plot_histograms(panels, xlabel, f"{what}, step {step}"), step)

    def _log_image_grids(self, writer, generator: torch.nn.Module, fixed: dict, step: int) -> None:
        noise = fixed["noise"].to(self.device)
        spherical = self.config.model.noise == "gaussian"
        conditional = fixed.get("labels") is not None
        names = self.data.images.kept_names
        if conditional:  # a row per class, a column per noise vector: style stays, the class changes
            classes = self.data.num_classes
            per_class = max(1, min(noise.shape[0] // classes, 8))
            labels = torch.arange(classes, device=self.device).repeat_interleave(per_class)
            images = generate(generator, noise[:per_class].repeat(classes, 1), labels)
            figure = viz.plot_grid((images + 1) / 2, per_class, row_names=names,
                                   title=f"G(z, class) at step {step}:\na row per class asked for",
                                   xlabel="a column per fixed noise vector z")
        else:
            figure = viz.plot_grid((generate(generator, noise) + 1) / 2, 8,
                                   title=f"G(z) for {noise.shape[0]} fixed noise vectors z\nstep {step}")
        viz.add_figure(writer, "samples/fixed_noise", figure, step)
        rows = min(self.data.num_classes, INTERPOLATION_ROWS) if conditional else 4
        ends = fixed["ends"].to(self.device)
        path = torch.cat([interpolate(ends[2 * row], ends[2 * row + 1], INTERPOLATION_STEPS, spherical)
                          for row in range(rows)])
        path_labels = (torch.arange(rows, device=self.device).repeat_interleave(INTERPOLATION_STEPS)
                       if conditional else None)
        figure = viz.plot_grid(
            (generate(generator, path, path_labels) + 1) / 2, INTERPOLATION_STEPS,
            row_names=names[:rows] if conditional else [f"pair {row + 1}" for row in range(rows)],
            column_names=["z_a"] + [""] * (INTERPOLATION_STEPS - 2) + ["z_b"],
            title=f"G along a path from z_a to z_b, step {step}",
            xlabel=f"{'spherical' if spherical else 'straight'} interpolation, {INTERPOLATION_STEPS} steps")
        viz.add_figure(writer, "samples/interpolation", figure, step)

    def _log_image_statistics(self, writer, models: GANModels, result: dict, step: int) -> None:
        """Class histogram, requested-vs-recognised classes, D's scores and pixel values, real vs generated."""
        images: ImageSet = self.data.images
        if "class_histogram" in result:
            histogram = result["class_histogram"]
            figure = viz.plot_class_histogram(list(histogram.values()), list(histogram),
                                              f"classes of generated images, step {step}")
            viz.add_figure(writer, "eval/class_histogram", figure, step)
        count = self.config.eval_samples()
        conditional = self.config.model.kind == "conditional"
        labels = (torch.arange(count) % self.data.num_classes).to(self.device) if conditional else None
        fakes = generate(models.generators["G"], self._eval_noise(count), labels)
        if conditional and self.classifier is not None:  # the same samples the metric classified
            _, recognised = self.classifier.embed(fakes)
            matrix = torch.zeros(self.data.num_classes, len(self.classifier.classes), dtype=torch.long)
            matrix.index_put_((labels.cpu(), recognised.cpu()), torch.ones(count, dtype=torch.long), accumulate=True)
            accuracy = result.get("conditional_accuracy")
            asked = f"{100 * accuracy:.0f}% as asked, " if accuracy is not None else ""
            figure = viz.plot_confusion(matrix, images.kept_names, self.classifier.classes,
                                        title=f"class asked for vs class seen\n{asked}step {step}",
                                        row_label="class asked of G", column_label="class the classifier sees")
            viz.add_figure(writer, "eval/requested_vs_recognised", figure, step)
        split = self.data.selection_split  # the real images the evaluations measure against
        split_images, split_labels = images.split(split)
        real = to_signed(split_images[:count])  # as many real images as there are, up to count
        real_labels = split_labels[:real.shape[0]] if conditional else None
        critic = models.discriminators["D"]
        panels = [("D", {"real": _scores(critic, real, real_labels), "generated": _scores(critic, fakes, labels)})]
        self._log_scores(writer, panels, f"discriminator on real ({split}) vs generated images", step)
        pixels = [("pixels", {f"real ({split})": (real.float().cpu() + 1) / 2, "generated": (fakes.cpu() + 1) / 2})]
        viz.add_figure(writer, "eval/pixel_values", viz.plot_histograms(
            pixels, "pixel value (0 black, 1 white)", f"pixel values, real vs generated, step {step}"), step)

    def _log_cycle(self, writer, models: GANModels, step: int) -> None:
        domain_a, domain_b = self.data.domains
        split = self.data.selection_split  # the real images the evaluations measure against
        (images_a, _), (images_b, _) = domain_a.split(split), domain_b.split(split)
        named = {"A": "/".join(domain_a.kept_names), "B": "/".join(domain_b.kept_names)}
        for tag, images, forward, backward, source, target in (
                ("samples/A_to_B_to_A", images_a[:CYCLE_ROWS], "G_AB", "G_BA", "A", "B"),
                ("samples/B_to_A_to_B", images_b[:CYCLE_ROWS], "G_BA", "G_AB", "B", "A")):
            real = to_signed(images)
            there = translate(models.generators[forward], real)
            back = translate(models.generators[backward], there)
            triples = torch.stack([real, there, back], dim=1).flatten(0, 1)  # a, G(a), F(G(a)), …
            figure = viz.plot_grid((triples + 1) / 2, 3, column_names=[f"real {source}", f"{forward}(·)",
                                                                       f"{backward}({forward}(·))"],
                                   title=f"{source}: {named[source]} → {target}: {named[target]} → back\n"
                                         f"{split} images, step {step}")
            viz.add_figure(writer, tag, figure, step)
        count = self.config.eval_samples()
        real_a, real_b = to_signed(images_a[:count]), to_signed(images_b[:count])
        fake_b, fake_a = translate(models.generators["G_AB"], real_a), translate(models.generators["G_BA"], real_b)
        panels = [("D_A", {"real A": _scores(models.discriminators["D_A"], real_a),
                           "G_BA(B)": _scores(models.discriminators["D_A"], fake_a)}),
                  ("D_B", {"real B": _scores(models.discriminators["D_B"], real_b),
                           "G_AB(A)": _scores(models.discriminators["D_B"], fake_b)})]
        self._log_scores(writer, panels, "discriminators on real vs translated", step)


@torch.no_grad()
def _scores(critic: torch.nn.Module, samples: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """D's raw scores (eval mode, in chunks) for ``samples``, cut to whole packs; on the CPU."""
    pack = getattr(critic, "pack", 1)
    count = samples.shape[0] // pack * pack
    samples, labels = samples[:count], None if labels is None else labels[:count]
    chunk = max(pack, CHUNK // pack * pack)  # every chunk, the last one too, holds whole packs
    was_training = critic.training
    critic.eval()
    scores = [critic(samples[start:start + chunk].float(), None if labels is None else labels[start:start + chunk])
              for start in range(0, count, chunk)]
    critic.train(was_training)
    return torch.cat(scores).float().cpu() if scores else torch.zeros(0)


def score(result: dict) -> float | None:
    """Higher is better: what ``best.pt`` keeps (None: nothing measured)."""
    if "modes_captured" in result:
        return result["modes_captured"] + result["high_quality"]
    if "fid" in result:
        return -result["fid"]
    if "cycle_error" in result:
        return -result["cycle_error"]
    return None


def scalars(result: dict, prefix: str = "eval") -> dict[str, float]:
    """The plain numbers of an evaluation, as ``<prefix>/<name>`` TensorBoard scalars.

    ``prefix``: ``val`` or ``test`` for images (the split measured against),
    ``eval`` for a 2-D mixture's fresh samples.
    """
    return {f"{prefix}/{key}": float(value) for key, value in result.items() if isinstance(value, (int, float))}


def named(result: dict, prefix: str) -> dict:
    """``result``'s keys with ``prefix`` (``val_``, ``test_``; "" for a 2-D mixture), for summary.json."""
    return {f"{prefix}{key}": value for key, value in result.items()}


def make_evaluator(config: GANConfig, data: GANData, device: torch.device, say) -> tuple[Evaluator, dict]:
    """The run's evaluator and what to remember about it in checkpoints.

    Image metrics need the evaluation classifier: ``eval.classifier`` or the
    cached one (trained now if missing). A cycle GAN uses it only when both
    domains come from the same dataset.
    """
    datasets = ({data.images.dataset} if data.images is not None
                else {d.dataset for d in data.domains} if data.domains is not None else set())
    classifier = None
    if data.images is not None and data.images.custom:  # data.path: no evaluation classifier knows them
        note = ("skipped: FID, class histogram and conditional accuracy need an evaluation classifier of "
                "these images, and dlx has none for your own images (data.path); samples are drawn")
        if config.eval.image_metrics:
            say(f"image metrics {note}")
        return Evaluator(config, data, device, None), {"image_metrics": note}
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
    weights = sampling_weights(state)  # the averaged generators (optim.ema) where the run kept them
    for role, net in models.all().items():
        load_weights(net, weights[role], saved.path, f"{role} network")
        net.to(device).eval()
    return models


def evaluate_run(run_dir: str | Path, which: str = "best", data_dir: str | None = None) -> dict:
    """``dlx eval``: the run's metrics at a checkpoint, computed afresh."""
    from dlx.checkpoint import default_device, load_saved

    saved = load_saved(run_dir, "gan", GANConfig, which, data_dir)
    config, state, device = saved.config, saved.state, default_device()
    data = load_gan_data(config, device, validation=False)  # images: the test split, as summary.json's test_*
    models = saved_models(saved, device)
    saved_classifier = state.get("eval_classifier")
    image_set = data.images if data.images is not None else (data.domains or [None])[0]
    if saved_classifier and not config.eval.classifier and image_set is not None:
        try:  # the classifier the run was measured with, while it still exists
            config.eval.classifier = str(check_classifier_run(saved_classifier, image_set.dataset))
        except DlxError:
            pass  # gone: fall back to the cached one
    evaluator, extra = make_evaluator(config, data, device, print)
    result = evaluator.evaluate(models, "test")
    prefix = "" if data.mixture is not None else "test_"
    return {"run_dir": str(run_dir), "checkpoint": which, "step": int(state["step"]), **named(result, prefix),
            **extra}
