"""The multimodal benchmark task: a symmetric PointMaze fork, its scripted expert, wall contacts.

The map (1 = wall, 0 = free; row 0 at the top; cells are 1 m)::

    1 1 1 1 1
    1 0 G 0 1      G: goal cell (1, 2)
    1 0 0 0 1
    1 0 1 0 1      the block (3, 2) between start and goal
    1 0 0 0 1
    1 0 S 0 1      S: tie start (5, 2)
    1 1 1 1 1

The start faces the block across an open approach: from S (and from the cell between S and
the block) the shortest paths around the block on the left and on the right have the same
length, and the expert takes either with probability 0.5. Both head diagonally for a corner
of the block, so the mean of their actions drives straight into it: the averaging failure.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import mujoco
import numpy as np

from ..data.episodes import Episode
from ..tasks import FlattenDictObservation

if TYPE_CHECKING:
    from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv

__all__ = [
    "FORK_MAP",
    "GOAL_CELL",
    "TIE_CELL",
    "FREE_CELLS",
    "FORK_OBS_KEYS",
    "make_fork_env",
    "reset_fork",
    "ForkExpert",
    "WallContacts",
    "route_of",
    "run_episode",
    "expert_demos",
]

FORK_MAP: list[list[int]] = [
    [1, 1, 1, 1, 1],
    [1, 0, 0, 0, 1],
    [1, 0, 0, 0, 1],
    [1, 0, 1, 0, 1],
    [1, 0, 0, 0, 1],
    [1, 0, 0, 0, 1],
    [1, 1, 1, 1, 1],
]
GOAL_CELL = (1, 2)
TIE_CELL = (5, 2)
FREE_CELLS: tuple[tuple[int, int], ...] = tuple(
    (r, c)
    for r, row in enumerate(FORK_MAP)
    for c, v in enumerate(row)
    if v == 0 and (r, c) != GOAL_CELL
)
"""Start cells: every free cell except the goal."""


FORK_OBS_KEYS = ("achieved_goal", "desired_goal", "observation")
"""The dict observation keys of the fork env, in the order they are concatenated."""


def make_fork_env(max_episode_steps: int = 300) -> gym.Env:
    """``PointMaze_UMaze-v3`` on :data:`FORK_MAP`, terminating at the goal, no position noise.

    Observations are flattened (:class:`~learned_control.tasks.FlattenDictObservation`, keys
    in :data:`FORK_OBS_KEYS` order) to ``(8,)``: achieved goal (= position)
    ``[0:2]``, desired goal ``[2:4]``, position ``[4:6]`` (m), velocity ``[6:8]`` (m/s); so a
    policy on them is goal-conditioned with ``goal_dim`` covering the goal entries.
    """
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    env = gym.make(
        "PointMaze_UMaze-v3",
        maze_map=FORK_MAP,
        continuing_task=False,
        max_episode_steps=max_episode_steps,
    )
    # exact cell-centre starts (not a v3 constructor arg)
    cast("PointMazeEnv", env.unwrapped).position_noise_range = 0
    return FlattenDictObservation(env, FORK_OBS_KEYS)


def reset_fork(env: gym.Env, cell: tuple[int, int], seed: int | None = None) -> np.ndarray:
    """Reset at the centre of ``cell``, goal at :data:`GOAL_CELL`; the observation ``(8,)``."""
    obs, _ = env.reset(
        seed=seed, options={"reset_cell": np.array(cell), "goal_cell": np.array(GOAL_CELL)}
    )
    return obs


def route_of(xs: np.ndarray) -> str:
    """``"left"`` or ``"right"``: the side of the block that x positions ``(T,)`` passed."""
    return "left" if float(np.mean(xs)) < 0 else "right"


class WallContacts:
    """Counts MuJoCo contacts between the point and the maze walls (geoms named ``block_*``)."""

    def __init__(self, env: gym.Env) -> None:
        maze_env = cast("PointMazeEnv", env.unwrapped)
        model = maze_env.model
        self.data = maze_env.data
        names = [
            mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, i) or "" for i in range(model.ngeom)
        ]
        self.walls = np.array([n.startswith("block") for n in names])

    def count(self) -> int:
        """Wall contacts in the current MuJoCo state."""
        n = self.data.ncon
        if n == 0:
            return 0
        geoms = np.stack([self.data.contact.geom1[:n], self.data.contact.geom2[:n]])
        return int(np.sum(self.walls[geoms].any(0)))


def _crosses(p: np.ndarray, q: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether the segment ``p -> q`` passes through the open box ``(lo, hi)`` (Liang-Barsky);
    running along its edge does not count."""
    t0, t1, d = 0.0, 1.0, q - p
    for k in range(2):
        if abs(d[k]) < 1e-12:
            if not lo[k] < p[k] < hi[k]:
                return False
            continue
        a, b = sorted(((lo[k] - p[k]) / d[k], (hi[k] - p[k]) / d[k]))
        t0, t1 = max(t0, a), min(t1, b)
        if t0 >= t1 - 1e-9:
            return False
    return True


