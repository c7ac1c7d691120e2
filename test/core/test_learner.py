"""Learner core: jobs on real local Minari datasets and bags, refusals, cancel, background runs."""

import dataclasses
import threading
import time

import numpy as np
import pytest
import torch

from learned_control.actors import RandomActor
from learned_control.checkpoint import load_checkpoint
from learned_control.data.bags import write_bag
from learned_control.errors import ConfigError, DatasetError
from learned_control.evaluation import evaluate
from learned_control.models.policy_classes import MixturePolicy
from learned_control.tasks import get_task
from learned_control.training.experts import collect_dataset
from learned_control.training.learner import (BackgroundLearner, JobCancelledError,
                                              LearnerConfig, resolve_sources, run_learner_job)
from scripted_experts import PendulumLQR

TASK = get_task("InvertedPendulum-v5")


def _wait_until(condition, timeout=60.0):
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the learner"
        time.sleep(0.02)


@pytest.fixture
def lqr_dataset():
    """5 noisy LQR episodes on InvertedPendulum-v5 as local Minari dataset ``test/lqr-v0``."""
    env = TASK.make_env()
    env.reset(seed=0)
    episodes = collect_dataset(PendulumLQR(env), TASK, "test/lqr-v0", episodes=5, seed=100,
                               noise_std=0.1, progress=False)
    return "test/lqr-v0", episodes


@pytest.mark.parametrize("field,value,match", [
    ("what", "ppo", "what='ppo'"), ("sources", [""], "sources=\\[''\\]"),
    ("task", "Nope-v0", "Nope-v0"), ("epochs", 0, "epochs=0"), ("activation", "x", "activation"),
    ("val_fraction", 0.0, "val_fraction"), ("output_dir", "", "output_dir"),
    ("device", "tpu", "device='tpu'"), ("labels", "teacher", "labels='teacher'"),
    ("policy", "flow", r"policy='flow'; expected one of \['cvae', 'diffusion', 'discrete', "
                       r"'gaussian', 'mixture', 'mse'\]"),
    ("chunk_size", 0, r"chunk_size=0; expected an integer >= 1"),
    ("chunk_size", 4, "chunk_size=4 with policy='mse'"),
    ("execute_steps", 0, r"execute_steps=0; expected an integer in \[1, chunk_size=1\]"),
    ("execute_steps", 2, r"execute_steps=2; expected an integer in \[1, chunk_size=1\]")])
def test_config_refuses_bad_values(field, value, match):
    what = "dynamics" if field == "val_fraction" else "bc"  # dynamics needs a validation split
    with pytest.raises(ConfigError, match=match):
        LearnerConfig(**{"what": what, field: value})


@pytest.mark.parametrize("options,match", [
    ({"policy": "mixture", "chunk_size": 4, "execute_steps": 5},
     r"execute_steps=5; expected an integer in \[1, chunk_size=4\]"),
    ({"what": "dynamics", "policy": "mixture"}, "policy='mixture' applies to what=bc only"),
    ({"what": "dynamics", "chunk_size": 4}, "chunk_size=4 applies to what=bc only")])
def test_config_refuses_chunk_options_that_do_not_fit(options, match):
    with pytest.raises(ConfigError, match=match):
        LearnerConfig(**options)


def test_bc_job_writes_a_policy_that_balances(lqr_dataset, tmp_path):
    dataset_id, _ = lqr_dataset
    reports = []
    config = LearnerConfig(sources=[dataset_id], epochs=20, output_dir=str(tmp_path / "out"))
    path = run_learner_job(config, on_epoch=reports.append)
    assert path == tmp_path / "out" / "bc-0001" / "bc-0001.pt" and path.is_absolute()
    assert [r.epoch for r in reports] == list(range(1, 21)) and reports[-1].epochs == 20
    assert reports[-1].val_loss < reports[0].val_loss  # normalized units; noisy labels floor it
    ckpt = load_checkpoint(path)
    assert ckpt.task == TASK.name and ckpt.metadata["sources"] == [dataset_id]
    assert ckpt.metadata["transitions"] == 5000 and ckpt.metadata["epochs"] == 20
    assert ckpt.metadata["policy"] == "mse"
    assert (path.parent / "loss_curve.png").is_file()
    result = evaluate(ckpt.model, TASK.make_env(), episodes=5, seed=0)
    env = TASK.make_env()
    random = evaluate(RandomActor(env.action_space.low, env.action_space.high), env, 5, seed=0)
    assert random.mean < 50  # what an untrained controller gets
    assert result.mean == 1000.0, result.returns  # balances all 1000 steps on every seed

    second = run_learner_job(config)  # a second job: a new file, the first one untouched
    assert second.name == "bc-0002.pt" and load_checkpoint(path).metadata == ckpt.metadata


