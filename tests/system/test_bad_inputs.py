"""The bad-input matrix: what a careless or hostile user can type, each case one line and exit 2.

Every case runs ``dlx`` in this process inside a sandbox folder (the working
directory, holding a copy of one tiny finished run per family and whatever
bad file the case writes) and asserts that:

- the exit code is 2 (or the case's documented code),
- stderr is exactly one line, starting with ``dlx: error:``,
- no "Traceback" appears anywhere in the output,
- nothing in the sandbox changed: no new run directory, no new, removed or
  rewritten file (sizes, mtimes and hashes before and after).

The three runs are trained once per module (a few seconds each) and copied
into each case's sandbox, so a case may damage its copy freely.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.cnn_helpers import cli

FASHION_DIR = "/usr/share/datasets/fashion-mnist"

# Flags that keep every trainer tiny: a bad input that slipped through would
# train for a second or two and then fail its case, not run for minutes.
TINY = {
    "cnn": ["--model", "mlp", "--set", "model.hidden=[16]", "--limit-train", "256", "--set",
            "data.limit_test=100", "--set", "embedding_samples=0", "--batch-size", "128", "--epochs", "1",
            "--no-progress", "--data-dir", FASHION_DIR],
    "transformer": ["--set", "data.train_size=128", "--set", "data.test_size=16", "--d-model", "16",
                    "--heads", "2", "--ff", "32", "--layers", "1", "--batch-size", "64", "--epochs", "1",
                    "--no-progress"],
    "gan": ["--steps-per-epoch", "10", "--set", "eval.samples=200", "--batch-size", "64", "--set",
            "model.g_hidden=[16]", "--set", "model.d_hidden=[16]", "--epochs", "1", "--no-progress"],
}
LOCK_FILE = ".lock"  # a run's lock: its pid is rewritten by every attempt to resume it (by design)


def train(family: str, *extra: str) -> list[str]:
    """``dlx train-FAMILY`` with the tiny flags, then ``extra`` (later flags win)."""
    return [f"train-{family}", *TINY[family], *extra]


# --------------------------------------------------------------------------
# the sandbox


@pytest.fixture(scope="module")
def targets(tmp_path_factory) -> Path:
    """One tiny completed run per family, trained once for the whole module."""
    root = tmp_path_factory.mktemp("targets")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # runs_dir "runs" (relative) is saved: the copies resume in their sandbox
        for family in ("cnn", "transformer", "gan"):
            assert cli([*train(family), "--runs-dir", "runs", "--name", family]) == 0
    return root / "runs"


@dataclass
class Sandbox:
    """The working folder of one case; ``runs/`` holds a copy of the target runs."""

    root: Path

    def run(self, family: str) -> Path:
        (run_dir,) = [p for p in (Path("runs") / family).iterdir() if p.is_dir()]
        return run_dir

    def write(self, name: str, content: str | bytes) -> Path:
        path = Path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def yaml(self, name: str, data) -> Path:
        return self.write(name, yaml.safe_dump(data))

    def checkpoint(self, family: str, change: Callable[[dict], object], which: str = "last") -> Path:
        """Rewrite the family's run's checkpoint with ``change(state)`` applied; the run's path."""
        from dlx import checkpoint

        run_dir = self.run(family)
        path = run_dir / "checkpoints" / f"{which}.pt"
        state = checkpoint.load(path)
        state.pop("format_version")
        change(state)
        checkpoint.save(path, state)
        return run_dir

    def meta(self, of: str, **changes) -> Path:
        """Rewrite the ``of`` family's run's meta.json with ``changes``; the run's path."""
        run_dir = self.run(of)
        meta_path = run_dir / "meta.json"
        meta = json.loads(meta_path.read_text())
        meta.update(changes)
        meta_path.write_text(json.dumps(meta))
        return run_dir


@pytest.fixture
def sandbox(targets, tmp_path, monkeypatch) -> Sandbox:
    shutil.copytree(targets, tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    # dlx's caches (datasets, evaluation classifiers) inside the sandbox too: a write there is seen.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return Sandbox(tmp_path)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root``: (kind, size, mtime, hash) for files, kind for the rest."""
    state: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            state[key] = ("link", str(path.readlink()))
        elif path.is_dir():
            state[key] = ("dir",)
        elif path.name == LOCK_FILE:
            state[key] = ("lock",)
        else:
            info = path.stat()
            state[key] = ("file", info.st_size, info.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return state


# --------------------------------------------------------------------------
# the cases


@dataclass(frozen=True)
class Case:
    """One bad input: what is typed, what the one line must say, what is prepared first.

    In ``argv``, ``{cnn}``, ``{transformer}`` and ``{gan}`` stand for the runs
    and ``{x}`` for what ``setup`` returned. ``says`` is a part of the error
    line that shows the intended check caught it (not some other one).
    """

    id: str
    says: str
    argv: tuple[str, ...]
    setup: Callable[[Sandbox], object] | None = None
    code: int = 2


def case(id: str, says: str, *argv: str, setup: Callable[[Sandbox], object] | None = None,
         code: int = 2) -> Case:
    return Case(id, says, tuple(str(a) for a in argv), setup, code)


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\noptim: {{lr: *a{levels}}}\n"


def sweep_file(sweep) -> Callable[[Sandbox], Path]:
    return lambda s: s.yaml("sweep.yaml", {"sweep": sweep})


def resize_first(key: str):
    """A change that gives the state dict's ``key`` another shape (another architecture)."""
    import torch

    def change(state: dict) -> None:
        weights = state["model"] if "model" in state else state["models"]["G"]
        weights[key] = torch.zeros(*[size + 1 for size in weights[key].shape])
    return change


def drop(*keys: str):
    def change(state: dict) -> None:
        for key in keys:
            parent = state
            *path, last = key.split("/")
            for part in path:
                parent = parent[part]
            del parent[last]
    return change


def optimizer_state_of(hidden: int):
    """A change that puts an Adam state of a ``hidden``-wide network in place of the CNN's."""
    import torch

    def change(state: dict) -> None:
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, hidden), torch.nn.Linear(hidden, 10))
        optimizer = torch.optim.Adam(net.parameters())
        net(torch.zeros(1, 784)).sum().backward()
        optimizer.step()
        state["optimizer"] = optimizer.state_dict()  # as many parameters as the CNN's, other shapes
    return change


def other_family_checkpoint(target: str, source: str):
    def setup(s: Sandbox) -> Path:
        run_dir = s.run(target)
        shutil.copy(s.run(source) / "checkpoints" / "last.pt", run_dir / "checkpoints" / "last.pt")
        return run_dir
    return setup


