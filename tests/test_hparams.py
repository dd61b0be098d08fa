"""TensorBoard's HParams tab on a mixed runs folder: every family's metrics, only the keys that apply,
a sweep's seeds grouped by point (dlx/hparams.py, dlx/hparams_scope.py, ``dlx tensorboard``).

The slow test trains tiny runs of every family and a 2-point × 2-seed sweep,
then reads the HParams tab over HTTP from a real ``dlx tensorboard`` (which
serves one experiment record for the folder) and from a plain
``tensorboard --logdir`` (which computes its own from the runs' sessions).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlx import hparams, hparams_scope, registry
from dlx.config import build, to_dict
from dlx.rundir import flat_hparams
from tests.test_tensorboard import ROOT, first_line, free_port, get, start_tensorboard, wait_for_runs

OLD_RUNS = Path(__file__).parent / "fixtures" / "runs-v0.1"
STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def resolved(family: str, *assignments: str):
    """A family's resolved config with ``--set`` assignments."""
    return build(registry.config_class(family), None, None, list(assignments))


def applied(family: str, *assignments: str) -> dict:
    """The hyperparameters a run of that config records."""
    return hparams.run_hparams(family, resolved(family, *assignments))


# --------------------------------------------------------------------------
# Which keys a run records (no training)


def test_cnn_runs_record_only_their_architectures_keys():
    lenet = applied("cnn", "model.name=lenet5")
    convnet = applied("cnn", "model.name=convnet")
    vit = applied("cnn", "model.name=vit")
    mlp = applied("cnn", "model.name=mlp")
    assert lenet["model.pool"] == "max" and "model.conv_layers" not in lenet and "model.batch_norm" not in lenet
    assert not any(key.startswith("model.vit.") for key in {**lenet, **convnet, **mlp})
    assert "model.pool" not in convnet and convnet["model.batch_norm"] is True and "model.conv_layers" in convnet
    assert vit["model.vit.patch"] == 4 and not {"model.pool", "model.head", "model.hidden"} & set(vit)
    assert "model.hidden" in mlp and not {"model.pool", "model.head", "model.conv_layers"} & set(mlp)
    # Presentation and execution keys are no hyperparameters; the family is one.
    assert not {"run.runs_dir", "run.progress", "run.threads", "data.download", "embedding_samples"} & set(convnet)
    assert convnet["family"] == "cnn" and convnet["optim.lr"] == pytest.approx(3e-3)


def test_optimizer_and_schedule_keys_apply_only_to_their_rule():
    sgd = applied("cnn", "optim.optimizer=sgd", "optim.schedule=step")
    adam = applied("cnn", "optim.optimizer=adam", "optim.schedule=warmup-cosine")
    assert sgd["optim.momentum"] == 0.9 and "optim.beta1" not in sgd and sgd["optim.step_gamma"] == 0.7
    assert "optim.warmup_steps" not in sgd
    assert "optim.momentum" not in adam and adam["optim.beta2"] == 0.999 and "optim.warmup_steps" in adam
    assert "optim.step_epochs" not in adam


def test_gan_runs_record_only_their_kinds_keys():
    toy = applied("gan", "data.dataset=ring8", "loss.name=bce")
    wgan = applied("gan", "data.dataset=ring8", "loss.name=wgan-gp")
    cycle = applied("gan", "model.kind=cycle", "model.name=dcgan", "data.dataset=fashion-mnist")
    assert "loss.gp_weight" not in toy and wgan["loss.gp_weight"] == 10.0
    assert not any(key.startswith(("data.domain_a", "loss.cycle_weight")) for key in toy)
    assert {"model.g_hidden", "model.pack"} <= set(toy) and "model.channels" not in toy
    assert not {"data.limit_train", "data.classes", "eval.image_metrics"} & set(toy)
    assert cycle["loss.cycle_weight"] == 10.0 and "data.domain_a.classes" in cycle
    assert cycle["model.cycle_blocks"] == 2 and cycle["model.channels"] == 64
    assert not {"model.g_hidden", "model.noise", "model.pack", "data.toy_std"} & set(cycle)