def test_bc_job_trains_the_policy_class_with_action_chunks(lqr_dataset, tmp_path):
    dataset_id, _ = lqr_dataset
    config = LearnerConfig(sources=[dataset_id], policy="mixture", chunk_size=4,
                           execute_steps=2, epochs=2, hid_size=32,
                           output_dir=str(tmp_path / "out"))
    ckpt = load_checkpoint(run_learner_job(config))
    assert isinstance(ckpt.model, MixturePolicy)
    assert (ckpt.model.chunk_size, ckpt.model.execute_steps) == (4, 2)
    assert ckpt.metadata["policy"] == "mixture" and ckpt.metadata["epochs"] == 2
    assert ckpt.model.act(np.zeros(TASK.obs_dim)).shape == (TASK.act_dim,)


def test_dynamics_job_on_a_folder_of_bags(lqr_dataset, tmp_path):
    _, episodes = lqr_dataset
    bags = tmp_path / "bags"
    write_bag(bags / "run-a", episodes[:2])
    write_bag(bags / "run-b", episodes[2:])
    (bags / "recording").mkdir()  # a bag still being recorded: no metadata.yaml yet
    assert resolve_sources([str(bags)]) == [(str(bags / "run-a"), "bag"),
                                            (str(bags / "run-b"), "bag")]
    reports = []
    config = LearnerConfig(what="dynamics", sources=[str(bags)], epochs=10, members=2,
                           hid_size=32, output_dir=str(tmp_path / "out"))
    path = run_learner_job(config, on_epoch=reports.append)
    ckpt = load_checkpoint(path)
    assert ckpt.model.kind == "dynamics" and ckpt.metadata["transitions"] == 5000
    assert len(reports) == 10 and reports[-1].val_loss < reports[0].val_loss
    obs = torch.as_tensor(episodes[0].observations[:-1], dtype=torch.float32)
    act = torch.as_tensor(episodes[0].actions, dtype=torch.float32)
    nxt = torch.as_tensor(episodes[0].observations[1:], dtype=torch.float32)
    with torch.no_grad():
        model_mse = float(((ckpt.model.predict(obs, act).mean(0) - nxt) ** 2).mean())
    assert model_mse < 0.05 * float(((obs - nxt) ** 2).mean())  # beats "nothing moves" by 20x


def test_expert_labels_train_on_the_relabels_and_need_bags_that_carry_them(lqr_dataset,
                                                                           tmp_path):
    """labels=expert (DAgger) trains on each bag's expert_command, not on the applied actions;
    a bag without relabels, a Minari source and a dynamics job are refused."""
    dataset_id, episodes = lqr_dataset
    relabelled = [dataclasses.replace(ep, expert_actions=-ep.actions) for ep in episodes]
    write_bag(tmp_path / "relabelled", relabelled)
    write_bag(tmp_path / "plain", episodes)
    config = LearnerConfig(sources=[str(tmp_path / "relabelled")], labels="expert", epochs=20,
                           output_dir=str(tmp_path / "out"))
    relabels = load_checkpoint(run_learner_job(config)).model
    applied = load_checkpoint(run_learner_job(dataclasses.replace(
        config, sources=[str(tmp_path / "relabelled")], labels="applied"))).model
    obs = np.concatenate([ep.observations[:-1] for ep in episodes])[::25]
    on_relabels, on_applied = (np.stack([p.act(o)[0] for o in obs]) for p in (relabels, applied))
    assert np.corrcoef(on_relabels, on_applied)[0, 1] < -0.95  # it learned the negated labels
    for source, match in ((str(tmp_path / "plain"), "no expert_command for every observation"),
                          (dataset_id, "carries no expert relabels")):
        with pytest.raises(DatasetError, match=match):
            run_learner_job(dataclasses.replace(config, sources=[source]))
    with pytest.raises(ConfigError, match="expert: what=bc only"):
        LearnerConfig(what="dynamics", labels="expert")