class ForkExpert:
    """Shortest path around the walls (any angle), then a PD controller on its waypoints.

    The walls are grown by ``clearance``; the shortest path from the start to the goal runs
    through corners of the grown walls (a visibility graph, Dijkstra). Where two next corners
    lie on equally short paths (the tie starts), one is drawn with probability 0.5.

    Args:
        env: a :func:`make_fork_env` env (for the cell/position conversions).
        kp: proportional gain on the waypoint error (1/m).
        kd: damping gain on the velocity (s/m).
        switch_radius: distance to a waypoint at which the next one is targeted (m).
        clearance: distance kept from the walls' faces by the path (m; the point's radius is 0.1).
        seed: seed of the route choice.
    """

    def __init__(
        self,
        env: gym.Env,
        kp: float = 10.0,
        kd: float = 2.0,
        switch_radius: float = 0.2,
        clearance: float = 0.4,
        seed: int = 0,
    ) -> None:
        self.maze = cast("PointMazeEnv", env.unwrapped).maze
        self.kp, self.kd, self.switch_radius = kp, kd, switch_radius
        self.rng = np.random.default_rng(seed)
        half = 0.5 * self.maze.maze_size_scaling + clearance
        centres = [
            self.maze.cell_rowcol_to_xy(np.array(cell))
            for cell in itertools.product(range(len(FORK_MAP)), range(len(FORK_MAP[0])))
            if FORK_MAP[cell[0]][cell[1]] == 1
        ]
        self.boxes = [(c - half, c + half) for c in centres]
        corners = {
            tuple(np.round(c + half * np.array(s), 9))
            for c in centres
            for s in itertools.product((-1, 1), repeat=2)
        }
        extent = 0.5 * self.maze.maze_size_scaling * np.array([len(FORK_MAP[0]), len(FORK_MAP)])
        self.corners = [
            np.array(c)
            for c in sorted(corners)  # inside the maze, on no other wall
            if np.all(np.abs(c) < extent) and self._free(np.array(c))
        ]
        self.goal = self.maze.cell_rowcol_to_xy(np.array(GOAL_CELL))
        self.to_goal = self._distances_to_goal()
        self.waypoints: list[np.ndarray] = []

    def _free(self, corner: np.ndarray) -> bool:
        """On no grown wall but its own (one on another wall's face or corner counts as inside)."""
        return (
            sum(
                bool(np.all(lo - 1e-9 <= corner) and np.all(corner <= hi + 1e-9))
                for lo, hi in self.boxes
            )
            == 1
        )

    def _visible(self, p: np.ndarray, q: np.ndarray) -> bool:
        return not any(_crosses(p, q, lo, hi) for lo, hi in self.boxes)

    def _distances_to_goal(self) -> list[float]:
        """Shortest path length (m) from each corner to the goal (Dijkstra, visibility graph)."""
        nodes = self.corners + [self.goal]
        dist, heap = [np.inf] * len(self.corners) + [0.0], [(0.0, len(self.corners))]
        while heap:
            d, i = heapq.heappop(heap)
            if d > dist[i]:
                continue
            for j, node in enumerate(self.corners):
                step = d + float(np.linalg.norm(node - nodes[i]))
                if step < dist[j] - 1e-12 and self._visible(nodes[i], node):
                    dist[j] = step
                    heapq.heappush(heap, (step, j))
        return dist[:-1]

    def reset(self, start_cell: tuple[int, int]) -> list[np.ndarray]:
        """Plan the waypoints ``(2,)`` (m) from the centre of ``start_cell``; returns them."""
        position, self.waypoints = self.maze.cell_rowcol_to_xy(np.array(start_cell)), []
        while True:
            if self._visible(position, self.goal):
                self.waypoints.append(self.goal)
                return self.waypoints
            lengths = [
                float(np.linalg.norm(c - position)) + d
                if d < np.inf and np.any(c != position) and self._visible(position, c)
                else np.inf
                for c, d in zip(self.corners, self.to_goal, strict=True)
            ]
            best = min(lengths)
            ties = [i for i, length in enumerate(lengths) if length < best + 1e-6]
            position = self.corners[ties[int(self.rng.integers(len(ties)))]]
            self.waypoints.append(position)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Action ``(2,)`` (force, in [-1, 1]) for an observation ``(8,)``."""
        pos, vel = obs[4:6], obs[6:8]
        while (
            len(self.waypoints) > 1 and np.linalg.norm(self.waypoints[0] - pos) < self.switch_radius
        ):
            self.waypoints.pop(0)
        target = self.waypoints[0] if self.waypoints else obs[2:4]
        force = self.kp * (target - pos) - self.kd * vel
        return force / max(1.0, float(np.abs(force).max()))  # saturate keeping the direction


def run_episode(
    env: gym.Env, act: Any, cell: tuple[int, int], seed: int, contacts: WallContacts
) -> dict[str, Any]:
    """Roll ``act(obs) -> action`` from ``cell``; success, wall contacts, the xy path ``(T+1, 2)``
    and the episode's observations ``(T+1, 8)``, actions ``(T, 2)`` and rewards ``(T,)``."""
    obs = reset_fork(env, cell, seed)
    observations, actions, rewards, hits, success = [obs], [], [], 0, False
    while True:
        action = np.asarray(act(obs), dtype=np.float64)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        hits += contacts.count()
        success = success or bool(info.get("success", info.get("is_success", False)))
        if terminated or truncated:
            break
    observations_arr = np.array(observations)
    return {
        "success": success,
        "contacts": hits,
        "xy": observations_arr[:, 4:6],
        "observations": observations_arr,
        "actions": np.array(actions),
        "rewards": np.array(rewards, dtype=np.float64),
        "terminated": bool(terminated),
    }


def expert_demos(env: gym.Env, count: int, seed: int) -> list[Episode]:
    """``count`` :class:`ForkExpert` episodes from uniformly random start cells (reset seeds
    ``seed, seed + 1, ...``), for a Minari dataset or for training directly."""
    expert, contacts = ForkExpert(env, seed=seed), WallContacts(env)
    rng, episodes = np.random.default_rng(seed), []
    for i in range(count):
        cell = FREE_CELLS[int(rng.integers(len(FREE_CELLS)))]
        expert.reset(cell)
        ep = run_episode(env, expert, cell, seed + i, contacts)
        steps = len(ep["actions"])
        terminated = np.zeros(steps, bool)
        terminated[-1] = ep["terminated"]
        truncated = ~terminated & (np.arange(steps) == steps - 1)
        episodes.append(
            Episode(
                ep["observations"], ep["actions"], ep["rewards"], terminated, truncated, seed + i
            )
        )
    return episodes