def file_as(relative: str, content: bytes):
    """Replace a file of the cnn run (e.g. ``checkpoints/last.pt``) with ``content``."""
    def setup(s: Sandbox) -> Path:
        run_dir = s.run("cnn")
        (run_dir / relative).write_bytes(content)
        return run_dir
    return setup


def truncated(family: str, which: str = "last"):
    def setup(s: Sandbox) -> Path:
        run_dir = s.run(family)
        path = run_dir / "checkpoints" / f"{which}.pt"
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
        return run_dir
    return setup


def interrupted(family: str, change: Callable[[dict], object] | None = None):
    """The family's run marked interrupted (resumable), its checkpoint changed by ``change``."""
    def setup(s: Sandbox) -> Path:
        run_dir = s.meta(family, status="interrupted")
        if change is not None:
            s.checkpoint(family, change)
        return run_dir
    return setup


_HELD: list = []  # run locks a case holds (released after it)


def _torch_save(s: Sandbox, family: str, which: str, payload) -> Path:
    import torch

    run_dir = s.run(family)
    torch.save(payload, run_dir / "checkpoints" / f"{which}.pt")
    return run_dir


def _replace_with_dir(s: Sandbox) -> Path:
    run_dir = s.run("cnn")
    path = run_dir / "checkpoints" / "last.pt"
    path.unlink()
    path.mkdir()
    return run_dir


def _resize_any(state: dict) -> None:
    """Another architecture for the transformer: its first weight matrix one row wider."""
    import torch

    key = next(k for k, v in state["model"].items() if v.dim() == 2)
    state["model"][key] = torch.zeros(state["model"][key].shape[0] + 1, state["model"][key].shape[1])


def _corrupt(s: Sandbox, family: str, name: str, text: str) -> Path:
    run_dir = s.run(family)
    (run_dir / name).write_text(text)
    return run_dir


def _remove(s: Sandbox, family: str, name: str) -> Path:
    run_dir = s.run(family)
    (run_dir / name).unlink()
    return run_dir


def _symlinked_parent(s: Sandbox) -> Path:
    """``runs/evil`` a symbolic link to a folder outside the runs folder that holds a run."""
    outside = Path("outside")
    shutil.copytree(s.run("cnn"), outside / "run")
    Path("runs/evil").symlink_to(outside.resolve())
    return Path("runs/evil/run")


def _live(s: Sandbox, family: str) -> Path:
    """The run marked running by this very process (alive), holding its lock."""
    import os
    import socket

    s.meta(family, status="running", pid=os.getpid(), host=socket.gethostname())
    return _locked(s, family)


def _locked(s: Sandbox, family: str) -> Path:
    """The run's lock held, as another dlx process training or resuming it would."""
    from dlx.rundir import RunLock

    run_dir = s.run(family)
    _HELD.append(RunLock(run_dir))
    return run_dir


def _corrupt_mnist(s: Sandbox) -> str:
    """A data folder whose four MNIST files are gzip headers followed by garbage."""
    for split, kind in (("train", "images-idx3"), ("train", "labels-idx1"), ("t10k", "images-idx3"),
                        ("t10k", "labels-idx1")):
        s.write(f"mnist/{split}-{kind}-ubyte.gz", b"\x1f\x8b garbage")
    return "mnist"


BROKEN_SWEEP = "runs/sweeps/20260101-000000-bad-abcdef"


CONFIG_CASES = [
    case("config-binary-garbage", "is not UTF-8 text", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.write("garbage.yaml", bytes(range(256)) * 4)),
    case("config-not-utf8", "is not UTF-8 text", *train("transformer"), "-c", "{x}",
         setup=lambda s: s.write("latin1.yaml", "run:\n  name: caf\xe9\n".encode("latin-1"))),
    case("config-bad-yaml", "line 2: not valid YAML", *train("gan"), "-c", "{x}",
         setup=lambda s: s.write("bad.yaml", "optim: {lr: [1, 2\n")),
    case("config-tab-indent", "not valid YAML", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.write("tab.yaml", "optim:\n\tlr: 0.1\n")),
    case("config-a-list", "expected a mapping at the top, got a list", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.write("list.yaml", "- optim\n- lr\n")),
    case("config-a-scalar", "expected a mapping at the top, got int", *train("transformer"), "-c", "{x}",
         setup=lambda s: s.write("s.yaml", "42\n")),
    case("config-section-a-scalar", "optim: expected a mapping, got int", *train("gan"), "-c", "{x}",
         setup=lambda s: s.write("s.yaml", "optim: 3\n")),
    case("config-wrong-type", "optim.lr: expected float", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.yaml("t.yaml", {"optim": {"lr": "fast"}})),
    case("config-bool-for-int", "eval.beam: expected int, got bool", *train("transformer"), "-c", "{x}",
         setup=lambda s: s.yaml("t.yaml", {"eval": {"beam": True}})),
    case("config-unknown-key", "optim.lrr: unknown key (did you mean 'lr'?)", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.yaml("u.yaml", {"optim": {"lrr": 0.1}})),
    case("config-unknown-section", "trainer: unknown key", *train("gan"), "-c", "{x}",
         setup=lambda s: s.yaml("u.yaml", {"trainer": {}})),
    case("config-inf", "optim.lr: must be a finite number", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.write("inf.yaml", "optim: {lr: .inf}\n")),
    case("config-nan", "loss.gp_weight: must be a finite number", *train("gan"), "-c", "{x}",
         setup=lambda s: s.write("nan.yaml", "loss: {gp_weight: .nan}\n")),
    case("config-huge-number", "optim.lr: must be a finite number", *train("transformer"), "-c", "{x}",
         setup=lambda s: s.write("big.yaml", "optim: {lr: 1e999}\n")),
    case("config-alias-bomb", "expands to more than", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.write("bomb.yaml", alias_bomb())),
    case("config-self-reference", "refers to itself", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.write("loop.yaml", "optim: &a {lr: 0.1, again: *a}\n")),
    case("config-deep-nesting", "nests too deeply", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.write("deep.yaml", "optim: " + "[" * 50_000 + "]" * 50_000 + "\n")),
    case("config-python-tag", "could not determine a constructor", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.write("tag.yaml", "optim: !!python/object/apply:os.system ['true']\n")),
    case("config-unhashable-key", "found unhashable key", *train("gan"), "-c", "{x}",
         setup=lambda s: s.write("key.yaml", "? [a, b]\n: 1\n")),
    case("config-huge-file", "the limit is", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.write("huge.yaml", "# pad\n" * 500_000)),
    case("config-a-directory", "is a directory, not a regular file", *train("cnn"), "-c", "{x}",
         setup=lambda s: Path("runs").resolve()),
    case("config-missing", "no-such.yaml does not exist", *train("transformer"), "-c", "no-such.yaml"),
    case("config-dev-zero", "/dev/zero is a character device, not a regular file", *train("cnn"), "-c", "/dev/zero"),
    case("config-impossible-layer", "kernel 64 with padding 0 does not fit", *train("cnn"), "-c", "{x}", "--model",
         "convnet", setup=lambda s: s.yaml("k.yaml", {"model": {"conv_layers": [{"channels": 8, "kernel": 64}]}})),
    case("config-zero-channels", "model.conv_layers[0].channels: must be >= 1", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.yaml("c.yaml", {"model": {"conv_layers": [{"channels": 0, "kernel": 3}]}})),
    case("inspect-cnn-garbage-config", "is not UTF-8 text", "inspect-shapes", "cnn", "-c", "{x}",
         setup=lambda s: s.write("g.yaml", b"\x00\xff\xfe garbage")),
    case("inspect-transformer-bad-yaml", "not valid YAML", "inspect-shapes", "transformer", "-c", "{x}",
         setup=lambda s: s.write("b.yaml", "model: {layers: [\n")),
    case("inspect-gan-config-directory", "is a directory, not a regular file", "inspect-shapes", "gan", "-c", "{x}",
         setup=lambda s: Path("runs").resolve()),
]