def test_transformer_runs_record_only_their_tasks_keys(tmp_path):
    pairs_file = tmp_path / "pairs.tsv"
    pairs_file.write_text("ab\tba\n" * 20)
    reverse = applied("transformer", "data.task=reverse")
    majority = applied("transformer", "data.task=majority")
    pairs = applied("transformer", "data.task=pairs", f"data.path={pairs_file}")
    assert reverse["data.vocab_size"] == 10 and reverse["eval.beam"] == 1 and "data.tokens" not in reverse
    assert not {"eval.bleu_tokenize", "data.split", "data.stress", "data.test_fraction"} & set(reverse)
    assert "eval.beam" not in majority  # a label per sequence is read off, not decoded
    assert pairs["data.path"] == str(pairs_file) and pairs["eval.bleu_tokenize"] == "13a"
    assert not {"data.vocab_size", "data.max_len", "data.seed"} & set(pairs)


def test_every_key_a_run_records_is_one_its_config_has():
    for family, assignments in [("cnn", ["model.name=vit"]), ("gan", ["model.kind=conditional",
                                "data.dataset=mnist", "model.name=dcgan"]), ("transformer", ["data.task=add"])]:
        config = resolved(family, *assignments)
        flat = set(flat_hparams(to_dict(config)))
        recorded = set(hparams.run_hparams(family, config)) - {"family"}
        assert recorded < flat
        # What is left out was either presentation or a key this run never reads.
        for key in flat - recorded - hparams.NOT_HPARAMS:
            assert any(key == p or key.startswith(p + ".") for p in config.unused_keys()), (family, key)


def test_run_metrics_are_the_summarys_measured_numbers():
    summary = {"family": "gan", "high_quality": 0.5, "modes_captured": 8, "fid": None, "global_step": 400,
               "first_modes_captured": 2, "train_images": 100, "best_step": 300, "parameters_G": 1218,
               "ok": True, "evaluations": [{"step": 1}], "bad": float("nan")}
    metrics = hparams.run_metrics(summary)
    assert metrics == {"hparam/modes_captured": 8.0, "hparam/high_quality": 0.5, "hparam/parameters_G": 1218.0}


def test_a_sweep_point_is_found_from_the_sweeps_record(tmp_path):
    sweep_dir = tmp_path / "sweeps" / "20261129-052124-noise-930d96"
    run_dir = sweep_dir / "gan" / "20261129-052133-noise=uniform-s1-d02868"
    run_dir.mkdir(parents=True)
    points = [{"label": f"noise={n}", "seed": s, "run_name": f"noise={n}-s{s}"}
              for s in (0, 1) for n in ("gaussian", "uniform")]
    (sweep_dir / "sweep.json").write_text(json.dumps({"name": "noise", "seeds": 2, "points": points}))
    point = hparams.sweep_point(run_dir, "noise=uniform-s1", 1)
    assert point == hparams.SweepPoint("noise-930d96", "noise=uniform", 2)
    assert hparams.group_name({"name": "noise=uniform-s1", "id": "d02868"}, point) == "noise-930d96: noise=uniform"
    values = hparams.run_hparams("gan", resolved("gan"), point)
    assert values["sweep_point"] == "noise=uniform" and "run.seed" not in values  # the group stands for both seeds
    assert hparams.sweep_point(run_dir, "other-s1", 1) is None
    assert hparams.sweep_point(tmp_path / "gan" / "plain", "noise=uniform-s1", 1) is None
    assert hparams.group_name({"name": "lenet5-mnist", "id": "abc123"}, None) == "lenet5-mnist-abc123"


def start_info(family: str, values: dict, group: str = ""):
    from tensorboard.plugins.hparams import metadata

    start, _ = hparams.session_records({"family": family, **values}, group, 0.0)
    return metadata.parse_session_start_info_plugin_data(start.value[0].metadata.plugin_data.content)


