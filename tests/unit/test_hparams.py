"""Which hyperparameters and metrics a run records, and the experiment dlx tensorboard serves.

No run and no server here: the served experiment over real runs, read back
from TensorBoard, is in tests/system/test_hparams.py.
"""

from __future__ import annotations

import json
import shutil

import pytest

from dlx import hparams, hparams_scope, registry
from dlx.config import build, to_dict
from dlx.rundir import flat_hparams
from tests.paths import OLD_RUNS


def resolved(family: str, *assignments: str):
    """A family's resolved config with ``--set`` assignments."""
    return build(registry.config_class(family), None, None, list(assignments))


def applied(family: str, *assignments: str) -> dict:
    """The hyperparameters a run of that config records."""
    return hparams.run_hparams(family, resolved(family, *assignments))


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
    # Marked (ticked): only keys every run has (parallel coordinates draw a run only with all of them).
    marked = {h.name for h in experiment.hparam_infos if h.differs}
    assert marked == {"family"}
    sweep_only = hparams_scope.experiment({run: infos[run] for run in ("sweeps/s/cnn/p0", "sweeps/s/cnn/p1")},
                                          {run: tags[run] for run in ("sweeps/s/cnn/p0", "sweeps/s/cnn/p1")})
    assert {h.name for h in sweep_only.hparam_infos if h.differs} == {"model.pool", "sweep_point"}
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