SET_CASES = [
    case("set-without-equals", "expected KEY=VALUE", *train("cnn"), "--set", "optim.lr"),
    case("set-empty-key", "expected KEY=VALUE", *train("cnn"), "--set", "=3"),
    case("set-unknown-key", "model.depth: unknown key", *train("transformer"), "--set", "model.depth=3"),
    case("set-bad-yaml-value", "model.g_hidden: expected a list", *train("gan"), "--set", "model.g_hidden=[16"),
    case("set-through-a-scalar", "optim.lr: expected float, got a mapping", *train("cnn"), "--set", "optim.lr.x=1"),
    case("set-nan", "optim.lr: must be a finite number", *train("transformer"), "--set", "optim.lr=nan"),
    case("set-alias", "model.hidden: expected a list", *train("cnn"), "--set", "model.hidden=*a"),
]

CLI_VALUE_CASES = [
    case("cnn-epochs-zero", "optim.epochs: must be >= 1, got 0", *train("cnn"), "--epochs", "0"),
    case("cnn-epochs-negative", "optim.epochs: must be >= 1, got -3", *train("cnn"), "--epochs", "-3"),
    case("cnn-batch-size-zero", "optim.batch_size: must be >= 1", *train("cnn"), "--batch-size", "0"),
    case("cnn-lr-negative", "optim.lr: must be > 0", *train("cnn"), "--lr", "-0.1"),
    case("cnn-lr-not-a-number", "Invalid value for '--lr'", *train("cnn"), "--lr", "fast"),
    case("cnn-limit-train-negative", "data.limit_train: must be >= 0", *train("cnn"), "--limit-train", "-5"),
    case("cnn-threads-negative", "run.threads: must be >= 1", *train("cnn"), "--threads", "-2"),
    case("cnn-seed-overflow", "run.seed: must be between", *train("cnn"), "--seed", str(2 ** 70)),
    case("cnn-unknown-model", "'resnet152' is not one of", *train("cnn"), "--model", "resnet152"),
    case("cnn-unknown-dataset", "'imagenet' is not one of", *train("cnn"), "--dataset", "imagenet"),
    case("cnn-unknown-optimizer", "'lion' is not one of", *train("cnn"), "--optimizer", "lion"),
    case("cnn-unknown-precision", "'fp8' is not one of", *train("cnn"), "--precision", "fp8"),
    case("cnn-unknown-device", "'tpu' is not one of", *train("cnn"), "--device", "tpu"),
    case("cnn-unknown-flag", "No such option: --heads", *train("cnn"), "--heads", "3"),
    case("cnn-missing-dataset", "dataset 'kmnist' not found locally", *train("cnn"), "--dataset", "kmnist",
         "--data-dir", "{x}", setup=lambda s: s.write("empty/.keep", "") and "empty"),
    case("cnn-data-dir-a-file", "data directory afile is a file, not a directory", *train("cnn"), "--data-dir", "{x}",
         setup=lambda s: s.write("afile", "x")),
    case("cnn-corrupt-dataset", "corrupt gzip data", *train("cnn"), "--dataset", "mnist", "--data-dir", "{x}",
         setup=lambda s: _corrupt_mnist(s)),
    case("transformer-heads-do-not-divide", "model.heads: 3 does not divide d_model 16", *train("transformer"),
         "--heads", "3"),
    case("transformer-layers-zero", "model.layers: must be >= 1", *train("transformer"), "--layers", "0"),
    case("transformer-d-model-zero", "model.d_model: must be >= 1", *train("transformer"), "--d-model", "0"),
    case("transformer-dropout-above-one", "model.dropout: must be in [0, 1)", *train("transformer"), "--dropout",
         "1.5"),
    case("transformer-window-negative", "model.window: must be >= 0", *train("transformer"), "--window", "-1"),
    case("transformer-beam-zero", "eval.beam: must be >= 1", *train("transformer"), "--beam", "0"),
    case("transformer-label-smoothing-two", "label_smoothing: must be in [0, 1)", *train("transformer"),
         "--label-smoothing", "2"),
    case("transformer-warmup-negative", "optim.warmup_steps: must be >= 0", *train("transformer"), "--warmup", "-10"),
    case("transformer-unknown-task", "'chess' is not one of", *train("transformer"), "--task", "chess"),
    case("transformer-unknown-pos", "'rotary' is not one of", *train("transformer"), "--pos", "rotary"),
    case("gan-noise-dim-negative", "model.noise_dim: must be >= 1", *train("gan"), "--noise-dim", "-2"),
    case("gan-d-steps-negative", "optim.d_steps: must be >= 1", *train("gan"), "--d-steps", "-1"),
    case("gan-steps-per-epoch-negative", "optim.steps_per_epoch: must be >= 1", *train("gan"), "--steps-per-epoch",
         "-1"),
    case("gan-eval-every-negative", "eval.every: must be >= 0", *train("gan"), "--eval-every", "-5"),
    case("gan-unknown-kind", "'diffusion' is not one of", *train("gan"), "--kind", "diffusion"),
    case("gan-unknown-loss", "'hinge2' is not one of", *train("gan"), "--loss", "hinge2"),
    case("gan-conditional-toy-data", "conditional needs class labels", *train("gan"), "--kind", "conditional"),
    case("gan-cycle-toy-data", "cycle translates images", *train("gan"), "--kind", "cycle"),
    case("gan-eval-classifier-missing", "run directory no/such/run does not exist", *train("gan"), "--dataset",
         "fashion-mnist", "--data-dir", FASHION_DIR, "--limit-train", "256", "--eval-classifier", "no/such/run"),
    case("gan-eval-classifier-not-cnn", "is a 'gan' run, not a 'cnn' run", *train("gan"), "--dataset", "fashion-mnist",
         "--data-dir", FASHION_DIR, "--limit-train", "256", "--eval-classifier", "{gan}"),
    case("gan-eval-samples-huge", "eval.samples: must be at most", *train("gan"), "--set", "eval.samples=1000000000"),
    case("gan-batch-larger-than-data", "is more than the 32 training images", *train("gan"), "--dataset",
         "fashion-mnist", "--data-dir", FASHION_DIR, "--limit-train", "32", "--set", "eval.image_metrics=false"),
]

