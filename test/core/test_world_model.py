"""World-model pieces on the real FetchReach: fixed-goal task, model env scoring, SB3 export."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.envs.fetch_reach import FIXED_GOAL, FIXED_GOAL_ENV_ID, make_fixed_goal_env
from learned_control.envs.model_env import MODEL_ENV_ID, ModelVecEnv
from learned_control.errors import CheckpointError, ConfigError
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.models.policies import MLPPolicy
from learned_control.tasks import make_env
from learned_control.training.world_model import sb3_actor_to_policy


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _real_rollout(env, steps: int, seed: int):
    """Random-action transitions (obs, act, next_obs, reward, terminated, success) in ``env``."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        act = rng.uniform(-1, 1, 4)
        nxt, rew, term, trunc, info = env.step(act)
        out.append((obs, act, nxt, rew, term, info["is_success"]))
        obs = env.reset()[0] if term or trunc else nxt
    return out


def test_fixed_goal_env_goal_reward_and_success():
    env = make_fixed_goal_env()
    data = _real_rollout(env, 60, seed=0)
    for obs, _, nxt, rew, term, succ in data:
        np.testing.assert_allclose(nxt[:3], FIXED_GOAL)
        d0, d1 = (np.linalg.norm(o[3:6] - np.asarray(FIXED_GOAL)) for o in (obs, nxt))
        assert rew == pytest.approx(10 * (d0 - d1))
        assert term == bool(succ) == (d1 < 0.05)
    # The real env computes success against the same goal.
    assert env.unwrapped.goal.tolist() == pytest.approx(list(FIXED_GOAL))
    by_id = gym.make(FIXED_GOAL_ENV_ID)
    np.testing.assert_allclose(by_id.reset(seed=0)[0], make_fixed_goal_env().reset(seed=0)[0])


def test_random_goal_variant_keeps_the_sampled_goal_with_the_shaped_reward():
    env, plain = gym.make(FIXED_GOAL_ENV_ID, goal=None), make_env("FetchReach-v4")
    goals = [env.reset(seed=s)[0][:3] for s in range(3)]
    for s, goal in enumerate(goals):  # the env's own sampling, not the fixed goal
        np.testing.assert_allclose(goal, plain.reset(seed=s)[0][:3])
        assert not np.allclose(goal, FIXED_GOAL)
    data = _real_rollout(env, 60, seed=4)
    for obs, _, nxt, rew, term, succ in data:
        np.testing.assert_allclose(nxt[:3], obs[:3])
        d0, d1 = (np.linalg.norm(o[3:6] - obs[:3]) for o in (obs, nxt))
        assert rew == pytest.approx(10 * (d0 - d1))
        assert term == bool(succ) == (d1 < 0.05)
    with pytest.raises(ConfigError, match="expected 3 coordinates in metres or None"):
        make_fixed_goal_env(goal=(1.0, 2.0))


def _reach(obs: np.ndarray) -> np.ndarray:
    """A proportional reach to the goal: succeeds within a few steps and then stays."""
    return np.append(np.clip(10 * (obs[:3] - obs[3:6]), -1, 1), 0.0)


def test_standard_episode_runs_50_steps_past_success_with_the_shaped_reward():
    """``terminate_on_success=False``: the standard FetchReach episode, success of every step."""
    env = gym.make(FIXED_GOAL_ENV_ID, goal=None, terminate_on_success=False)
    plain = make_env("FetchReach-v4")
    obs, _ = env.reset(seed=3)
    plain_obs, _ = plain.reset(seed=3)
    successes = []
    for t in range(50):
        act = _reach(obs)
        nxt, rew, term, trunc, info = env.step(act)
        plain_obs, _, _, plain_trunc, plain_info = plain.step(act)
        np.testing.assert_allclose(nxt, plain_obs)  # the same episode as the standard env's
        assert info["is_success"] == plain_info["is_success"]
        d0, d1 = (np.linalg.norm(o[3:6] - obs[:3]) for o in (obs, nxt))
        assert rew == pytest.approx(10 * (d0 - d1))
        assert not term and trunc == plain_trunc == (t == 49)
        successes.append(info["is_success"])
        obs = nxt
    assert successes[0] == 0.0 and successes[-1] == 1.0  # reached, and still there at the end


def _reached_episode(goal, terminate_on_success: bool, seed: int = 1) -> list[tuple]:
    """A real episode (reset ``seed``) of the scripted reach: (obs, act, next_obs, reward,
    success, terminated, truncated) per step."""
    env = make_fixed_goal_env(goal=goal, terminate_on_success=terminate_on_success)
    obs, _ = env.reset(seed=seed)
    data = []
    done = False
    while not done:  # drive toward the goal so some transitions succeed
        act = _reach(obs)
        nxt, rew, term, trunc, info = env.step(act)
        data.append((obs, act, nxt, rew, info["is_success"], term, trunc))
        obs, done = nxt, term or trunc
    assert data[-1][4] == 1.0, "the scripted reach must reach the goal"
    assert len(data) == 50 or terminate_on_success
    return data


