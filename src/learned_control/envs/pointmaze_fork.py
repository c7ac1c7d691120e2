"""The multimodal benchmark task: symmetric PointMaze forks, their scripted expert, wall contacts.

Two maps (1 = wall, 0 = free; row 0 at the top; cells are 1 m; G goal, S tie start)::

    narrow (PointMazeFork-v0)        wide (PointMazeForkWide-v0)
    1 1 1 1 1                        1 1 1 1 1 1 1 1 1
    1 0 G 0 1                        1 0 0 0 G 0 0 0 1
    1 0 0 0 1                        1 0 0 0 0 0 0 0 1
    1 0 1 0 1                        1 0 0 1 1 1 0 0 1
    1 0 0 0 1                        1 0 0 1 1 1 0 0 1
    1 0 S 0 1                        1 0 0 0 0 0 0 0 1
    1 1 1 1 1                        1 0 0 0 0 0 0 0 1
                                     1 0 0 0 S 0 0 0 1
                                     1 1 1 1 1 1 1 1 1

narrow: 1 m corridors beside a 1 x 1 m block, one free cell between S and the block; wide: 2 m
corridors beside a 3 x 2 m block, two free cells between S and the block. The start faces the
block across the open approach: from S (and from the cells between S and the block) the shortest
paths around the block on the left and on the right have the same length, and the expert takes
either with probability 0.5. Both head diagonally for a corner of the block, so the mean of their
actions drives straight into it: the averaging failure.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any, cast

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv

from ..data.episodes import Episode
from ..errors import ConfigError
from ..tasks import FlattenDictObservation

__all__ = [
    "ForkMap",
    "FORK_MAPS",
    "FORK_ENV_IDS",
    "FORK_OBS_KEYS",
    "ForkMazeEnv",
    "fork_map_of",
    "make_fork_env",
    "reset_fork",
    "ForkExpert",
    "WallContacts",
    "route_of",
    "run_episode",
    "expert_demos",
]


@dataclass(frozen=True)
class ForkMap:
    """A fork map: the maze (rows of 1 = wall, 0 = free), the goal cell and the tie start cell
    (row, column), and the episode's time limit in steps."""

    rows: tuple[tuple[int, ...], ...]
    goal: tuple[int, int]
    tie: tuple[int, int]
    max_episode_steps: int

    @property
    def free_cells(self) -> tuple[tuple[int, int], ...]:
        """Start cells: every free cell except the goal."""
        return tuple(
            (r, c)
            for r, row in enumerate(self.rows)
            for c, v in enumerate(row)
            if v == 0 and (r, c) != self.goal
        )

    @property
    def wall_cells(self) -> tuple[tuple[int, int], ...]:
        """Every wall cell, the outer walls included."""
        return tuple((r, c) for r, row in enumerate(self.rows) for c, v in enumerate(row) if v == 1)

    @property
    def block(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower-left and upper-right corners ``(2,)`` (m, env xy) of the inner walls (the
        block between the tie start and the goal)."""
        h, w = len(self.rows), len(self.rows[0])
        inner = [(r, c) for r, c in self.wall_cells if 0 < r < h - 1 and 0 < c < w - 1]
        xs = [c - (w - 1) / 2 for _, c in inner]
        ys = [(h - 1) / 2 - r for r, _ in inner]
        return np.array([min(xs) - 0.5, min(ys) - 0.5]), np.array([max(xs) + 0.5, max(ys) + 0.5])


def _rows(*text: str) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(v) for v in line.split()) for line in text)


FORK_MAPS: dict[str, ForkMap] = {
    "narrow": ForkMap(
        _rows(
            "1 1 1 1 1",
            "1 0 0 0 1",
            "1 0 0 0 1",
            "1 0 1 0 1",
            "1 0 0 0 1",
            "1 0 0 0 1",
            "1 1 1 1 1",
        ),
        goal=(1, 2),
        tie=(5, 2),
        max_episode_steps=300,
    ),
    "wide": ForkMap(
        _rows(
            "1 1 1 1 1 1 1 1 1",
            "1 0 0 0 0 0 0 0 1",
            "1 0 0 0 0 0 0 0 1",
            "1 0 0 1 1 1 0 0 1",
            "1 0 0 1 1 1 0 0 1",
            "1 0 0 0 0 0 0 0 1",
            "1 0 0 0 0 0 0 0 1",
            "1 0 0 0 0 0 0 0 1",
            "1 1 1 1 1 1 1 1 1",
        ),
        goal=(1, 4),
        tie=(7, 4),
        max_episode_steps=400,
    ),
}
"""Fork maps by name (the ``fork_map`` argument of :class:`ForkMazeEnv`)."""

FORK_ENV_IDS = {
    "narrow": "LearnedControl/PointMazeFork-v0",
    "wide": "LearnedControl/PointMazeForkWide-v0",
}
"""Gymnasium id of each fork map's env (registered when this module is imported); the tasks
``PointMazeFork-v0`` and ``PointMazeForkWide-v0`` of :mod:`learned_control.tasks` build them."""

FORK_OBS_KEYS = ("achieved_goal", "desired_goal", "observation")
"""The dict observation keys of the fork env, in the order they are concatenated."""


class ForkMazeEnv(PointMazeEnv):
    """PointMaze on a :data:`FORK_MAPS` map: ends at the goal, no position noise, the goal at the
    map's goal cell and each start at the centre of a free cell drawn from the reset seed (reset
    options ``reset_cell``/``goal_cell`` still choose them); ``info["is_success"]`` as
    ``info["success"]``.

    Args:
        fork_map: a key of :data:`FORK_MAPS` (default ``narrow``).
        **kwargs: :class:`PointMazeEnv` arguments (``render_mode``, ``reward_type``, ...).
    """

    def __init__(self, fork_map: str = "narrow", **kwargs: Any) -> None:
        if fork_map not in FORK_MAPS:
            raise ConfigError(f"fork_map={fork_map!r}; expected one of {sorted(FORK_MAPS)}")
        self.fork_map = FORK_MAPS[fork_map]
        super().__init__(
            maze_map=[list(row) for row in self.fork_map.rows], continuing_task=False, **kwargs
        )
        self.position_noise_range = 0  # exact cell-centre starts (not a constructor argument)

    def generate_target_goal(self) -> np.ndarray:
        return self.maze.cell_rowcol_to_xy(np.array(self.fork_map.goal))

    def generate_reset_pos(self) -> np.ndarray:
        cells = self.fork_map.free_cells
        return self.maze.cell_rowcol_to_xy(
            np.array(cells[int(self.np_random.integers(len(cells)))])
        )

    def reset(self, *, seed: int | None = None, **kwargs: Any) -> tuple[dict, dict]:
        obs, info = super().reset(seed=seed, **kwargs)
        return obs, {**info, "is_success": info["success"]}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {**info, "is_success": info["success"]}


for _name, _id in FORK_ENV_IDS.items():
    if _id not in gym.registry:
        gym.register(
            _id,
            entry_point=f"{__name__}:ForkMazeEnv",
            kwargs={"fork_map": _name},
            max_episode_steps=FORK_MAPS[_name].max_episode_steps,
        )


def fork_map_of(env: gym.Env) -> ForkMap:
    """The :class:`ForkMap` of a :class:`ForkMazeEnv` (through its wrappers)."""
    return cast(ForkMazeEnv, env.unwrapped).fork_map


def make_fork_env(fork_map: str = "narrow", max_episode_steps: int | None = None) -> gym.Env:
    """The fork env of ``fork_map`` (:data:`FORK_ENV_IDS`), observations flattened
    (:class:`~learned_control.tasks.FlattenDictObservation`, keys in :data:`FORK_OBS_KEYS` order)
    to ``(8,)``: achieved goal (= position) ``[0:2]``, desired goal ``[2:4]``, position ``[4:6]``
    (m), velocity ``[6:8]`` (m/s). ``max_episode_steps``: the map's by default."""
    if fork_map not in FORK_MAPS:
        raise ConfigError(f"fork_map={fork_map!r}; expected one of {sorted(FORK_MAPS)}")
    env = gym.make(FORK_ENV_IDS[fork_map], max_episode_steps=max_episode_steps)
    return FlattenDictObservation(env, FORK_OBS_KEYS)