NAME_CASES = [
    case("name-300-chars", "run.name: must be 1-120 letters", *train("cnn"), "--name", "n" * 300),
    case("name-newline", "got 'two\\nlines'", *train("transformer"), "--name", "two\nlines"),
    case("name-slash", "got '../escape'", *train("gan"), "--name", "../escape"),
    case("name-leading-dot", "got '.hidden'", *train("cnn"), "--name", ".hidden"),
    case("name-nul-via-config", "got 'a\\x00b'", *train("cnn"), "-c", "{x}",
         setup=lambda s: s.write("nul.yaml", 'run: {name: "a\\0b"}\n')),
    case("name-control-char", "got 'bell\\x07'", *train("gan"), "--set", "run.name=bell\a"),
    case("runs-dir-empty", "run.runs_dir: must name a directory", *train("gan"), "--set", "run.runs_dir="),
    case("runs-dir-a-file", "run.runs_dir: notadir exists and is not a directory", *train("cnn"), "--runs-dir", "{x}",
         setup=lambda s: s.write("notadir", "x")),
    case("runs-dir-under-a-file", "run.runs_dir: plainfile exists and is not a directory", *train("transformer"),
         "--runs-dir", "{x}/runs", setup=lambda s: s.write("plainfile", "x")),
]

DATA_FILE_CASES = [
    case("data-missing", "data file no-such.tsv does not exist", *train("transformer"), "--data", "no-such.tsv"),
    case("data-empty", "empty.tsv: no source<TAB>target lines found", *train("transformer"), "--data", "{x}",
         setup=lambda s: s.write("empty.tsv", "")),
    case("data-one-column", "one.tsv line 1: expected source<TAB>target, found 0 tabs", *train("transformer"), "--data",
         "{x}", setup=lambda s: s.write("one.tsv", "abc\ndef\n")),
    case("data-three-columns", "three.tsv line 1: expected source<TAB>target, found 2 tabs", *train("transformer"),
         "--data", "{x}", setup=lambda s: s.write("three.tsv", "a\tb\tc\nd\te\tf\n")),
    case("data-empty-target", "e.tsv line 1: empty source or target", *train("transformer"), "--data", "{x}",
         setup=lambda s: s.write("e.tsv", "a\t\nb\tc\n")),
    case("data-not-utf8", "l1.tsv: not UTF-8 text", *train("transformer"), "--data", "{x}",
         setup=lambda s: s.write("l1.tsv", "caf\xe9\tcoffee\nthe\tle\n".encode("latin-1"))),
    case("data-binary", "bin.tsv: not UTF-8 text", *train("transformer"), "--data", "{x}",
         setup=lambda s: s.write("bin.tsv", bytes(range(256)) * 8)),
    case("data-huge-line", "long.tsv line 2: longer than 4,096 characters", *train("transformer"), "--data", "{x}",
         setup=lambda s: s.write("long.tsv", "a\tb\n" + "x" * 1_000_000 + "\ty\n")),
    case("data-too-many-tokens", "tok.tsv line 2: 2,000 tokens", *train("transformer"), "--data", "{x}", "--tokens",
         "char", setup=lambda s: s.write("tok.tsv", "a\tb\n" + "x" * 2000 + "\ty\n")),
    case("data-a-directory", "dir.tsv is not a file", *train("transformer"), "--data", "{x}",
         setup=lambda s: s.write("dir.tsv/.keep", "") and "dir.tsv"),
    case("data-single-example", "needs at least 2 examples", *train("transformer"), "--data", "{x}",
         setup=lambda s: s.write("1.tsv", "a\tb\n")),
    case("data-conll-without-tags", "t.conll line 1: expected token<TAB>tag", *train("transformer"), "--data", "{x}",
         setup=lambda s: s.write("t.conll", "The\nDog\n\nRuns\n")),
    case("data-classify-one-column", "c.tsv line 1: expected text<TAB>label", *train("transformer"), "--task",
         "classify", "--data", "{x}", setup=lambda s: s.write("c.tsv", "great movie\nawful\n")),
    case("data-test-file-missing", "data file nope.tsv does not exist", *train("transformer"), "--data", "{x}",
         "--test-data", "nope.tsv",
         setup=lambda s: s.write("ok.tsv", "".join(f"{w}\t{w[::-1]}\n" for w in ("abc", "bcd", "cde", "def")))),
    case("data-test-labels-unseen", "labels 'neutral' do not occur in the training data", *train("transformer"),
         "--task", "classify", "--data", "{x}", "--test-data", "unseen.tsv",
         setup=lambda s: s.write("unseen.tsv", "meh\tneutral\n") and s.write("train.tsv", "good\tpos\nbad\tneg\n")),
    case("data-only-blank-lines", "blank.tsv: no source<TAB>target lines found", *train("transformer"), "--data", "{x}",
         setup=lambda s: s.write("blank.tsv", "\n\n\n")),
]