def _replay(data: list[tuple]):
    """A 'model' that returns the real next states of ``data`` in order."""
    real_next = iter(torch.as_tensor(np.stack([d[2] for d in data]), dtype=torch.float32))
    return lambda o, a: next(real_next)[None]


@pytest.mark.parametrize("terminate_on_success", [True, False])
def test_model_env_scores_real_transitions_like_the_real_env(terminate_on_success):
    """Replay a real episode as the 'model': reward, success and episode ends equal the real
    env's, in the fixed-goal task (ends on success) and in the standard 50-step episode."""
    goal = FIXED_GOAL if terminate_on_success else None
    data = [(*d[:5], d[5] or d[6]) for d in _reached_episode(goal, terminate_on_success)]
    venv = ModelVecEnv(
        _replay(data),
        data[0][0][None].astype(np.float32),
        num_envs=1,
        max_steps=50,
        terminate_on_success=terminate_on_success,
    )
    venv.reset()
    for _, act, nxt, rew, success, real_done in data:
        venv.step_async(act[None])
        model_obs, model_rew, model_done, (info,) = venv.step_wait()
        assert model_rew[0] == pytest.approx(rew, abs=1e-5)
        assert info["is_success"] == bool(success)
        assert model_done[0] == real_done
        if not real_done:
            np.testing.assert_allclose(model_obs[0], nxt, atol=1e-6)
    np.testing.assert_allclose(info["terminal_observation"], data[-1][2], atol=1e-6)
    assert info["TimeLimit.truncated"] == (not terminate_on_success)


@pytest.mark.parametrize("terminate_on_success", [True, False])
def test_registered_model_env_starts_and_scores_like_the_real_env(terminate_on_success):
    """``gym.make(MODEL_ENV_ID)``: resets are the real env's (same seed, same start and goal),
    and on a replayed real episode reward, success, termination and the 50-step time limit are
    the real env's."""
    goal = FIXED_GOAL if terminate_on_success else None
    data = _reached_episode(goal, terminate_on_success, seed=2)
    env = gym.make(
        MODEL_ENV_ID,
        dynamics=_replay(data),
        goal=goal,
        terminate_on_success=terminate_on_success,
    )
    obs, _ = env.reset(seed=2)
    np.testing.assert_allclose(obs, data[0][0], atol=1e-6)
    for _, act, nxt, rew, success, term, trunc in data:
        obs, model_rew, model_term, model_trunc, info = env.step(act)
        np.testing.assert_allclose(obs, nxt, atol=1e-6)
        assert model_rew == pytest.approx(rew, abs=1e-5)
        assert (info["is_success"], model_term, model_trunc) == (success, term, trunc)


