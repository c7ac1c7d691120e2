"""Torch rewards and terminations against the envs' own, on real transitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learned_control.errors import ConfigError
from learned_control.planning.rewards import get_reward_fns
from learned_control.tasks import make_env


def _transitions(task: str, steps: int, seed: int = 0, action_scale: float = 1.0):
    """``steps`` random-action transitions (resetting at termination); arrays + env rewards/dones."""
    env = make_env(task)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(steps):
        action = action_scale * rng.uniform(env.action_space.low, env.action_space.high)
        nxt, reward, terminated, truncated, info = env.step(action)
        rows.append((obs, action, nxt, reward, terminated, info))
        obs = nxt
        if terminated or truncated:
            obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    obs, act, nxt, rew, done, infos = zip(*rows)
    as_t = lambda x: torch.as_tensor(np.array(x), dtype=torch.float64)  # noqa: E731
    return as_t(obs), as_t(act), as_t(nxt), as_t(rew), torch.tensor(done), infos


@pytest.mark.parametrize("task", ["Reacher-v5", "Pusher-v5"])
def test_exact_rewards(task):
    obs, act, nxt, rew, _, _ = _transitions(task, 300)
    reward_fn, done_fn = get_reward_fns(task)
    torch.testing.assert_close(reward_fn(obs, act, nxt), rew, rtol=0, atol=1e-9)
    # batched over any leading shape
    assert reward_fn(obs.view(3, 100, -1), act.view(3, 100, -1), nxt.view(3, 100, -1)).shape == (3, 100)
    assert not bool(done_fn(nxt).any())


def test_pendulum_env_reward_and_termination():
    obs, act, nxt, rew, done, _ = _transitions("InvertedPendulum-v5", 400, action_scale=1.0)
    assert bool(done.any()) and not bool(done.all())
    reward_fn, done_fn = get_reward_fns("InvertedPendulum-v5")
    assert torch.equal(done_fn(nxt), done)
    torch.testing.assert_close(reward_fn(obs, act, nxt), rew, rtol=0, atol=0)


def test_pendulum_shaped_reward():
    reward_fn, done_fn = get_reward_fns("InvertedPendulum-v5/shaped")
    states = torch.tensor([[0.5, 0.1, 0, 0], [0.0, 0.3, 0, 0], [-1.5, 0.0, 0, 0]])
    expected = torch.tensor([-0.25 / 5 - 0.01 + 1, -0.09 + 1 - 2, -2.25 / 5 + 1 - 2])
    torch.testing.assert_close(reward_fn(states, torch.zeros(3, 1), states), expected)
    assert not bool(done_fn(states).any())


def test_pendulum_centered_terminates_near_rail():
    _, done_fn = get_reward_fns("InvertedPendulum-v5/centered")
    states = torch.tensor([[0.5, 0.1, 0, 0], [0.95, 0.0, 0, 0], [0.0, -0.25, 0, 0]])
    assert done_fn(states).tolist() == [False, True, True]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pendulum_terminations_at_their_limits_and_on_non_finite_states(dtype):
    """The terminations compare against the next value above each limit; they must equal the
    plain ``|v| > limit or not finite`` at the limit itself, just above it, and on NaN/inf."""
    inf, nan = float("inf"), float("nan")
    limit = {"InvertedPendulum-v5": (inf, 0.2), "InvertedPendulum-v5/centered": (0.9, 0.2)}
    for name, (x_max, theta_max) in limit.items():
        _, done_fn = get_reward_fns(name)
        edges = []
        for value in (0.0, 0.2, 0.9, 5.0):
            v = torch.tensor(value, dtype=dtype)
            edges += [v, torch.nextafter(v, torch.tensor(inf, dtype=dtype)), -v]
        rows = [[x, t, 0.0, 0.0] for x in edges for t in edges]
        rows += [[0.0, 0.0, nan, 0.0], [0.0, 0.0, 0.0, -inf], [nan, 0.0, 0, 0], [0.0, inf, 0, 0]]
        states = torch.tensor(rows, dtype=dtype)
        x_max, theta_max = torch.tensor(x_max, dtype=dtype), torch.tensor(theta_max, dtype=dtype)
        plain = ((states[:, 0].abs() > x_max) | (states[:, 1].abs() > theta_max)
                 | ~torch.isfinite(states).all(-1))
        assert torch.equal(done_fn(states), plain), name
        assert torch.equal(done_fn(states.view(4, -1, 4)), plain.view(4, -1)), name


def test_half_cheetah_velocity_reward_within_tolerance():
    """x displacement / dt (env) vs mean root x velocity over the step (ours): mean error
    < 0.2, max < 1.0 per step on random transitions."""
    obs, act, nxt, rew, _, infos = _transitions("HalfCheetah-v5", 500)
    reward_fn, _ = get_reward_fns("HalfCheetah-v5")
    ours = reward_fn(obs, act, nxt)
    err = (ours - rew).abs()
    assert float(err.mean()) < 0.2 and float(err.max()) < 1.0, (float(err.mean()), float(err.max()))
    # the control cost part is exact: the difference is only the velocity estimate
    velocity = torch.tensor([i["x_velocity"] for i in infos], dtype=torch.float64)
    torch.testing.assert_close(ours - (obs[:, 8] + nxt[:, 8]) / 2, rew - velocity, rtol=0, atol=1e-9)


def test_unknown_reward_names_known_ones():
    with pytest.raises(ConfigError, match="Reacher-v5"):
        get_reward_fns("Nope-v0")