CHECKPOINT_CASES = [
    case("eval-truncated-checkpoint", "last.pt cannot be read (PytorchStreamReader failed reading zip archive", "eval",
         "{x}", "--checkpoint", "last", setup=truncated("cnn")),
    case("eval-empty-checkpoint", "last.pt cannot be read (EOFError)", "eval", "{x}", "--checkpoint", "last",
         setup=file_as("checkpoints/last.pt", b"")),
    case("eval-garbage-checkpoint", "best.pt cannot be read (PytorchStreamReader", "eval", "{x}",
         setup=file_as("checkpoints/best.pt", b"PK\x03\x04 not a zip")),
    case("eval-not-dlx-checkpoint", "best.pt was not written by dlx", "eval", "{x}",
         setup=lambda s: _torch_save(s, "cnn", "best", {"w": 1})),
    case("eval-pickled-object", "best.pt cannot be read (Weights only load failed)", "eval", "{x}",
         setup=lambda s: _torch_save(s, "cnn", "best", {"x": Path("/")})),
    case("eval-other-family-checkpoint", "belongs to a 'gan' run, not 'cnn'", "eval", "{x}", "--checkpoint", "last",
         setup=other_family_checkpoint("cnn", "gan")),
    case("eval-other-architecture", "does not fit this run's model: body.1.weight is 17×785 in the file but 16×784",
         "eval", "{x}", setup=lambda s: s.checkpoint("cnn", resize_first("body.1.weight"), "best")),
    case("eval-missing-model-key", "best.pt lacks key 'model'", "eval", "{x}",
         setup=lambda s: s.checkpoint("cnn", drop("model"), "best")),
    case("eval-missing-weights", "does not fit this run's model: 1 key missing (body.1.bias)", "eval", "{x}",
         setup=lambda s: s.checkpoint("cnn", drop("model/body.1.bias"), "best")),
    case("eval-missing-normalize", "best.pt's normalize lacks key 'std'", "eval", "{x}",
         setup=lambda s: s.checkpoint("cnn", drop("normalize/std"), "best")),
    case("eval-future-format", "has format 99; this dlx reads up to 1", "eval", "{x}",
         setup=lambda s: _torch_save( s, "cnn", "best", {"format_version": 99, "family": "cnn"})),
    case("eval-checkpoint-a-directory", "last.pt is not a file", "eval", "{x}", "--checkpoint", "last",
         setup=lambda s: _replace_with_dir(s)),
    case("eval-no-checkpoints", "last.pt does not exist", "eval", "{x}",
         setup=lambda s: shutil.rmtree(s.run("cnn") / "checkpoints") or s.run("cnn")),
    case("eval-transformer-other-architecture", "does not fit this run's model", "eval", "{x}",
         setup=lambda s: s.checkpoint("transformer", _resize_any, "best")),
    case("eval-transformer-missing-task", "lacks key 'task'", "eval", "{x}",
         setup=lambda s: s.checkpoint("transformer", drop("task"), "best")),
    case("eval-gan-other-architecture", "does not fit this run's G network: body.0.weight is 17×3 in the file but 16×2",
         "eval", "{x}", setup=lambda s: s.checkpoint("gan", resize_first("body.0.weight"), "best")),
    case("eval-gan-missing-network", "best.pt's models lacks key 'D'", "eval", "{x}",
         setup=lambda s: s.checkpoint("gan", drop("models/D"), "best")),
    case("eval-gan-bad-sample-shape", "has an impossible sample_shape [-2, 1000000000]", "eval", "{x}",
         setup=lambda s: s.checkpoint("gan", lambda st: st.update(sample_shape=[-2, 10**9]), "best")),
    case("sample-truncated-checkpoint", "last.pt cannot be read", "sample", "{x}", "--out", "s.png",
         setup=truncated("gan")),
    case("sample-other-architecture", "does not fit this run's G network", "sample", "{x}", "--out", "s.png",
         setup=lambda s: s.checkpoint("gan", resize_first("body.0.weight"))),
    case("sample-other-family-checkpoint", "belongs to a 'transformer' run, not 'gan'", "sample", "{x}", "--out",
         "s.png", setup=other_family_checkpoint("gan", "transformer")),
    case("translate-other-architecture", "does not fit this run's model", "translate", "{x}", "abc",
         setup=lambda s: s.checkpoint("transformer", _resize_any, "best")),
    case("translate-truncated", "best.pt cannot be read", "translate", "{x}", "abc",
         setup=truncated("transformer", "best")),
    case("resume-cnn-other-architecture", "does not fit this run's model: body.1.weight is 17×785", *train("cnn"),
         "--resume", "{x}", setup=interrupted("cnn", resize_first("body.1.weight"))),
    case("resume-cnn-missing-keys", "last.pt lacks key 'position'", *train("cnn"), "--resume", "{x}",
         setup=interrupted("cnn", drop("position"))),
    case("resume-cnn-position-missing-keys", "last.pt's position lacks key 'epoch_sums'", *train("cnn"), "--resume",
         "{x}", setup=interrupted("cnn", drop("position/epoch_sums"))),
    case("resume-cnn-optimizer-of-another-shape", "does not fit this run's optimizer: exp_avg of parameter 0 is 32×784",
         *train("cnn"), "--resume", "{x}", setup=interrupted("cnn", optimizer_state_of(32))),
    case("resume-cnn-missing-rng", "last.pt's rng lacks key 'numpy'", *train("cnn"), "--resume", "{x}",
         setup=interrupted("cnn", drop("rng/numpy"))),
    case("resume-cnn-truncated", "last.pt cannot be read", *train("cnn"), "--resume", "{x}",
         setup=lambda s: interrupted("cnn")(s) and truncated("cnn")(s)),
    case("resume-cnn-gan-checkpoint", "belongs to a 'gan' run, not 'cnn'", *train("cnn"), "--resume", "{x}",
         setup=lambda s: interrupted("cnn")(s) and other_family_checkpoint("cnn", "gan")(s)),
    case("resume-transformer-other-architecture", "does not fit this run's model: source_embedding.embedding.weight",
         *train("transformer"), "--resume", "{x}", setup=interrupted("transformer", _resize_any)),
    case("resume-transformer-missing-optimizer", "last.pt lacks key 'optimizer'", *train("transformer"), "--resume",
         "{x}", setup=interrupted("transformer", drop("optimizer"))),
    case("resume-gan-other-architecture", "does not fit this run's G network", *train("gan"), "--resume", "{x}",
         setup=interrupted("gan", resize_first("body.0.weight"))),
    case("resume-gan-missing-d-optimizer", "last.pt lacks key 'd_optimizer'", *train("gan"), "--resume", "{x}",
         setup=interrupted("gan", drop("d_optimizer"))),
    case("resume-gan-optimizer-swapped", "does not fit this run's generator optimizer", *train("gan"), "--resume",
         "{x}",
         setup=interrupted("gan", lambda st: st.update(g_optimizer=st["d_optimizer"], d_optimizer=st["g_optimizer"]))),
]


