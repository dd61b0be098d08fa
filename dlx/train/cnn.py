"""``dlx train-cnn``: image classification on the MNIST family.

Reads top to bottom: load the images into memory, build the model, then
for each epoch shuffle with a seeded generator, step through index slices,
evaluate on the test split, log, checkpoint. Everything around the loop
(run directory, DDP, signals, checkpoints) is ``Session``'s job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from dlx import metrics, viz
from dlx.configs.cnn import CNNConfig
from dlx.models.cnn import build_cnn
from dlx.optim import grad_norm, lr_at, make_optimizer, set_lr
from dlx.errors import ConfigError
from dlx.resume import read_meta
from dlx.session import Session

FAMILY = "cnn"
EVAL_BATCH = 1000


@dataclass
class ImageData:
    """The whole dataset as tensors on the training device."""

    train_images: torch.Tensor  # uint8, N×H×W
    train_labels: torch.Tensor  # int64, N
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    mean: float  # of training pixels in [0, 1], for normalisation
    std: float


def load_images(config: CNNConfig, device: torch.device, progress: bool = True) -> ImageData:
    """Find (or download) the dataset, apply the limits, move it to ``device``."""
    from dlx.data import vision

    data = vision.load(config.data.dataset, data_dir=config.data.data_dir,
                       download=config.data.download, progress=progress)
    train_images, train_labels = data.train_images, data.train_labels
    test_images, test_labels = data.test_images, data.test_labels
    if config.data.limit_train:
        train_images, train_labels = train_images[: config.data.limit_train], train_labels[: config.data.limit_train]
    if config.data.limit_test:
        test_images, test_labels = test_images[: config.data.limit_test], test_labels[: config.data.limit_test]
    pixels = train_images.float().div_(255)
    return ImageData(
        train_images.to(device), train_labels.to(device), test_images.to(device), test_labels.to(device),
        list(data.classes), float(pixels.mean()), float(pixels.std()),
    )


def as_input(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 N×H×W → normalised float N×1×H×W."""
    return (images.unsqueeze(1).float().div_(255) - mean) / std


