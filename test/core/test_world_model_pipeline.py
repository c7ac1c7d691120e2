"""``learned-control world-model`` end to end on the real FetchReach at tiny budgets."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from learned_control.actors import load_sb3_expert
from learned_control.checkpoint import load_checkpoint
from learned_control.cli import main
from learned_control.data.minari_io import load_transitions
from learned_control.envs.fetch_reach import FIXED_GOAL_ENV_ID
from learned_control.envs.model_env import MODEL_ENV_ID
from learned_control.errors import ConfigError
from learned_control.evaluation import evaluate
from learned_control.tasks import get_task, make_env
from learned_control.training.world_model import EVAL_SEED_OFFSET, WorldModelConfig

TINY = [
    "--expert-steps",
    "256",
    "--n-steps",
    "64",
    "--n-envs",
    "2",
    "--eval-every",
    "128",
    "--eval-callback-episodes",
    "2",
    "--collect-steps",
    "300",
    "--aggregation-steps",
    "100",
    "--rounds",
    "1",
    "--model-ppo-steps",
    "256",
    "--model-envs",
    "4",
    "--eval-episodes",
    "3",
    "--members",
    "2",
    "--hid-size",
    "32",
    "--num-layers",
    "2",
    "--epochs",
    "2",
    "--dataset-prefix",
    "test/world-model",
    "--device",
    "cpu",
    "--no-progress",
]


@pytest.mark.slow  # ~13 s alone, ~20 s on a loaded machine
def test_cli_pipeline_writes_policy_curves_table_and_counts_real_steps(tmp_path, capsys):
    model = ["--hidden-sizes", "16", "24", "--activation", "relu"]
    assert main(["world-model", *TINY, *model, "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    (run,) = tmp_path.iterdir()
    for name in (
        "expert/best_model.zip",
        "expert/eval_reward.png",
        "round0/curves.png",
        "round0/dynamics.pt",
        "round1/curves.png",
        "rounds.png",
        "rounds.txt",
        "policy.pt",
    ):
        assert (run / name).is_file(), name
    result = json.loads((run / "result.json").read_text())
    steps = result["real_steps"]
    # the counted real-env steps of each stage are the budgets
    assert (steps["expert"], steps["collection"], steps["aggregation"]) == (256, 300, [100])
    assert "expert 256" in out and "collection 300" in out and "aggregation [100]" in out
    # ... and evaluations are counted too: every reported episode's length, nothing else
    evals = [
        r[k]
        for r in [result["expert"], *result["rounds"]]
        for k in ("fixed_stochastic", "random_deterministic")
    ]
    assert steps["evaluation"] == round(sum(e["episodes"] * e["mean_length"] for e in evals))
    assert [r["transitions"] for r in result["rounds"]] == [300, 400]
    table = (run / "rounds.txt").read_text()
    assert "expert" in table and "400" in table
    # the datasets are real Minari datasets holding exactly those steps
    assert [len(load_transitions(d)[0]) for d in result["datasets"]] == [300, 100]
    # each round's model has the asked shape and steps the registered model env
    dynamics = load_checkpoint(run / "round1" / "dynamics.pt").model
    assert [tuple(layer.weight.shape) for layer in (*dynamics.layers, dynamics.head)] == [
        (2, 17, 16),
        (2, 16, 24),
        (2, 24, 13),
    ]
    model_env = gym.make(MODEL_ENV_ID, dynamics=run / "round1" / "dynamics.pt")
    obs, _ = model_env.reset(seed=0)
    np.testing.assert_allclose(obs, gym.make(FIXED_GOAL_ENV_ID).reset(seed=0)[0], atol=1e-6)
    assert np.isfinite(model_env.step(np.zeros(4))[0]).all()

    # the exported checkpoint is the final learner's deterministic actor ...
    policy = load_checkpoint(run / "policy.pt").model
    learner = load_sb3_expert(run / "policy_ppo.zip", get_task("FetchReach-v4"), "ppo").model
    env = make_env("FetchReach-v4")
    obs = np.stack([env.reset(seed=s)[0] for s in range(10)]).astype(np.float32)
    obs[:, 3:6] += np.random.default_rng(0).normal(0, 0.3, (10, 3))
    np.testing.assert_allclose(
        policy.act(obs), learner.predict(obs, deterministic=True)[0], atol=1e-5
    )
    # ... and evaluating it offline gives the reported random-goal evaluation
    offline = evaluate(policy, env, 3, seed=EVAL_SEED_OFFSET)
    assert offline.summary() == pytest.approx(result["rounds"][-1]["random_deterministic"])
    assert (
        main(["evaluate", str(run / "policy.pt"), "--task", "FetchReach-v4", "--episodes", "2"])
        == 0
    )
    assert "mean_return" in capsys.readouterr().out


def test_bad_budgets_are_refused_before_any_work():
    with pytest.raises(ConfigError, match="not a multiple of n_steps \\* n_envs = 2048"):
        WorldModelConfig(expert_steps=1000)
    with pytest.raises(ConfigError, match="aggregation_steps=0"):
        WorldModelConfig(rounds=1, aggregation_steps=0)
    with pytest.raises(ConfigError, match="collect_steps=0"):
        WorldModelConfig(collect_steps=0)
    with pytest.raises(ConfigError, match=r"hidden_sizes=\[32, 0\]"):
        WorldModelConfig(hidden_sizes=(32, 0))
    with pytest.raises(ConfigError, match="activation='sigmoid'"):
        WorldModelConfig(activation="sigmoid")


@pytest.mark.slow  # two tiny pipelines, ~25 s
@pytest.mark.parametrize("from_scratch", [False, True])
def test_each_round_starts_from_the_experts_nets_unless_from_scratch(tmp_path, monkeypatch,
                                                                      from_scratch):
    """The nets every PPO ``learn`` call starts from. The expert (first call) trains from a fresh
    init; by default each round's learner starts from that trained expert, so both rounds start
    equal; ``--ppo-from-scratch`` continues one PPO, so round 1 starts where round 0 ended."""
    from stable_baselines3 import PPO

    starts = []
    learn = PPO.learn

    def recording_learn(self, *args, **kwargs):
        starts.append({k: v.detach().clone() for k, v in self.policy.state_dict().items()})
        return learn(self, *args, **kwargs)

    monkeypatch.setattr(PPO, "learn", recording_learn)
    flags = ["--ppo-from-scratch"] if from_scratch else []
    assert main(["world-model", *TINY, *flags, "--runs-dir", str(tmp_path)]) == 0
    expert, round0, round1 = starts

    def same(a, b) -> bool:
        return all(torch.equal(a[k], b[k]) for k in a)

    if not from_scratch:  # round 0 starts from the trained expert, not from a fresh init
        assert not same(expert, round0)
    assert same(round0, round1) != from_scratch


@pytest.mark.slow  # two tiny pipelines, ~30 s
def test_random_goal_pipeline_runs_standard_episodes_and_repeats_itself(tmp_path, monkeypatch):
    """``--random-goals``: every real training episode and every model episode is the standard
    50-step FetchReach episode (no end on success), and the same seed gives the same run: the
    expert's callback evaluations (its best checkpoint) and the exported policy."""
    from stable_baselines3 import PPO

    model_envs = []
    learn = PPO.learn

    def recording_learn(self, *args, **kwargs):
        model_envs.append(self.get_env())
        return learn(self, *args, **kwargs)

    monkeypatch.setattr(PPO, "learn", recording_learn)
    runs = []
    for i in range(2):
        flags = ["--dataset-prefix", f"test/random-goals-{i}", "--random-goals"]
        assert main(["world-model", *TINY, *flags, "--runs-dir", str(tmp_path / str(i))]) == 0
        (run,) = (tmp_path / str(i)).iterdir()
        runs.append(run)
    result = json.loads((runs[0] / "result.json").read_text())
    for dataset, budget in zip(result["datasets"], (300, 100), strict=True):
        data, _ = load_transitions(dataset)
        assert len(data) == budget and not data.terminations.any()
        ends = np.flatnonzero(data.last_steps)
        episode_lengths = np.diff(np.concatenate([[-1], ends]))
        assert (episode_lengths[:-1] == 50).all() and episode_lengths[-1] <= 50
    assert [env.terminate_on_success for env in model_envs[1:3]] == [False, False]

    first, second = (np.load(run / "expert" / "evaluations.npz") for run in runs)
    np.testing.assert_array_equal(first["results"], second["results"])
    weights = [load_checkpoint(run / "policy.pt").model.state_dict() for run in runs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