RUN_DIR_CASES = [
    case("eval-missing-run", "run directory runs/cnn/nope does not exist", "eval", "runs/cnn/nope"),
    case("eval-a-file", "file.txt is a file, not a run directory", "eval", "{x}",
         setup=lambda s: s.write("file.txt", "x")),
    case("eval-not-a-run", "notrun is not a dlx run directory (no meta.json)", "eval", "{x}",
         setup=lambda s: s.write("notrun/readme", "x") and "notrun"),
    case("eval-corrupt-meta", "meta.json is unreadable or not a JSON object", "eval", "{x}",
         setup=lambda s: _corrupt(s, "cnn", "meta.json", "{not json")),
    case("eval-meta-a-list", "meta.json is unreadable or not a JSON object", "eval", "{x}",
         setup=lambda s: _corrupt(s, "gan", "meta.json", "[1, 2]")),
    case("eval-unknown-family", "dlx eval does not support 'diffusion' runs", "eval", "{x}",
         setup=lambda s: s.meta("cnn", family="diffusion")),
    case("eval-missing-config", "config.yaml is missing or not a config mapping", "eval", "{x}",
         setup=lambda s: _remove(s, "transformer", "config.yaml")),
    case("eval-corrupt-config", "config.yaml is missing or not a config mapping", "eval", "{x}",
         setup=lambda s: _corrupt(s, "cnn", "config.yaml", "model: [\n")),
    case("eval-config-with-unknown-key", "model.wings: unknown key", "eval", "{x}",
         setup=lambda s: _corrupt(s, "cnn", "config.yaml", "model: {name: mlp, wings: 2}\n")),
    case("eval-data-dir-a-file", "data directory f is a file", "eval", "{cnn}", "--data-dir", "{x}",
         setup=lambda s: s.write("f", "x")),
    case("eval-checkpoint-middle", "--checkpoint must be best or last, got 'middle'", "eval", "{cnn}", "--checkpoint",
         "middle"),
    case("sample-checkpoint-middle", "--checkpoint must be best or last, got 'middle'", "sample", "{gan}",
         "--checkpoint", "middle"),
    case("translate-checkpoint-middle", "--checkpoint must be best or last, got 'middle'", "translate", "{transformer}",
         "abc", "--checkpoint", "middle"),
    case("sample-a-cnn-run", "is a 'cnn' run, not a 'gan' run", "sample", "{cnn}", "--out", "s.png"),
    case("translate-a-gan-run", "is a 'gan' run, not a 'transformer' run", "translate", "{gan}", "abc"),
    case("translate-missing-run", "run directory nowhere does not exist", "translate", "nowhere", "abc"),
    case("sample-missing-run", "run directory nowhere does not exist", "sample", "nowhere", "--out", "s.png"),
    case("resume-missing", "run directory runs/cnn/nope does not exist", *train("cnn"), "--resume", "runs/cnn/nope"),
    case("resume-a-file", "f.txt is a file, not a run directory", *train("transformer"), "--resume", "{x}",
         setup=lambda s: s.write("f.txt", "x")),
    case("resume-not-a-run", "empty is not a dlx run directory", *train("gan"), "--resume", "{x}",
         setup=lambda s: s.write("empty/x", "") and "empty"),
    case("resume-corrupt-meta", "meta.json is unreadable or not a JSON object", *train("cnn"), "--resume", "{x}",
         setup=lambda s: _corrupt(s, "cnn", "meta.json", "\x00\x01")),
    case("resume-missing-config", "config.yaml is missing or not a config mapping", *train("gan"), "--resume", "{x}",
         setup=lambda s: _remove(s, "gan", "config.yaml")),
    case("resume-completed-cnn", "already completed 1 epochs; pass --epochs N with N > 1", *train("cnn"), "--resume",
         "{cnn}"),
    case("resume-completed-transformer", "already completed 1 epochs; pass --epochs N with N > 1",
         *train("transformer"), "--resume", "{transformer}"),
    case("resume-completed-gan", "already completed 1 epochs; pass --epochs N with N > 1", *train("gan"), "--resume",
         "{gan}"),
    case("resume-changed-keys", "optim.lr: cannot change when resuming (was 0.003, now 0.5)", *train("cnn"), "--resume",
         "{x}", "--lr", "0.5", setup=interrupted("cnn")),
    case("resume-other-family", "is a 'gan' run, not a 'cnn' run", *train("cnn"), "--resume", "{gan}"),
    case("resume-no-last-checkpoint", "has no checkpoints/last.pt to resume from", *train("transformer"), "--resume",
         "{x}", setup=lambda s: interrupted("transformer")(s) and _remove(s, "transformer", "checkpoints/last.pt")),
    case("resume-config-file-changes-seed", "run.seed: cannot change when resuming (was 0, now 5)", *train("gan"),
         "--resume", "{x}", "-c", "seed.yaml",
         setup=lambda s: s.yaml("seed.yaml", {"run": {"seed": 5}}) and interrupted("gan")(s)),
    case("resume-locked-run", "in use by another dlx process", *train("gan"), "--resume", "{x}", "--epochs", "2",
         setup=lambda s: interrupted("gan")(s) and _locked(s, "gan")),
    case("resume-outside-runs-dir", "is outside the runs folder other", *train("cnn"), "--resume", "{x}", "--runs-dir",
         "other", setup=lambda s: interrupted("cnn")(s) and s.write("other/.keep", "") and s.run("cnn")),
]


SAMPLE_TRANSLATE_CASES = [
    case("sample-n-zero", "--n must be between 1 and 100000, got 0", "sample", "{gan}", "--n", "0"),
    case("sample-n-negative", "--n must be between 1 and 100000, got -4", "sample", "{gan}", "--n", "-4"),
    case("sample-n-huge", "--n must be between 1 and 100000, got 100000000", "sample", "{gan}", "--n", "100000000"),
    case("sample-out-not-png", "--out must name a .png file", "sample", "{gan}", "--out", "samples.jpg"),
    case("sample-out-dir-missing", "--out: directory no/such/dir does not exist", "sample", "{gan}", "--out",
         "no/such/dir/s.png"),
    case("sample-out-a-directory", "--out pics.png is a directory", "sample", "{gan}", "--out", "{x}",
         setup=lambda s: s.write("pics.png/.keep", "") and "pics.png"),
    case("sample-seed-overflow", "--seed must be between", "sample", "{gan}", "--seed", str(2 ** 70), "--out", "s.png"),
    case("sample-label-not-conditional", "--label needs a conditional run", "sample", "{gan}", "--label", "Sneaker",
         "--out", "s.png"),
    case("translate-beam-zero", "--beam must be between 1 and 64, got 0", "translate", "{transformer}", "abc", "--beam",
         "0"),
    case("translate-beam-negative", "--beam must be between 1 and 64, got -2", "translate", "{transformer}", "abc",
         "--beam", "-2"),
    case("translate-beam-huge", "--beam must be between 1 and 64, got 1000000", "translate", "{transformer}", "123",
         "--beam", "1000000"),
    case("translate-input-too-long", "the input has 5000 tokens", "translate", "{transformer}", "1" * 5000),
    case("translate-unknown-symbols", "symbols '?' are not in this run's vocabulary", "translate", "{transformer}",
         "???"),
    case("translate-empty-input", "the input is empty", "translate", "{transformer}", ""),
]