def test_registered_model_env_from_a_checkpoint_trains_any_sb3_algorithm(tmp_path):
    """A dynamics checkpoint (the small 32-64 MLP's shape) makes the registered env and the
    VecEnv; SB3's env checker accepts the env, and SAC (off-policy) trains in both."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_checker import check_env

    torch.manual_seed(0)
    dyn = EnsembleDynamics(13, 4, members=1, hidden_sizes=(32, 64), activation="relu")
    path = save_checkpoint(tmp_path / "dynamics.pt", dyn, task="FetchReach-v4")
    starts = np.stack([make_fixed_goal_env().reset(seed=s)[0] for s in range(4)])
    env = gym.make(MODEL_ENV_ID, dynamics=str(path), start_obs=starts)
    check_env(env.unwrapped, warn=False)
    obs, _ = env.reset(seed=0)
    assert any(np.allclose(obs, s) for s in starts)
    obs_t = torch.as_tensor(obs[None])
    act = np.full(4, 0.5, np.float32)
    expected = dyn.predict(obs_t, torch.as_tensor(act[None])).mean(0)[0].detach().numpy()
    expected[:3] = obs[:3]  # the goal is held
    np.testing.assert_allclose(env.step(act)[0], expected, atol=1e-6)
    for train_env in (env, ModelVecEnv(path, starts, num_envs=2)):
        sac = SAC("MlpPolicy", train_env, learning_starts=32, batch_size=32, seed=0, device="cpu")
        sac.learn(64)
        assert sac.num_timesteps == 64 and sac.replay_buffer.size() > 0


def test_registered_model_env_refuses_bad_actions_and_checkpoints(tmp_path):
    starts = make_fixed_goal_env().reset(seed=0)[0][None]
    env = gym.make(MODEL_ENV_ID, dynamics=lambda o, a: o, start_obs=starts).unwrapped
    with pytest.raises(gym.error.ResetNeeded, match="call reset"):
        env.step(np.zeros(4))
    env.reset(seed=0)
    for bad in (np.zeros(3), np.array([0.0, np.nan, 0.0, 0.0])):
        with pytest.raises(ValueError, match="expected 4 finite numbers"):
            env.step(bad)
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        gym.make(MODEL_ENV_ID, dynamics=str(tmp_path / "missing.pt"))
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        gym.make(MODEL_ENV_ID, dynamics=tmp_path / "corrupt.pt")
    policy = save_checkpoint(tmp_path / "policy.pt", MLPPolicy(13, 4), task="FetchReach-v4")
    with pytest.raises(CheckpointError, match="not a dynamics model"):
        gym.make(MODEL_ENV_ID, dynamics=policy)
    other = save_checkpoint(tmp_path / "dyn11.pt", EnsembleDynamics(11, 4))
    with pytest.raises(CheckpointError, match="observations of size 11"):
        gym.make(MODEL_ENV_ID, dynamics=other)
    with pytest.raises(ConfigError, match=r"start_obs has shape \(2, 12\)"):
        gym.make(MODEL_ENV_ID, dynamics=lambda o, a: o, start_obs=np.zeros((2, 12)))


def test_model_env_rejects_bad_start_states():
    with pytest.raises(ConfigError, match=r"start_obs has shape \(4, 5\)"):
        ModelVecEnv(lambda o, a: o, np.zeros((4, 5)))


def _tiny_ppo(venv: ModelVecEnv) -> PPO:
    """PPO with the pipeline's [128] tanh nets and a tiny rollout (32 steps per env, 1 epoch)."""
    return PPO(
        "MlpPolicy",
        venv,
        n_steps=32,
        batch_size=64,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs=dict(net_arch=dict(pi=[128], vf=[128]), activation_fn=torch.nn.Tanh),
    )


def test_sb3_ppo_runs_in_model_env_and_export_matches_predict(tmp_path):
    env = make_fixed_goal_env()
    starts = np.stack([env.reset(seed=s)[0] for s in range(8)]).astype(np.float32)
    delta = torch.nn.Linear(17, 13)

    def predict(o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return o + 0.01 * delta(torch.cat([o, a], -1))

    venv = ModelVecEnv(predict, starts, num_envs=4, max_steps=10)
    model = _tiny_ppo(venv)
    model.learn(256)
    policy = sb3_actor_to_policy(model)
    path = save_checkpoint(tmp_path / "policy.pt", policy, task="FetchReach-v4")
    loaded = load_checkpoint(path).model
    obs = np.stack([env.reset(seed=s)[0] for s in range(20)]).astype(np.float32)
    # push some actions into the clip
    obs[:, 3:6] += np.random.default_rng(0).normal(0, 0.3, (20, 3))
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(loaded.act(obs), expected, atol=1e-5)


def test_pipeline_real_data_to_model_to_ppo_to_real_env(tmp_path):
    """Tiny budgets: real transitions -> ensemble fit -> PPO in the model -> real-env evaluation."""
    from learned_control.envs.model_env import collect_transitions, ensemble_predict
    from learned_control.models.dynamics import EnsembleDynamics
    from learned_control.training.dynamics import DynamicsTrainConfig, train_dynamics

    env = make_fixed_goal_env()
    rng = np.random.default_rng(0)
    data = collect_transitions(env, lambda o: rng.uniform(-1, 1, 4), 300, seed=0)
    assert data.observations.shape == (300, 13) and data.actions.shape == (300, 4)
    dyn = EnsembleDynamics(13, 4, members=2, hid_size=32, num_layers=2)
    history = train_dynamics(
        dyn, data, DynamicsTrainConfig(epochs=5, batch_size=64, patience=0), seed=0
    )
    assert len(history.train_loss) == 5
    assert history.val_one_step_mse[-1] < history.val_one_step_mse[0]  # the model learns
    starts = np.stack([env.reset(seed=s)[0] for s in range(8)]).astype(np.float32)
    venv = ModelVecEnv(ensemble_predict(dyn), starts, num_envs=4)
    model = _tiny_ppo(venv)
    model.learn(128)
    policy = sb3_actor_to_policy(model)
    real = collect_transitions(env, policy.act, 60, seed=5)
    np.testing.assert_allclose(
        real.observations[:, :3], np.broadcast_to(FIXED_GOAL, (60, 3)), atol=1e-6
    )
    assert np.isfinite(real.rewards).all()
