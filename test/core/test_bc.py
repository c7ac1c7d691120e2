"""Behavior-cloning trainer: config checks, learning, outputs, and the InvertedPendulum outcome."""

import numpy as np
import pytest
import torch

from learned_control.checkpoint import load_checkpoint
from learned_control.data.episodes import Episode, Transitions
from learned_control.data.minari_io import load_transitions
from learned_control.errors import ConfigError, DatasetError
from learned_control.evaluation import evaluate
from learned_control.models.policies import MLPPolicy
from learned_control.models.policy_classes import make_policy
from learned_control.tasks import get_task
from learned_control.training.bc import BCConfig, mlp_policy_for, train_bc, train_bc_run
from learned_control.training.experts import collect_dataset
from scripted_experts import PendulumLQR


@pytest.mark.parametrize("field,value", [("epochs", 0), ("batch_size", 0), ("lr", 0.0),
                                         ("val_fraction", 1.0), ("val_fraction", -0.1)])
def test_config_rejects_out_of_range(field, value):
    with pytest.raises(ConfigError, match=f"BCConfig.{field}={value!r}"):
        BCConfig(**{field: value})


WEIGHTS = np.random.default_rng(42).normal(size=(4, 2))


def _linear_data(n=2000, seed=0):
    obs = np.random.default_rng(seed).normal(size=(n, 4)) * [1, 5, 0.1, 2]
    return obs, obs @ WEIGHTS + 3.0


def test_learns_a_linear_map_and_reports_per_epoch_losses():
    obs, act = _linear_data()
    torch.manual_seed(0)
    policy = MLPPolicy(4, 2, hid_size=32)
    result = train_bc(policy, obs, act, BCConfig(epochs=15, batch_size=64), progress=False)
    assert len(result.train_losses) == len(result.val_losses) == 15
    assert (result.train_size, result.val_size) == (1800, 200)
    assert result.val_losses[-1] < 0.02 * result.val_losses[0]  # normalized MSE, starts near 1
    test_obs, test_act = _linear_data(200, seed=1)
    relative = np.abs(policy.act(test_obs) - test_act).mean() / np.abs(test_act - 3).mean()
    assert relative < 0.1


def test_same_seed_same_weights():
    obs, act = _linear_data(300)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        policy = MLPPolicy(4, 2, hid_size=8)
        train_bc(policy, obs, act, BCConfig(epochs=2, batch_size=32, seed=5), progress=False)
        outs.append(policy.act(obs[:5]))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_no_validation_split():
    obs, act = _linear_data(100)
    result = train_bc(MLPPolicy(4, 2), obs, act, BCConfig(epochs=2, val_fraction=0.0),
                      progress=False)
    assert result.val_losses == [] and result.train_size == 100


def test_shape_mismatch_names_both_shapes():
    obs, act = _linear_data(100)
    with pytest.raises(DatasetError, match=r"\(100, 4\) and \(100, 2\).*\(5,\)"):
        train_bc(MLPPolicy(5, 2), obs, act, progress=False)
    with pytest.raises(DatasetError, match="N >= 2"):
        train_bc(MLPPolicy(4, 2), obs[:50], act, progress=False)
    bad = obs.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DatasetError, match="NaN"):
        train_bc(MLPPolicy(4, 2), bad, act, progress=False)


def test_action_chunks_stay_inside_their_episode():
    """Each step's chunk is its action and the next ones of the same episode; past the episode's
    end the last action repeats; a chunked policy refuses unchunked targets."""
    def episode(actions, seed):
        n = len(actions)
        return Episode(np.zeros((n + 1, 1)), np.array(actions, float)[:, None], np.zeros(n),
                       np.zeros(n, bool), np.arange(n) == n - 1, seed)

    data = Transitions.concatenate([Transitions.from_episodes([episode([0, 1, 2], 0)]),
                                    Transitions.from_episodes([episode([10, 11], 1)])])
    np.testing.assert_array_equal(data.action_chunks(3)[..., 0],
                                  [[0, 1, 2], [1, 2, 2], [2, 2, 2], [10, 11, 11], [11, 11, 11]])
    policy = make_policy("mixture", 1, 1, chunk_size=3, execute_steps=3, hid_size=8)
    with pytest.raises(DatasetError, match=r"\(N, H, act_dim\).*\(5, 1\)"):
        train_bc(policy, data.observations, data.actions, progress=False)
    train_bc(policy, data.observations, data.action_chunks(3), BCConfig(epochs=1), progress=False)
    unknown = Transitions(*(getattr(data, f) for f in ("observations", "actions", "rewards",
                                                       "next_observations", "terminations")))
    with pytest.raises(DatasetError, match="episode boundaries"):
        unknown.action_chunks(3)


def test_run_writes_checkpoint_curve_and_tensorboard(tmp_path):
    obs, act = _linear_data(400)
    task = get_task("Reacher-v5")  # act_dim 2, obs_dim 10: pad the synthetic data
    obs = np.concatenate([obs, np.zeros((400, 6))], axis=1)
    data = Transitions(obs, act, np.zeros(400), obs, np.zeros(400, bool))
    result, path = train_bc_run(mlp_policy_for(task, 16, 1), data, task, BCConfig(epochs=3),
                                tmp_path, progress=False, metadata={"source": "synthetic"})
    ckpt = load_checkpoint(path)
    assert ckpt.task == "Reacher-v5" and ckpt.metadata["source"] == "synthetic"
    assert ckpt.metadata["final_val_loss"] == pytest.approx(result.val_losses[-1])
    assert ckpt.metadata["bc_config"]["epochs"] == 3
    assert (tmp_path / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    np.testing.assert_array_equal(ckpt.model.action_high.numpy(), [1.0, 1.0])  # Reacher's bounds


@pytest.mark.slow
def test_bc_reaches_95_percent_of_expert_on_inverted_pendulum():
    task = get_task("InvertedPendulum-v5")
    env = task.make_env()
    env.reset(seed=0)
    expert = PendulumLQR(env)
    collect_dataset(expert, task, "test/pendulum-lqr-v0", episodes=5, seed=100, noise_std=0.1,
                    progress=False)
    transitions, env = load_transitions("test/pendulum-lqr-v0", task)
    torch.manual_seed(0)
    policy = mlp_policy_for(task)
    train_bc(policy, transitions.observations, transitions.actions, BCConfig(epochs=20),
             progress=False)
    expert_result = evaluate(expert, env, episodes=10, seed=0)
    bc_result = evaluate(policy, env, episodes=10, seed=0)
    assert expert_result.mean == 1000.0  # the expert balances all 1000 steps
    assert bc_result.mean >= 0.95 * expert_result.mean, bc_result.returns
