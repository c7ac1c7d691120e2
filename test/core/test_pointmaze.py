"""The PointMaze fork: wall-contact counting and the scripted expert (both routes, no contact)."""

from __future__ import annotations

import numpy as np
import pytest

from learned_control.envs.pointmaze_fork import (FREE_CELLS, TIE_CELL, ForkExpert, WallContacts,
                                                 make_fork_env, route_of, run_episode)


@pytest.fixture(scope="module")
def env():
    env = make_fork_env()
    yield env
    env.close()


def _demos(env, n: int, seed: int = 0) -> list[dict]:
    expert, contacts, rng = ForkExpert(env, seed=seed), WallContacts(env), np.random.default_rng(seed)
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