INSPECT_CASES = [
    case("inspect-conv-kernel-zero", "kernel must be >= 1, got 0", "inspect-shapes", "conv", "--kernel", "0"),
    case("inspect-conv-kernel-larger-than-input", "kernel 9 does not fit", "inspect-shapes", "conv", "--input", "1x8x8",
         "--kernel", "9"),
    case("inspect-conv-bad-input-format", "--input must be CxHxW", "inspect-shapes", "conv", "--input", "1x28xfoo"),
    case("inspect-conv-stride-text", "--stride must be a whole number or HxW", "inspect-shapes", "conv", "--stride",
         "two"),
    case("inspect-conv-out-channels-negative", "out channels must be >= 1, got -1", "inspect-shapes", "conv",
         "--out-channels", "-1"),
    case("inspect-conv-huge-input", "too many for the real forward pass", "inspect-shapes", "conv", "--input",
         "3x100000x100000"),
    case("inspect-pool-unknown", "--pool must be max or avg, got 'median'", "inspect-shapes", "pool", "--pool",
         "median"),
    case("inspect-pool-kernel-zero", "kernel must be >= 1, got 0", "inspect-shapes", "pool", "--kernel", "0"),
    case("inspect-attention-heads-do-not-divide", "--heads 3 does not divide --d-model 8", "inspect-shapes",
         "attention", "--d-model", "8", "--heads", "3"),
    case("inspect-attention-seq-len-zero", "--seq-len must be >= 1, got 0", "inspect-shapes", "attention", "--seq-len",
         "0"),
    case("inspect-attention-seq-len-huge", "too many for the real forward pass", "inspect-shapes", "attention",
         "--seq-len", "10000000"),
    case("inspect-attention-window-negative", "--window must be >= 0", "inspect-shapes", "attention", "--window", "-1"),
    case("inspect-attention-unknown-score", "--score must be dot or additive, got 'cosine'", "inspect-shapes",
         "attention", "--score", "cosine"),
    case("inspect-cnn-unknown-model", "model.name: 'resnet' is not one of", "inspect-shapes", "cnn", "--model",
         "resnet"),
    case("inspect-cnn-non-square-input", "take square images, got --input 1x28x14", "inspect-shapes", "cnn", "--input",
         "1x28x14"),
    case("inspect-transformer-unknown-task", "data.task: 'chess' is not one of", "inspect-shapes", "transformer",
         "--task", "chess"),
    case("inspect-gan-cycle", "cycle translates images", "inspect-shapes", "gan", "--set", "model.kind=cycle", "--set",
         "data.dataset=fashion-mnist"),
    case("inspect-unknown-target", "No such command 'lstm'", "inspect-shapes", "lstm"),
]

RUNS_CASES = [
    case("runs-list-unknown-family", "--family: unknown family 'rnn'", "runs", "list", "--family", "rnn"),
    case("runs-list-runs-dir-missing", "runs directory nowhere does not exist", "runs", "list", "--runs-dir",
         "nowhere"),
    case("runs-list-runs-dir-a-file", "--runs-dir f is a file, not a directory", "runs", "list", "--runs-dir", "{x}",
         setup=lambda s: s.write("f", "x")),
    case("runs-list-unknown-status", "--status: unknown status 'sleeping'", "runs", "list", "--status", "sleeping"),
    case("runs-show-unknown", "no run matches 'zzzzzz' under runs", "runs", "show", "zzzzzz"),
    case("runs-show-empty-spec", "RUN is empty", "runs", "show", ""),
    case("runs-show-corrupt-meta", "meta.json is unreadable or not a JSON object", "runs", "show", "{x}",
         setup=lambda s: _corrupt(s, "cnn", "meta.json", "{")),
    case("runs-compare-nothing", "name the runs to compare", "runs", "compare"),
    case("runs-compare-unknown", "no run matches 'zzzz'", "runs", "compare", "{cnn}", "zzzz"),
    case("runs-compare-unknown-family", "--family: unknown family 'rnn'", "runs", "compare", "--family", "rnn"),
    case("runs-diff-unknown", "no run matches 'zzzz'", "runs", "diff", "{cnn}", "zzzz"),
    case("runs-diff-one-argument", "Missing argument 'B'", "runs", "diff", "{cnn}"),
    case("runs-rm-unknown", "no run matches 'zzzz'", "runs", "rm", "zzzz", "--yes"),
    case("runs-rm-outside", "elsewhere/run is outside the runs folder runs", "runs", "rm", "{x}", "--yes",
         setup=lambda s: shutil.copytree(s.run("gan"), "elsewhere/run") and "elsewhere/run"),
    case("runs-rm-the-runs-dir", "runs is not a dlx run directory", "runs", "rm", "runs", "--yes"),
    case("runs-rm-symlinked-parent", "runs/evil is a symbolic link; refusing to act through it", "runs", "rm",
         "{x}", "--yes", setup=lambda s: _symlinked_parent(s)),
    case("runs-rm-live-run", "nothing to delete: cnn", "runs", "rm", "{x}", "--yes", setup=lambda s: _live(s, "cnn")),
    case("runs-prune-negative", "--keep-best must be >= 0, got -1", "runs", "prune", "--keep-best", "-1", "--yes"),
    case("runs-prune-without-keep-best", "Missing option '--keep-best'", "runs", "prune", "--yes"),
    case("runs-prune-unknown-family", "--family: unknown family 'rnn'", "runs", "prune", "--keep-best", "1", "--family",
         "rnn", "--yes"),
    case("runs-prune-runs-dir-missing", "runs directory nowhere does not exist", "runs", "prune", "--keep-best", "0",
         "--runs-dir", "nowhere", "--yes"),
    case("runs-sweep-unknown", "no sweep matches 'nosuchsweep'", "runs", "sweep", "nosuchsweep"),
    case("runs-sweep-corrupt-record", "is not a sweep directory (no readable sweep.json)", "runs", "sweep", "{x}",
         setup=lambda s: s.write(f"{BROKEN_SWEEP}/sweep.json", "{broken") and BROKEN_SWEEP),
    case("runs-unknown-subcommand", "No such command 'delete'", "runs", "delete", "x"),
]