def test_the_scope_experiment_puts_every_familys_headline_and_the_sweeps_keys_first():
    infos = {
        "cnn/a": start_info("cnn", {"model.name": "convnet", "data.limit_train": 500.0, "optim.lr": 0.003}),
        "gan/b": start_info("gan", {"model.name": "mlp", "loss.name": "bce"}),
        "transformer/c": start_info("transformer", {"data.task": "reverse"}),
        "sweeps/s/cnn/p0": start_info("cnn", {"model.name": "lenet5", "model.pool": "max", "sweep": "s-1",
                                              "sweep_point": "pool=max", "data.limit_train": 100.0}),
        "sweeps/s/cnn/p1": start_info("cnn", {"model.name": "lenet5", "model.pool": "avg", "sweep": "s-1",
                                              "sweep_point": "pool=avg", "data.limit_train": 100.0}),
    }
    tags = {"cnn/a": ["hparam/test_loss", "hparam/test_accuracy", "train/loss"],
            "gan/b": ["hparam/high_quality", "hparam/modes_captured"],
            "transformer/c": ["hparam/token_accuracy", "hparam/exact_match", "hparam/test_loss"],
            "sweeps/s/cnn/p0": ["hparam/test_accuracy"], "sweeps/s/cnn/p1": ["hparam/test_accuracy"]}
    experiment = hparams_scope.experiment(infos, tags)
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert set(metrics[:3]) == {"hparam/test_accuracy", "hparam/exact_match", "hparam/modes_captured"}
    assert set(metrics) == {t for run in tags.values() for t in run if t.startswith("hparam/")}
    marked = {h.name for h in experiment.hparam_infos if h.differs}
    assert {"family", "model.pool", "sweep_point"} <= marked and len(marked) == 5
    infos_by_name = {h.name: h for h in experiment.hparam_infos}
    assert infos_by_name["data.limit_train"].domain_interval.max_value == 500.0
    assert set(infos_by_name["model.pool"].domain_discrete.values[i].string_value for i in range(2)) == {"max", "avg"}


def test_dlx_tensorboard_serves_one_experiment_instead_of_the_old_runs_own(tmp_path):
    """dlx 0.1 wrote an experiment record into every run; TensorBoard would show whichever it found first."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins.hparams import metadata

    root = tmp_path / "runs"
    shutil.copytree(OLD_RUNS, root)
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(root))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(root))
    hparams_scope.serve_scope_experiment(provider)
    found = provider.list_tensors(context.RequestContext(), experiment_id="", plugin_name=metadata.PLUGIN_NAME)
    holders = [run for run, tags in found.items() if metadata.EXPERIMENT_TAG in tags]
    assert holders == [hparams_scope.SCOPE_RUN]
    assert sum(metadata.SESSION_START_INFO_TAG in tags for tags in found.values()) == 3
    content = found[hparams_scope.SCOPE_RUN][metadata.EXPERIMENT_TAG].plugin_content
    experiment = metadata.parse_experiment_plugin_data(content)
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert set(metrics[:3]) == {"hparam/test_accuracy", "hparam/exact_match", "hparam/modes_captured"}


# --------------------------------------------------------------------------
# Over HTTP, from real servers, on real runs

TINY = {
    "cnn": ["train-cnn", "--dataset", "fashion-mnist", "--limit-train", "600", "--set", "data.limit_test=200",
            "--set", "model.conv_layers=[{channels: 4, kernel: 3, padding: 1, pool: max}]",
            "--set", "model.hidden=[16]", "--set", "embedding_samples=0", "--epochs", "1"],
    "transformer": ["train-transformer", "--d-model", "16", "--heads", "2", "--layers", "1", "--ff", "32",
                    "--batch-size", "32", "--set", "data.train_size=256", "--set", "data.test_size=40",
                    "--set", "data.max_len=6", "--set", "optim.warmup_steps=4", "--epochs", "1"],
    "gan": ["train-gan", "--dataset", "ring8", "--loss", "wgan-gp", "--set", "eval.samples=500",
            "--epochs", "1", "--steps-per-epoch", "10"],
}
COMMON = ["--no-progress", "--set", "run.log_every=5", "--set", "run.threads=1"]
SWEEP = """# Answers: does gaussian or uniform noise make the better GAN?
sweep:
  family: gan
  set: {data.dataset: ring8, optim.epochs: 1, optim.steps_per_epoch: 10, eval.samples: 500,
        run.log_every: 5, run.threads: 1}
  grid: {model.noise: [gaussian, uniform]}
  seeds: 2
