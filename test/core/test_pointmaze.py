"""The PointMaze fork: wall contacts, the scripted expert (both routes, no contact), and the
averaging failure of mse against a mixture policy that keeps both routes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learned_control.data.episodes import Transitions
from learned_control.envs.pointmaze_fork import (FORK_MAPS, ForkExpert, WallContacts,
                                                 expert_demos, make_fork_env, reset_fork,
                                                 route_of, run_episode)
from learned_control.models.policy_classes import make_policy
from learned_control.training.bc import BCConfig, train_bc


FREE_CELLS, TIE_CELL = FORK_MAPS["narrow"].free_cells, FORK_MAPS["narrow"].tie


@pytest.fixture(scope="module")
def env():
    env = make_fork_env()
    yield env
    env.close()


@pytest.mark.parametrize("fork_map", sorted(FORK_MAPS))
def test_expert_is_clean_on_every_map_and_resets_start_at_free_cells(fork_map):
    """Seeded resets without options start at the centre of a free cell, goal at the map's goal;
    the expert reaches it from every free cell and from the tie (both routes) without contact."""
    env, spec = make_fork_env(fork_map), FORK_MAPS[fork_map]
    centres = {tuple(env.unwrapped.maze.cell_rowcol_to_xy(np.array(c))) for c in spec.free_cells}
    goal = env.unwrapped.maze.cell_rowcol_to_xy(np.array(spec.goal))
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        assert tuple(obs[4:6]) in centres and np.allclose(obs[2:4], goal)
        assert "is_success" in info
    expert, contacts, routes = ForkExpert(env, seed=0), WallContacts(env), []
    for i, cell in enumerate([*spec.free_cells, *[spec.tie] * 10]):
        expert.reset(cell)
        ep = run_episode(env, expert, cell, i, contacts)
        assert ep["success"] and ep["contacts"] == 0, cell
        routes.append(route_of(ep["xy"][:, 0]))
    assert {"left", "right"} <= set(routes[-10:])
    env.close()


def _demos(env, n: int, seed: int = 0) -> list[dict]:  # with contacts, unlike expert_demos
    expert, contacts = ForkExpert(env, seed=seed), WallContacts(env)
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(n):
        cell = FREE_CELLS[int(rng.integers(len(FREE_CELLS)))]
        expert.reset(cell)
        episodes.append(run_episode(env, expert, cell, seed + i, contacts))
    return episodes


def test_wall_contacts_are_counted(env):
    """Pushing straight up from the tie start drives into the block: contacts are seen."""
    contacts = WallContacts(env)
    ep = run_episode(env, lambda obs: np.array([0.0, 1.0]), TIE_CELL, 0, contacts)
    assert ep["contacts"] > 0 and not ep["success"]


def test_expert_takes_both_routes_cleanly(env):
    episodes = _demos(env, 40)
    assert all(e["success"] and e["contacts"] == 0 for e in episodes)
    expert, contacts = ForkExpert(env, seed=1), WallContacts(env)
    routes = []
    for i in range(20):
        expert.reset(TIE_CELL)
        ep = run_episode(env, expert, TIE_CELL, i, contacts)
        assert ep["success"] and ep["contacts"] == 0
        routes.append(route_of(ep["xy"][:, 0]))
    assert 5 <= routes.count("left") <= 15


@pytest.mark.slow
def test_mixture_keeps_both_routes_from_the_tie_where_mse_drives_at_the_block(env):
    """At test budget (300 demonstrations): at the tie start the expert heads for either corner
    of the block, force (+-0.67, 1); mse predicts their mean, straight at the block; a mixture
    with action chunks samples both, takes each route from the tie and touches no wall.

    (Whether mse then hits the block depends on how fast its own asymmetry breaks the tie, a
    matter of the seed: the benchmark prints its clean rate as it comes out.)"""
    data = Transitions.from_episodes(expert_demos(env, 300, seed=0))
    tie = reset_fork(env, TIE_CELL, 0)
    low, high, config = env.action_space.low, env.action_space.high, BCConfig(epochs=60, seed=0)
    torch.manual_seed(0)
    mse = make_policy("mse", data.obs_dim, data.act_dim, low, high, hid_size=256, num_layers=2)
    train_bc(mse, data.observations, data.actions, config, progress=False)
    force_x, force_y = mse.act(tie)
    assert abs(force_x) < 0.25 and force_y > 0.5, (force_x, force_y)

    torch.manual_seed(0)
    mixture = make_policy("mixture", data.obs_dim, data.act_dim, low, high, hid_size=256,
                          num_layers=2, chunk_size=8, execute_steps=8, seed=0)
    train_bc(mixture, data.observations, data.action_chunks(8), config, progress=False)
    samples = mixture.act(np.repeat(tie[None], 200, axis=0))[:, 0]
    assert np.mean(samples < -0.4) > 0.2 and np.mean(samples > 0.4) > 0.2
    contacts, routes, clean = WallContacts(env), [], 0
    for i in range(20):
        mixture.reset(seed=i)
        ep = run_episode(env, mixture.act, TIE_CELL, i, contacts)
        clean += ep["success"] and ep["contacts"] == 0
        routes.append(route_of(ep["xy"][:, 0]))
    assert clean >= 15 and min(routes.count("left"), routes.count("right")) >= 2, (clean, routes)