SWEEP_CASES = [
    case("sweep-missing-file", "sweep file nope.yaml does not exist", "sweep", "nope.yaml", "--dry-run"),
    case("sweep-a-directory", "sweep file runs is not a file", "sweep", "runs", "--dry-run"),
    case("sweep-no-sweep-key", "has no top-level 'sweep:' key", "sweep", "{x}", "--dry-run",
         setup=lambda s: s.yaml("plain.yaml", {"optim": {"lr": 1}})),
    case("sweep-not-utf8", "is not UTF-8 text", "sweep", "{x}", "--dry-run",
         setup=lambda s: s.write("l.yaml", b"sweep:\n  family: \xe9\n")),
    case("sweep-binary", "is not UTF-8 text", "sweep", "{x}", "--dry-run",
         setup=lambda s: s.write("b.yaml", bytes(range(256)))),
    case("sweep-unknown-family", "sweep.family: 'rnn' is not one of", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "rnn", "grid": {"a": [1]}})),
    case("sweep-no-family", "sweep.family: None is not one of", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"grid": {"optim.lr": [0.1]}})),
    case("sweep-huge-grid", "the sweep has 10,000,000 runs", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "grid": {f"k{i}": list(range(10)) for i in range(7)}})),
    case("sweep-grid-not-a-list", "sweep.grid.optim.lr: expected a non-empty list", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "grid": {"optim.lr": 0.1}})),
    case("sweep-grid-empty-list", "sweep.grid.optim.lr: expected a non-empty list", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "grid": {"optim.lr": []}})),
    case("sweep-grid-unknown-key", "optim.lrr: unknown key", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "grid": {"optim.lrr": [0.1, 0.2]}})),
    case("sweep-bad-variant-name", "sweep.variants[0].name: must be a plain name", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "variants": [{"name": "../../x", "set": {"optim.lr": 0.1}}]})),
    case("sweep-duplicate-variant-names", "sweep.variants[1].name: 'a' is used twice", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "variants": [{"name": "a", "set": {}}, {"name": "a", "set": {}}]})),
    case("sweep-variant-not-a-mapping", "sweep.variants[0]: expected a mapping", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "variants": ["x"]})),
    case("sweep-seeds-zero", "sweep.seeds: must be an integer >= 1", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "seeds": 0})),
    case("sweep-seeds-huge", "the sweep has 1,000,000,000 runs", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "seeds": 10**9})),
    case("sweep-sets-run-name", "sweep.set.run.name: set by the sweep itself", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "set": {"run.name": "mine"}})),
    case("sweep-base-missing", "sweep.base: nope.yaml does not exist", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "base": "nope.yaml"})),
    case("sweep-base-outside", "/etc/passwd: expected a mapping at the top", "sweep", "{x}", "--dry-run",
         setup=sweep_file({"family": "cnn", "base": "/etc/passwd"})),
    case("sweep-nan-in-grid", "optim.lr: must be a finite number", "sweep", "{x}", "--dry-run",
         setup=lambda s: s.write("n.yaml", "sweep: {family: cnn, grid: {optim.lr: [.nan, 0.1]}}\n")),
    case("sweep-parallel-zero", "--parallel must be >= 1, got 0", "sweep", "{x}", "--parallel", "0",
         setup=sweep_file({"family": "cnn", "grid": {"optim.lr": [0.1]}})),
    case("sweep-max-points-exceeded", "the sweep has 2 runs", "sweep", "{x}", "--max-points", "1",
         setup=sweep_file({"family": "cnn", "grid": {"optim.lr": [0.1, 0.2]}})),
    case("sweep-bad-set", "expected KEY=VALUE", "sweep", "{x}", "--dry-run", "--set", "optim.lr",
         setup=sweep_file({"family": "cnn", "grid": {"optim.lr": [0.1]}})),
    case("sweep-runs-dir-a-file", "--runs-dir: sweep.yaml exists and is not a directory", "sweep", "{x}", "--runs-dir",
         "{x}", setup=sweep_file({"family": "cnn", "grid": {"optim.lr": [0.1]}})),
]

OTHER_CASES = [
    case("data-fetch-unknown", "unknown dataset 'imagenet'", "data", "fetch", "imagenet"),
    case("data-fetch-unreachable-mirror", "Connection refused", "data", "fetch", "kmnist", "--dest", "{x}", "--mirror",
         "http://127.0.0.1:9/", setup=lambda s: s.write("dest/.keep", "") and "dest"),
    case("data-fetch-dest-a-file", "cannot create destfile", "data", "fetch", "kmnist", "--dest", "{x}", "--mirror",
         "http://127.0.0.1:9/", setup=lambda s: s.write("destfile", "x")),
    case("data-fetch-mirror-not-a-url", "unknown url type", "data", "fetch", "kmnist", "--dest", "{x}", "--mirror",
         "::::", setup=lambda s: s.write("d/.keep", "") and "d"),
    case("data-list-data-dir-a-file", "data directory f is a file, not a directory", "data", "list", "--data-dir",
         "{x}", setup=lambda s: s.write("f", "x")),
    case("tensorboard-port-zero", "--port must be between 1 and 65535, got 0", "tensorboard", "runs", "--port", "0"),
    case("tensorboard-port-too-big", "--port must be between 1 and 65535, got 70000", "tensorboard", "runs", "--port",
         "70000"),
    case("tensorboard-runs-dir-missing", "runs directory nowhere does not exist", "tensorboard", "nowhere"),
    case("tensorboard-runs-dir-a-file", "f is a file, not a runs directory", "tensorboard", "{x}",
         setup=lambda s: s.write("f", "x")),
    case("tensorboard-port-text", "Invalid value for '--port'", "tensorboard", "runs", "--port", "http"),
    case("unknown-command", "No such command 'train-rnn'", "train-rnn"),
    case("eval-no-argument", "Missing argument 'run_dir'", "eval"),
]

CASES = (CONFIG_CASES + SET_CASES + CLI_VALUE_CASES + NAME_CASES + DATA_FILE_CASES + CHECKPOINT_CASES
         + RUN_DIR_CASES + SAMPLE_TRANSLATE_CASES + INSPECT_CASES + RUNS_CASES + SWEEP_CASES + OTHER_CASES)


def test_the_matrix_is_wide_and_distinct():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len({c.argv for c in CASES if c.setup is None}) == sum(c.setup is None for c in CASES)
    assert len(CASES) >= 120
    commands = {c.argv[0] if c.argv[0] not in ("runs", "data", "inspect-shapes") else " ".join(c.argv[:2])
                for c in CASES}
    for command in ("train-cnn", "train-transformer", "train-gan", "eval", "sample", "translate", "sweep",
                    "tensorboard", "runs list", "runs show", "runs compare", "runs diff", "runs rm", "runs prune",
                    "runs sweep", "data fetch", "data list", "inspect-shapes conv", "inspect-shapes pool",
                    "inspect-shapes attention", "inspect-shapes cnn", "inspect-shapes transformer",
                    "inspect-shapes gan"):
        assert command in commands, command


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_touches_nothing(bad: Case, sandbox: Sandbox, capsys):
    values = {family: str(sandbox.run(family)) for family in ("cnn", "transformer", "gan")}
    try:
        if bad.setup is not None:
            values["x"] = str(bad.setup(sandbox))
        argv = [arg.format(**values) for arg in bad.argv]
        before = snapshot(sandbox.root)
        capsys.readouterr()
        code = cli(argv)
        out, err = capsys.readouterr()
    finally:
        while _HELD:
            _HELD.pop().release()
    assert "Traceback" not in out + err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlx: error: "), err
    assert bad.says in lines[0]
    assert code == bad.code, err
    assert snapshot(sandbox.root) == before, err