def reset_fork(env: gym.Env, cell: tuple[int, int], seed: int | None = None) -> np.ndarray:
    """Reset at the centre of ``cell``, goal at the map's goal cell; the observation ``(8,)``."""
    obs, _ = env.reset(
        seed=seed,
        options={"reset_cell": np.array(cell), "goal_cell": np.array(fork_map_of(env).goal)},
    )
    return obs


def route_of(xs: np.ndarray) -> str:
    """``"left"`` or ``"right"``: the side of the block that x positions ``(T,)`` passed."""
    return "left" if float(np.mean(xs)) < 0 else "right"


class WallContacts:
    """Counts MuJoCo contacts between the point and the maze walls (geoms named ``block_*``)."""

    def __init__(self, env: gym.Env) -> None:
        maze_env = cast(PointMazeEnv, env.unwrapped)
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
        self.maze, fork_map = cast(ForkMazeEnv, env.unwrapped).maze, fork_map_of(env)
        self.kp, self.kd, self.switch_radius = kp, kd, switch_radius
        self.rng = np.random.default_rng(seed)
        half = 0.5 * self.maze.maze_size_scaling + clearance
        centres = [self.maze.cell_rowcol_to_xy(np.array(cell)) for cell in fork_map.wall_cells]
        self.boxes = [(c - half, c + half) for c in centres]
        corners = {
            tuple(np.round(c + half * np.array(s), 9))
            for c in centres
            for s in itertools.product((-1, 1), repeat=2)
        }
        extent = (
            0.5
            * self.maze.maze_size_scaling
            * np.array([len(fork_map.rows[0]), len(fork_map.rows)])
        )
        self.corners = [
            np.array(c)
            for c in sorted(corners)  # inside the maze, on no other wall
            if np.all(np.abs(c) < extent) and self._free(np.array(c))
        ]
        self.goal = self.maze.cell_rowcol_to_xy(np.array(fork_map.goal))
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
    rng, episodes, cells = np.random.default_rng(seed), [], fork_map_of(env).free_cells
    for i in range(count):
        cell = cells[int(rng.integers(len(cells)))]
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