def epoch_permutation(seed: int, epoch: int, count: int, device: torch.device) -> torch.Tensor:
    """The shuffle for ``epoch``: a pure function of (seed, epoch), same on every rank."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator).to(device)


@dataclass
class Loop:
    """What one epoch of training reads and updates."""

    config: CNNConfig
    session: Session
    data: ImageData
    model: torch.nn.Module  # unwrapped: state dicts, evaluation, pictures
    train_model: torch.nn.Module  # what the step runs: maybe DDP / compiled
    optimizer: torch.optim.Optimizer
    steps_per_epoch: int
    total_steps: int
    shard_size: int
    # Where the run is; saved in every checkpoint so a resume continues exactly.
    position: dict

    def save(self, best: bool = False) -> None:
        self.session.save_checkpoint(
            {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
             "step": self.position["step"], "position": dict(self.position),
             "normalize": {"mean": self.data.mean, "std": self.data.std}, "classes": self.data.classes},
            best=best,
        )


def train(config: CNNConfig, argv: list[str] | None = None, resume_dir: str | Path | None = None) -> Path | None:
    """Run one training; returns the run directory (None on ranks other than 0)."""
    if not config.run.name:
        config.run.name = f"{config.model.name}-{config.data.dataset}"
    with Session(FAMILY, config, argv, resume_dir) as session:
        data = load_images(config, session.device, progress=session.is_main)
        model = build_cnn(config.model, 1, data.train_images.shape[-1], len(data.classes))
        train_model = session.prepare_model(model)
        optimizer = make_optimizer(model.parameters(), config.optim)
        # Each rank takes an equal shard of the same permutation.
        shard_size = data.train_images.shape[0] // session.world_size
        if shard_size == 0:
            raise ConfigError([f"data.limit_train: {data.train_images.shape[0]} images cannot be "
                               f"shared by {session.world_size} processes"])
        steps_per_epoch = max(1, -(-shard_size // config.optim.batch_size))
        position = {"step": 0, "epoch": 0, "batch": 0, "best_accuracy": -1.0, "epoch_sums": [0.0, 0, 0]}
        state = session.resume_state()
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            position = state["position"]
            check_resume_position(position, config.optim.epochs, session)
        loop = Loop(config, session, data, model, train_model, optimizer, steps_per_epoch,
                    steps_per_epoch * config.optim.epochs, shard_size, position)
        run_dir = session.open_run()
        session.print(f"run directory: {run_dir}")
        if state is not None:
            from dlx.checkpoint import set_rng_state

            set_rng_state(state["rng"])  # last, so nothing above consumes randomness

        result: dict = {}
        with session.progress(loop.total_steps, f"{config.model.name} on {config.data.dataset}") as bar:
            bar.update(position["step"])
            for epoch in range(position["epoch"], config.optim.epochs):
                train_loss, train_accuracy = run_epoch(loop, epoch, bar)
                result = evaluate(model, data, session)
                improved = result["accuracy"] > position["best_accuracy"]
                position.update(epoch=epoch + 1, batch=0, epoch_sums=[0.0, 0, 0],
                                best_accuracy=max(position["best_accuracy"], result["accuracy"]))
                session.log_scalars(position["step"], {
                    "train/epoch_loss": train_loss, "train/accuracy": train_accuracy,
                    "val/loss": result["loss"], "val/accuracy": result["accuracy"],
                })
                if session.is_main:
                    log_pictures(session.writer, model, data, result, position["step"])
                bar.log(f"epoch {epoch + 1}/{config.optim.epochs}  train loss {train_loss:.4f}  "
                        f"acc {train_accuracy:.4f}  test loss {result['loss']:.4f}  acc {result['accuracy']:.4f}")
                loop.save(best=improved)
                if session.should_stop():
                    session.interrupt()

        if not result:  # resumed a run that had already finished its epochs
            result = evaluate(model, data, session)
        if session.is_main:
            log_embedding(session.writer, model, data, config.embedding_samples, position["step"])
        summary = {
            "family": FAMILY,
            "test_accuracy": result["accuracy"],
            "test_loss": result["loss"],
            "best_test_accuracy": position["best_accuracy"],
            "per_class_accuracy": dict(zip(data.classes, result["per_class"])),
            "parameters": sum(p.numel() for p in model.parameters()),
            "epochs": config.optim.epochs,
            "global_step": position["step"],
            "train_images": int(data.train_images.shape[0]),
            "train_seconds": round(time.time() - session.started_at, 2),
        }
        session.finish(summary, {
            "hparam/test_accuracy": summary["test_accuracy"],
            "hparam/test_loss": summary["test_loss"],
            "hparam/best_test_accuracy": summary["best_test_accuracy"],
        })
        return run_dir if session.is_main else None


def run_epoch(loop: Loop, epoch: int, bar) -> tuple[float, float]:
    """One pass over this rank's shard, from the saved batch position on.

    Returns the epoch's mean training loss and accuracy (over this rank).
    """
    config, session, data, position = loop.config, loop.session, loop.data, loop.position
    batch_size = config.optim.batch_size
    permutation = epoch_permutation(config.run.seed, epoch, data.train_images.shape[0], session.device)
    shard = permutation[session.rank::session.world_size][:loop.shard_size]
    # Running sums stay on the device: reading them every step would sync a GPU.
    saved_loss, saved_correct, saved_seen = position["epoch_sums"]
    loss_sum = torch.tensor(float(saved_loss), dtype=torch.float64, device=session.device)
    correct = torch.tensor(int(saved_correct), device=session.device)
    seen = int(saved_seen)
    seen_since, since = 0, time.time()
    loop.train_model.train()
    for batch_index in range(position["batch"], loop.steps_per_epoch):
        indices = shard[batch_index * batch_size:(batch_index + 1) * batch_size]
        images = as_input(data.train_images[indices], data.mean, data.std)
        labels = data.train_labels[indices]
        lr = lr_at(position["step"], loop.total_steps, loop.steps_per_epoch, config.optim)
        set_lr(loop.optimizer, lr)
        with session.autocast():
            logits = loop.train_model(images)
        loss = F.cross_entropy(logits.float(), labels)
        loop.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = None  # computed only when logged (or free from clipping)
        if config.optim.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(loop.model.parameters(), config.optim.grad_clip)
        loop.optimizer.step()

        loss_sum += loss.detach().double() * labels.shape[0]
        correct += (logits.detach().argmax(1) == labels).sum()
        seen += labels.shape[0]
        seen_since += labels.shape[0]
        position["step"] += 1
        position["batch"] = batch_index + 1
        position["epoch_sums"] = [loss_sum, correct, seen]  # tensors until saved
        step = position["step"]
        last_batch = batch_index + 1 == loop.steps_per_epoch
        checkpoint_now = bool(config.run.checkpoint_every) and step % config.run.checkpoint_every == 0
        stop_now = session.should_stop()
        if step % config.run.log_every == 0 or last_batch or checkpoint_now or stop_now:
            session.check_finite(loss_sum, step)  # also guards every checkpoint
            if norm is None:  # gradients are intact until the next zero_grad
                norm = grad_norm(loop.model.parameters())
            images_per_s = seen_since * session.world_size / max(time.time() - since, 1e-9)
            session.log_scalars(step, {"train/loss": float(loss.detach()), "opt/lr": lr,
                                       "opt/grad_norm": float(norm), "perf/images_per_s": images_per_s})
            bar.update(step, loss=float(loss_sum) / seen, acc=int(correct) / seen, img_s=round(images_per_s))
            seen_since, since = 0, time.time()
        else:
            bar.update(step)
        if checkpoint_now or stop_now:
            position["epoch_sums"] = [float(loss_sum), int(correct), seen]
            loop.save()
        if stop_now:
            session.interrupt()
    return float(loss_sum) / max(seen, 1), int(correct) / max(seen, 1)


def check_resume_position(position: dict, epochs: int, session: Session) -> None:
    """Refuse a resume that would shorten the run or redo a finished one."""
    trained = position["epoch"] + (1 if position["batch"] else 0)
    if trained > epochs:
        raise ConfigError([f"optim.epochs: the run already trained {trained} epochs; cannot stop at {epochs}"])
    if position["epoch"] == epochs and read_meta(session.resume_dir).get("status") == "completed":
        raise ConfigError([f"optim.epochs: the run already completed {epochs} epochs; "
                           f"pass --epochs N with N > {epochs} to train longer"])


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: ImageData, session: Session | None = None) -> dict:
    """Test-split loss, accuracy and confusion matrix (sharded over DDP ranks)."""
    was_training = model.training
    model.eval()
    rank, world = (session.rank, session.world_size) if session else (0, 1)
    count = data.test_images.shape[0]
    num_classes = len(data.classes)
    device = data.test_images.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    wrong_indices = []
    for start in range(rank * EVAL_BATCH, count, EVAL_BATCH * world):
        images = as_input(data.test_images[start:start + EVAL_BATCH], data.mean, data.std)
        labels = data.test_labels[start:start + EVAL_BATCH]
        with session.autocast() if session else torch.autocast(device.type, enabled=False):
            logits = model(images).float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        predictions = logits.argmax(1)
        confusion += metrics.confusion_matrix(predictions, labels, num_classes)
        wrong_indices.append(start + torch.nonzero(predictions != labels).flatten())
    if session is not None:
        loss_sum = session.all_reduce_sum(loss_sum)
        confusion = session.all_reduce_sum(confusion)
    model.train(was_training)
    confusion = confusion.cpu()
    return {
        "loss": float(loss_sum) / count,
        "accuracy": metrics.accuracy_from_confusion(confusion),
        "per_class": metrics.per_class_accuracy(confusion),
        "confusion": confusion,
        "wrong": torch.cat(wrong_indices).cpu() if wrong_indices else torch.zeros(0, dtype=torch.long),
    }


@torch.no_grad()
def log_pictures(writer, model, data: ImageData, result: dict, step: int) -> None:
    """Filters, feature maps, confusion matrix, misclassified images, histograms."""
    writer.add_image("eval/confusion_matrix", viz.confusion_figure(result["confusion"], data.classes),
                     step, dataformats="HWC")
    wrong = result["wrong"][:64]
    if len(wrong):
        images = data.test_images[wrong.to(data.test_images.device)].float().div(255)
        writer.add_image("eval/misclassified", viz.image_grid(images, columns=8), step)
    if model.first_conv is not None:
        weights = model.first_conv.weight.detach().cpu()  # out × in × k × k
        writer.add_image("filters/first_conv", viz.image_grid(weights[:, :1], normalize_each=True), step)
        was_training = model.training
        model.eval()
        fixed_image = as_input(data.test_images[:1], data.mean, data.std)
        maps = model.first_conv(fixed_image)[0].unsqueeze(1)  # channels × 1 × H × W
        model.train(was_training)
        writer.add_image("feature_maps/first_conv", viz.image_grid(maps, normalize_each=True), step)
    for name, parameter in model.named_parameters():
        writer.add_histogram(f"weights/{name}", parameter.detach().float().cpu(), step)


@torch.no_grad()
def log_embedding(writer, model, data: ImageData, count: int, step: int) -> None:
    """Penultimate-layer features of the first ``count`` test images for the projector."""
    if count <= 0:
        return
    was_training = model.training
    model.eval()
    images = data.test_images[:count]
    features = model.features(as_input(images, data.mean, data.std)).float().cpu()
    model.train(was_training)
    labels = [data.classes[int(label)] for label in data.test_labels[:count].cpu()]
    writer.add_embedding(features, metadata=labels, label_img=images.unsqueeze(1).float().div(255).cpu(),
                         global_step=step, tag="penultimate_features")


def evaluate_run(run_dir: str | Path, which: str = "best", data_dir: str | None = None) -> dict:
    """``dlx eval``: test metrics of a saved checkpoint, without training."""
    from dlx import checkpoint, config as config_mod
    from dlx.resume import run_config

    run_dir = Path(run_dir)
    config = config_mod.build(CNNConfig, base=run_config(run_dir, FAMILY))
    if data_dir:
        config.data.data_dir = data_dir
    path = run_dir / "checkpoints" / f"{which}.pt"
    if which == "best" and not path.is_file():  # e.g. stopped before the first evaluation
        path = run_dir / "checkpoints" / "last.pt"
    state = checkpoint.load(path, FAMILY)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = load_images(config, device)
    data.mean, data.std = state["normalize"]["mean"], state["normalize"]["std"]
    model = build_cnn(config.model, 1, data.train_images.shape[-1], len(data.classes)).to(device)
    model.load_state_dict(state["model"])
    result = evaluate(model, data)
    return {
        "run_dir": str(run_dir), "checkpoint": which, "step": int(state["step"]),
        "test_accuracy": result["accuracy"], "test_loss": result["loss"],
        "per_class_accuracy": dict(zip(data.classes, result["per_class"])),
    }