"""


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory) -> Path:
    """``<top>/runs``: one tiny run of each family and a 2-point × 2-seed GAN sweep; ``<top>/old``: dlx 0.1's runs."""
    top = tmp_path_factory.mktemp("hparams")
    root = top / "runs"
    sweep_file = top / "noise.yaml"
    sweep_file.write_text(SWEEP)
    commands = [[*TINY[family], *COMMON, "--runs-dir", root] for family in TINY]
    run_two_at_a_time(commands + [["sweep", sweep_file, "--parallel", "2", "--runs-dir", root]])
    shutil.copytree(OLD_RUNS, top / "old")
    return root


def run_two_at_a_time(commands: list[list]) -> None:
    """``python -m dlx COMMAND`` for each command, two at once (two cores); each must succeed."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    waiting, running = list(commands), []
    while waiting or running:
        while waiting and len(running) < 2:
            running.append(subprocess.Popen([sys.executable, "-m", "dlx", *map(str, waiting.pop(0))], env=env,
                                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        _, err = running[0].communicate(timeout=600)
        assert running.pop(0).returncode == 0, err[-2000:]


HEADLINES = {"hparam/test_accuracy", "hparam/exact_match", "hparam/modes_captured"}


def sessions_of(url: str, expected: set[str], timeout: float = 120) -> tuple[dict, list[dict]]:
    """The HParams experiment and session groups, once every expected run is a session with every
    family's headline metric known (TensorBoard loads event files in the background, big ones last)."""
    deadline = time.time() + timeout
    while True:
        experiment = get(f"{url}data/plugin/hparams/experiment", {"experimentName": ""})
        groups = get(f"{url}data/plugin/hparams/session_groups", {
            "experimentName": "", "startIndex": 0, "sliceSize": 1000, "allowedStatuses": STATUSES})["sessionGroups"]
        sessions = {s["name"]: s for g in groups for s in g["sessions"]}
        metrics = {m["name"]["tag"] for m in experiment.get("metricInfos", [])}
        loaded = expected <= set(sessions) and all(sessions[name]["metricValues"] for name in expected)
        if (loaded and HEADLINES <= metrics) or time.time() > deadline:
            return experiment, groups
        time.sleep(1)


def new_runs(root: Path) -> dict[Path, dict]:
    return {p.parent: json.loads((p.parent / "summary.json").read_text()) for p in root.rglob("meta.json")}


def check_sessions(groups: list[dict], root: Path, prefix: str) -> None:
    """Every new run is a session with its family's headline metrics equal to its summary.json."""
    session_group = {s["name"]: g for g in groups for s in g["sessions"]}
    session_metrics = {s["name"]: {m["name"]["tag"]: m["value"] for m in s["metricValues"]}
                       for g in groups for s in g["sessions"]}
    runs = new_runs(root)
    assert len(runs) == 7
    for run_dir, summary in runs.items():
        name = prefix + str(run_dir.relative_to(root))
        family = registry.get(summary["family"])
        headline = [key for key in family.headline_metrics if isinstance(summary.get(key), (int, float))]
        assert headline, summary
        for key in headline:
            assert session_metrics[name][f"hparam/{key}"] == pytest.approx(summary[key], abs=1e-6), (name, key)
        # ... and no other family's (each run's own metrics, not the first run's experiment).
        foreign = {f"hparam/{key}" for other in registry.FAMILIES.values() for key in other.headline_metrics}
        assert not (foreign - {f"hparam/{key}" for key in summary}) & set(session_metrics[name])
        group = session_group[name]["hparams"]
        assert group["family"] == summary["family"]
        if summary["family"] == "cnn":
            assert "model.pool" not in group and "model.conv_layers" in group and "loss.gp_weight" not in group
    gan_plain = [g for g in groups if g["hparams"].get("family") == "gan" and "sweep_point" not in g["hparams"]]
    assert len(gan_plain) == 1 and gan_plain[0]["hparams"]["loss.gp_weight"] == 10.0


