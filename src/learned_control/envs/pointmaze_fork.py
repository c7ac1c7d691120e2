"""The multimodal benchmark task: a symmetric PointMaze fork, its scripted expert, wall contacts.

The map (1 = wall, 0 = free; row 0 at the top)::

    1 1 1 1 1
    1 0 G 0 1      G: goal cell (1, 2)
    1 0 1 0 1      the block (2, 2) between start and goal
    1 0 S 0 1      S: tie start (3, 2)
    1 1 1 1 1

From the tie start the two shortest routes (left around the block, right around it) have the
same length, 4 cells; the expert takes either with probability 0.5.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

__all__ = ["FORK_MAP", "GOAL_CELL", "TIE_CELL", "FREE_CELLS", "make_fork_env", "reset_fork",
           "ForkExpert", "WallContacts", "route_of", "run_episode"]

FORK_MAP: list[list[int]] = [[1, 1, 1, 1, 1],
                             [1, 0, 0, 0, 1],
                             [1, 0, 1, 0, 1],
                             [1, 0, 0, 0, 1],
                             [1, 1, 1, 1, 1]]
GOAL_CELL = (1, 2)
TIE_CELL = (3, 2)
FREE_CELLS: tuple[tuple[int, int], ...] = tuple(
    (r, c) for r, row in enumerate(FORK_MAP) for c, v in enumerate(row) if v == 0 and (r, c) != GOAL_CELL)
"""Start cells: every free cell except the goal."""


def make_fork_env(max_episode_steps: int = 300) -> gym.Env:
    """``PointMaze_UMaze-v3`` on :data:`FORK_MAP`, terminating at the goal, no position noise.

    Observations are flattened (``FlattenObservation``) to ``(8,)``: achieved goal (= position)
    ``[0:2]``, desired goal ``[2:4]``, position ``[4:6]`` (m), velocity ``[6:8]`` (m/s); so a
    policy on them is goal-conditioned with ``goal_dim`` covering the goal entries.
    """
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    env = gym.make("PointMaze_UMaze-v3", maze_map=FORK_MAP, continuing_task=False,
                   max_episode_steps=max_episode_steps)
    env.unwrapped.position_noise_range = 0  # exact cell-centre starts (not a v3 constructor arg)
    return gym.wrappers.FlattenObservation(env)


def reset_fork(env: gym.Env, cell: tuple[int, int], seed: int | None = None) -> np.ndarray:
    """Reset at the centre of ``cell`` with the goal at :data:`GOAL_CELL`; the observation ``(8,)``."""
    obs, _ = env.reset(seed=seed, options={"reset_cell": np.array(cell),
                                            "goal_cell": np.array(GOAL_CELL)})
    return obs


def route_of(xs: np.ndarray) -> str:
    """``"left"`` or ``"right"``: the side of the block a trajectory of x positions ``(T,)`` passed."""
    return "left" if float(np.mean(xs)) < 0 else "right"


class WallContacts:
    """Counts MuJoCo contacts between the point and the maze walls (geoms named ``block_*``)."""

    def __init__(self, env: gym.Env) -> None:
        model = env.unwrapped.model
        self.data = env.unwrapped.data
        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, i) or "" for i in range(model.ngeom)]
        self.walls = np.array([n.startswith("block") for n in names])

    def count(self) -> int:
        """Wall contacts in the current MuJoCo state."""
        n = self.data.ncon
        if n == 0:
            return 0
        geoms = np.stack([self.data.contact.geom1[:n], self.data.contact.geom2[:n]])
        return int(np.sum(self.walls[geoms].any(0)))


class ForkExpert:
    """Shortest path over the grid, then a PD controller on the cell-centre waypoints.

    Where two next cells are equally short (the tie start), one is drawn with probability 0.5
    at the start of the episode.

    Args:
        env: a :func:`make_fork_env` env (for the cell/position conversions).
        kp: proportional gain on the waypoint error (1/m).
        kd: damping gain on the velocity (s/m).
        switch_radius: distance to a waypoint at which the next one is targeted (m).
        seed: seed of the route choice.
    """

    def __init__(self, env: gym.Env, kp: float = 10.0, kd: float = 2.0, switch_radius: float = 0.2,
                 seed: int = 0) -> None:
        self.maze = env.unwrapped.maze
        self.kp, self.kd, self.switch_radius = kp, kd, switch_radius
        self.rng = np.random.default_rng(seed)
        self.dist = self._distances()
        self.waypoints: list[np.ndarray] = []

    def _distances(self) -> dict[tuple[int, int], int]:
        dist, queue = {GOAL_CELL: 0}, deque([GOAL_CELL])
        while queue:
            r, c = queue.popleft()
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if FORK_MAP[nr][nc] == 0 and (nr, nc) not in dist:
                    dist[(nr, nc)] = dist[(r, c)] + 1
                    queue.append((nr, nc))
        return dist

    def reset(self, start_cell: tuple[int, int]) -> list[tuple[int, int]]:
        """Plan the cell path from ``start_cell``; returns it (start excluded)."""
        path, cell = [], start_cell
        while cell != GOAL_CELL:
            r, c = cell
            options = [n for n in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1))
                       if self.dist.get(n, 10**9) == self.dist[cell] - 1]
            cell = options[int(self.rng.integers(len(options)))]
            path.append(cell)
        self.waypoints = [self.maze.cell_rowcol_to_xy(np.array(p)) for p in path]
        return path

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Action ``(2,)`` (force, in [-1, 1]) for an observation ``(8,)``."""
        pos, vel = obs[4:6], obs[6:8]
        while len(self.waypoints) > 1 and np.linalg.norm(self.waypoints[0] - pos) < self.switch_radius:
            self.waypoints.pop(0)
        target = self.waypoints[0] if self.waypoints else obs[2:4]
        return np.clip(self.kp * (target - pos) - self.kd * vel, -1.0, 1.0)


def run_episode(env: gym.Env, act: Any, cell: tuple[int, int], seed: int,
                contacts: WallContacts) -> dict[str, Any]:
    """Roll ``act(obs) -> action`` from ``cell``; success, wall contacts, the xy path ``(T+1, 2)``
    and the episode's observations ``(T+1, 8)`` and actions ``(T, 2)``."""
    obs = reset_fork(env, cell, seed)
    observations, actions, hits, success = [obs], [], 0, False
    while True:
        action = np.asarray(act(obs), dtype=np.float64)
        obs, _, terminated, truncated, info = env.step(action)
        observations.append(obs)
        actions.append(action)
        hits += contacts.count()
        success = success or bool(info.get("success", info.get("is_success", False)))
        if terminated or truncated:
            break
    observations_arr = np.array(observations)
    return {"success": success, "contacts": hits, "xy": observations_arr[:, 4:6],
            "observations": observations_arr, "actions": np.array(actions),
            "terminated": bool(terminated)}