def test_sizes_that_do_not_fit_the_task_are_refused_naming_source_and_sizes(lqr_dataset,
                                                                             tmp_path):
    dataset_id, _ = lqr_dataset
    config = LearnerConfig(sources=[dataset_id], task="Reacher-v5",
                           output_dir=str(tmp_path / "out"))
    with pytest.raises(DatasetError, match="Minari dataset 'test/lqr-v0' has observations of "
                                           "size 4 and actions of size 1; the task needs 10 and 2"):
        run_learner_job(config)
    assert not (tmp_path / "out").exists()  # refused before anything was written
    with pytest.raises(DatasetError, match="no data sources"):
        run_learner_job(LearnerConfig(output_dir=str(tmp_path / "out")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no closed rosbag2 bag"):
        run_learner_job(LearnerConfig(sources=[str(tmp_path / "empty")]))


def test_cancel_mid_training_keeps_the_previous_checkpoint(lqr_dataset, tmp_path):
    dataset_id, _ = lqr_dataset
    out = tmp_path / "out"
    first = run_learner_job(LearnerConfig(sources=[dataset_id], epochs=2, output_dir=str(out)))
    before = first.read_bytes()
    cancel = threading.Event()
    reports = []

    def on_epoch(report):
        reports.append(report)
        if report.epoch == 3:
            cancel.set()

    with pytest.raises(JobCancelledError, match="after epoch 3 of 1000"):
        run_learner_job(LearnerConfig(sources=[dataset_id], epochs=1000, output_dir=str(out)),
                        cancel, on_epoch)
    assert len(reports) == 3  # stopped between epochs, right after the flag
    assert first.read_bytes() == before and load_checkpoint(first).task == TASK.name
    assert sorted(p.name for p in out.iterdir()) == ["bc-0001"]  # the cancelled run is gone

    def crash(report):
        raise RuntimeError("simulated crash mid-training")

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_learner_job(LearnerConfig(sources=[dataset_id], epochs=5, output_dir=str(out)),
                        on_epoch=crash)
    assert first.read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["bc-0001"]


def test_background_learner_answers_at_once_refuses_a_second_job_and_reports(lqr_dataset,
                                                                             tmp_path):
    dataset_id, _ = lqr_dataset
    finished = threading.Event()
    learner = BackgroundLearner(on_finished=finished.set)
    config = LearnerConfig(sources=[dataset_id], epochs=100000, output_dir=str(tmp_path))
    assert learner.start(config)[0] and learner.busy
    started, message = learner.start(config)
    assert not started and "already training" in message
    _wait_until(lambda: learner.status().epoch >= 2)  # progress arrives while the caller is free
    assert learner.cancel()[0]
    assert finished.wait(60) and learner.join(60)
    status = learner.status()
    assert (status.state, status.last_outcome, status.jobs_done) == ("idle", "cancelled", 0)
    assert np.isfinite(status.train_loss) and "cancelled after epoch" in status.last_error
    assert learner.cancel() == (False, "no training job is running")

    finished.clear()
    learner.start(LearnerConfig(sources=["nobody/nothing-v0"], output_dir=str(tmp_path)))
    assert finished.wait(60)
    status = learner.status()
    assert status.state == "failed" and "'nobody/nothing-v0'" in status.last_error

    finished.clear()
    learner.start(LearnerConfig(sources=[dataset_id], epochs=1, output_dir=str(tmp_path)))
    assert finished.wait(60)
    status = learner.status()
    assert (status.state, status.last_outcome, status.jobs_done) == ("idle", "completed", 1)
    assert load_checkpoint(status.last_checkpoint).metadata["epochs"] == 1


def test_robot_bags_convert_with_the_spec_and_the_expert_relabels_them(lqr_dataset, tmp_path):
    """spec_file: the bags hold a robot's topics (joint states, effort commands), converted with
    the spec; expert: an actor (here an untrained seeded MLP) relabels every observation as the
    job loads them, so the policy learns the expert, not the applied (LQR) actions."""
    from learned_control.checkpoint import save_checkpoint
    from learned_control.data.robot_bags import episodes_to_bag
    from learned_control.specs import default_specs, dump_specs
    from learned_control.training.bc import mlp_policy_for

    _, episodes = lqr_dataset
    spec = tmp_path / "robot.yaml"
    spec.write_text(dump_specs(default_specs(TASK.name)))
    episodes_to_bag(tmp_path / "bags" / "robot", episodes, TASK, default_specs(TASK.name))
    torch.manual_seed(3)
    expert = mlp_policy_for(TASK, hid_size=16, num_layers=1)
    expert_path = save_checkpoint(tmp_path / "expert.pt", expert, TASK.name)
    config = LearnerConfig(sources=[str(tmp_path / "bags")], spec_file=str(spec), epochs=20,
                           labels="expert", expert=str(expert_path),
                           output_dir=str(tmp_path / "out"))
    ckpt = load_checkpoint(run_learner_job(config))
    assert ckpt.metadata["transitions"] == 5000
    obs = np.concatenate([ep.observations[:-1] for ep in episodes])[::25]
    learned = np.stack([ckpt.model.act(o)[0] for o in obs])
    labels = np.stack([expert.act(o)[0] for o in obs])
    applied = np.concatenate([ep.actions[:, 0] for ep in episodes])[::25]
    assert np.corrcoef(learned, labels)[0, 1] > 0.95
    assert abs(np.corrcoef(learned, applied)[0, 1]) < 0.9
    with pytest.raises(ConfigError, match="a robot's bags carry no expert_command"):
        LearnerConfig(spec_file=str(spec), labels="expert")
    with pytest.raises(ConfigError, match="it needs labels='expert'"):
        LearnerConfig(expert=str(expert_path))