def check_sweep(groups: list[dict]) -> None:
    """The sweep's varied key is a hyperparameter; each point's two seeds share one group and sweep_point."""
    points = [g for g in groups if "sweep_point" in g["hparams"]]
    assert sorted(g["hparams"]["sweep_point"] for g in points) == ["noise=gaussian", "noise=uniform"]
    for group in points:
        assert len(group["sessions"]) == 2 and group["hparams"]["model.noise"] == group["name"].rsplit("=", 1)[1]
        # <name>-<time>-<id>: the point's run name (…-s0, …-s1) comes first
        assert {s["name"].rsplit("/", 1)[-1].rsplit("-", 4)[-4] for s in group["sessions"]} == {"s0", "s1"}
        assert group["name"].startswith("noise-") and group["name"].endswith(group["hparams"]["sweep_point"])
        assert "loss.gp_weight" not in group["hparams"]  # bce


@pytest.mark.slow
def test_dlx_tensorboard_shows_every_familys_metrics_and_the_sweep_by_point(runs_folder):
    top = runs_folder.parent
    port = free_port()
    server = start_tensorboard(top, port)
    try:
        url = f"http://127.0.0.1:{port}/"
        assert first_line(server).startswith(f"TensorBoard at {url}")
        expected = {f"runs/{p.relative_to(runs_folder)}" for p in new_runs(runs_folder)}
        assert expected <= set(wait_for_runs(url, expected))
        experiment, groups = sessions_of(url, expected)
        metrics = [m["name"]["tag"] for m in experiment["metricInfos"]]
        # The five the HParams tab ticks by default: the shared score first, then what every run cost;
        # each family's headline metric next.
        assert metrics[:5] == ["hparam/" + name for name in hparams.SHARED_METRICS], metrics
        assert set(metrics[5:8]) == {"hparam/test_accuracy", "hparam/exact_match", "hparam/modes_captured"}
        infos = {h["name"]: h for h in experiment["hparamInfos"]}
        assert infos["model.noise"]["type"] == "DATA_TYPE_STRING" and infos["sweep_point"]["differs"]
        assert infos["model.noise"]["differs"] and infos["family"]["differs"]
        assert sum(h.get("differs", False) for h in experiment["hparamInfos"]) >= 5
        check_sessions(groups, runs_folder, "runs/")
        check_sweep(groups)
        # Readable trial names: a run's name and id, or the sweep and its point.
        names = {g["name"] for g in groups}
        assert not any(name.startswith(("runs/", "sweeps/")) for name in names)
        old = [g for g in groups if any(s["name"].startswith("old/") for s in g["sessions"])]
        assert len(old) == 3  # dlx 0.1's runs: still sessions, their own records ignored
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_plain_tensorboard_computes_a_correct_experiment_from_the_sessions(runs_folder, load_fast):
    """No run writes an experiment record, so TensorBoard's own (every scalar a metric) is right too."""
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(runs_folder),
                               "--port", str(port), f"--load_fast={load_fast}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        url = f"http://127.0.0.1:{port}/"
        expected = {str(p.relative_to(runs_folder)) for p in new_runs(runs_folder)}
        assert expected <= set(wait_for_runs_when_up(url, expected))
        experiment, groups = sessions_of(url, expected)
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert HEADLINES <= metrics
        assert {h["name"] for h in experiment["hparamInfos"] if h.get("differs")} >= {"model.noise", "sweep_point"}
        check_sessions(groups, runs_folder, "")
        check_sweep(groups)
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for_runs_when_up(url: str, expected: set[str], timeout: float = 90) -> list[str]:
    """Like wait_for_runs, for a server that prints nothing when it is ready."""
    import urllib.error

    deadline = time.time() + timeout
    while True:
        try:
            return wait_for_runs(url, expected, max(1.0, deadline - time.time()))
        except (urllib.error.URLError, ConnectionError):
            if time.time() > deadline:
                raise
            time.sleep(1)
