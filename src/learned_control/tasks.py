"""The task registry: what the package knows about each environment it acts in.

A :class:`Task` says how to build the env (id, kwargs, wrappers), what its flat observation and
action look like (its spaces, action bounds and step duration, read from one env built once per
task and process), and the defaults that other parts use per task (expert algorithm and budget).
Reward and termination functions in torch live in :mod:`learned_control.planning.rewards`;
observation/command specs for real robots live in :mod:`learned_control.specs`.

:func:`get_task` is the one entry. A name resolves, in this order, to

1. a task in :data:`TASKS` (the registered ones below, :func:`register_task`, and the tasks of
   installed packages' ``learned_control.tasks`` entry points, loaded on a miss);
2. a task derived from the env's spaces, for any Gymnasium id (``Swimmer-v5``), a
   gymnasium-robotics id (registered on demand) or ``module:EnvId`` (the module is imported
   first, as ``gym.make`` does): sizes, bounds and ``dt`` from the env; labels from the MuJoCo
   joints where the observation is verified to start with ``qpos`` (minus leading root
   positions) then ``qvel``, else ``obs_<i>``; success when the env reports ``is_success``.
   Derived tasks are cached per (id, env kwargs).

Dict observations are flattened by :func:`flatten_dict_obs` alone (the env wrapper, datasets):
the subspaces of ``dict_obs_keys``, each flattened, concatenated in that order. A task derived
from an env with a Dict observation takes every key in alphabetical order (gymnasium's order of
a ``Dict`` space), labelled ``<key>_<i>``.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any, cast

import gymnasium as gym
import numpy as np

from .errors import ConfigError

__all__ = [
    "Task",
    "TASKS",
    "ENTRY_POINT_GROUP",
    "get_task",
    "make_env",
    "register_task",
    "parse_env_kwargs",
    "flatten_dict_obs",
    "FlattenDictObservation",
]

ENTRY_POINT_GROUP = "learned_control.tasks"
"""Entry-point group of tasks from other packages: each entry point is a :class:`Task`, or a
callable returning a Task or an iterable of Tasks."""


def flatten_dict_obs(
    obs: Mapping[str, Any], keys: Sequence[str], batch_dims: int = 0
) -> np.ndarray:
    """The flat observation of a dict one: ``obs[k]`` for ``k`` in ``keys``, in that order, each
    flattened past its first ``batch_dims`` axes, concatenated on the last axis.

    ``batch_dims`` 0: one observation -> ``(obs_dim,)``; 1: per key a ``(T, ...)`` sequence (a
    dataset episode) -> ``(T, obs_dim)``. Keys not in ``keys`` are left out.
    """
    parts = []
    for key in keys:
        value = np.asarray(obs[key])
        parts.append(value.reshape(value.shape[:batch_dims] + (-1,)))
    return np.concatenate(parts, axis=-1)


class FlattenDictObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """An env with a Dict observation as one with a flat ``Box(obs_dim)`` one, by
    :func:`flatten_dict_obs` in the order of ``keys`` (other keys are dropped). Recorded in the
    env's spec, so ``gym.make(env.spec)`` (a Minari dataset's recovered env) rebuilds it.

    Raises:
        ConfigError: a non-Dict observation space, or a key that is missing or not a Box.
    """

    def __init__(self, env: gym.Env, keys: Sequence[str]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, keys=list(keys))  # in env.spec
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Dict):
            raise ConfigError(f"dict_obs_keys {tuple(keys)} given for a {space} observation")
        boxes = []
        for key in keys:
            sub = space.spaces.get(key)
            if not isinstance(sub, gym.spaces.Box):
                raise ConfigError(
                    f"dict observation key {key!r}: "
                    + ("missing" if sub is None else f"a {sub}, not a Box")
                    + f" (keys: {list(space.spaces)})"
                )
            boxes.append(sub)
        self.keys = tuple(keys)
        dtype = np.result_type(*(box.dtype for box in boxes))
        self.observation_space = gym.spaces.Box(
            np.concatenate([box.low.reshape(-1) for box in boxes]).astype(dtype),
            np.concatenate([box.high.reshape(-1) for box in boxes]).astype(dtype),
            dtype=dtype,
        )

    def observation(self, observation: Mapping[str, Any]) -> np.ndarray:
        flat = flatten_dict_obs(observation, self.keys)
        return flat.astype(self.observation_space.dtype, copy=False)


def parse_env_kwargs(env_kwargs: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Keyword arguments for ``gym.make`` from a mapping, a JSON object string (``""`` and
    ``None``: none). ConfigError for anything else."""
    if env_kwargs is None or env_kwargs == "":
        return {}
    if isinstance(env_kwargs, str):
        try:
            env_kwargs = json.loads(env_kwargs)
        except json.JSONDecodeError as err:
            raise ConfigError(f"env_kwargs {env_kwargs!r} is not JSON: {err}") from None
    if not isinstance(env_kwargs, Mapping):
        raise ConfigError(
            f"env_kwargs {env_kwargs!r}: expected a JSON object, e.g. "
            "'{\"reset_noise_scale\": 0.2}'"
        )
    return dict(env_kwargs)


def _plain(value: Any) -> Any:
    """``value`` as JSON data (what is not JSON-able becomes its ``repr``)."""
    return json.loads(json.dumps(value, sort_keys=True, default=repr))


@dataclass(frozen=True)
class _EnvFacts:
    """What a task's env says about itself, read once."""

    observation_space: gym.spaces.Box
    action_space: gym.spaces.Box
    dt: float | None
    max_episode_steps: int | None

    @classmethod
    def read(cls, env: gym.Env) -> _EnvFacts:
        """The facts of ``env``; ``dt`` is ``env.unwrapped.dt``, else that of the one inner env
        it steps (gymnasium-robotics mazes keep theirs on ``point_env`` / ``ant_env``)."""
        unwrapped = env.unwrapped
        dt = getattr(unwrapped, "dt", None)
        if dt is None:
            inner = [
                v.dt
                for v in vars(unwrapped).values()
                if isinstance(v, gym.Env) and hasattr(v, "dt")
            ]
            dt = inner[0] if len(inner) == 1 else None
        return cls(
            cast(gym.spaces.Box, env.observation_space),
            cast(gym.spaces.Box, env.action_space),
            None if dt is None else float(dt),
            env.spec.max_episode_steps if env.spec is not None else None,
        )


@dataclass(frozen=True)
class Task:
    """One environment the package acts in.

    Attributes:
        name: what users type (``--task Pusher-v5``): the registry key, or for a derived task
            the Gymnasium id (``module:EnvId`` included).
        env_id: Gymnasium id passed to ``gym.make``.
        obs_dim: size of the flat observation the policy sees.
        act_dim: size of the action.
        env_kwargs: extra keyword arguments for ``gym.make``.
        dict_obs_keys: for dict-observation envs, the keys concatenated (in this order, by
            :func:`flatten_dict_obs`) into the flat observation; ``None`` for envs with a Box
            observation.
        obs_labels: a name per observation element (the layout published with each observation).
        has_success: whether ``info["is_success"]`` is reported.
        goal_dim: size of the goal a goal-conditioned env takes (``env.unwrapped.goal``, seen in
            the observation as ``desired_goal``); 0 for other envs.
        expert_algo: stable-baselines3 algorithm used by ``learned-control expert`` by default.
        expert_steps: default training budget of that expert, in env steps.
    """

    name: str
    env_id: str
    obs_dim: int
    act_dim: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    dict_obs_keys: tuple[str, ...] | None = None
    obs_labels: tuple[str, ...] = ()
    has_success: bool = False
    goal_dim: int = 0
    expert_algo: str = "sac"
    expert_steps: int = 100_000

    def __post_init__(self) -> None:
        if self.obs_labels and len(self.obs_labels) != self.obs_dim:
            raise ConfigError(
                f"task {self.name}: {len(self.obs_labels)} obs_labels for obs_dim {self.obs_dim}"
            )

    @property
    def labels(self) -> tuple[str, ...]:
        """Observation element names (generic ``obs_<i>`` where no layout is documented)."""
        return self.obs_labels or tuple(f"obs_{i}" for i in range(self.obs_dim))

    @property
    def layout(self) -> dict[str, Any]:
        """What a checkpoint records of the task (plain data): ``env_id``, ``env_kwargs``,
        ``obs_labels`` (:attr:`labels`) and ``dict_obs_keys``."""
        return {
            "env_id": self.env_id,
            "env_kwargs": _plain(self.env_kwargs),
            "obs_labels": list(self.labels),
            "dict_obs_keys": None if self.dict_obs_keys is None else list(self.dict_obs_keys),
        }

    @property
    def env_kwargs_json(self) -> str:
        """:attr:`env_kwargs` as a JSON object string (``""`` when empty): the ``env_kwargs``
        parameter of the nodes, ``get_task(name, env_kwargs_json)`` gives this task back."""
        return json.dumps(self.env_kwargs, sort_keys=True) if self.env_kwargs else ""

    def _env_facts(self) -> _EnvFacts:
        """The spaces and ``dt`` of one env built on first use, kept on this instance."""
        facts = self.__dict__.get("_facts")
        if facts is None:
            env = self.make_env()
            facts = _EnvFacts.read(env)
            env.close()
            object.__setattr__(self, "_facts", facts)  # frozen: a cache, not a field
        return facts

    @property
    def observation_space(self) -> gym.spaces.Box:
        """The env's flat ``Box(obs_dim)`` observation space (a copy: its RNG is the caller's)."""
        return copy.deepcopy(self._env_facts().observation_space)

    @property
    def action_space(self) -> gym.spaces.Box:
        """The env's ``Box(act_dim)`` action space (a copy: its RNG is the caller's)."""
        return copy.deepcopy(self._env_facts().action_space)

    @property
    def action_low(self) -> np.ndarray:
        """Lower action bound ``(act_dim,)``, float64 (a fresh array)."""
        return np.array(self._env_facts().action_space.low, np.float64)

    @property
    def action_high(self) -> np.ndarray:
        """Upper action bound ``(act_dim,)``, float64 (a fresh array)."""
        return np.array(self._env_facts().action_space.high, np.float64)

    @property
    def dt(self) -> float:
        """Simulated seconds per env step (``env.unwrapped.dt``)."""
        dt = self._env_facts().dt
        if dt is None:
            raise ConfigError(f"task {self.name}: env {self.env_id} has no dt (step duration)")
        return dt

    @property
    def max_episode_steps(self) -> int | None:
        """The env's time limit in steps (``env.spec.max_episode_steps``); ``None``: none."""
        return self._env_facts().max_episode_steps

    def make_env(self, **overrides: Any) -> gym.Env:
        """Build the env with a flat ``Box(obs_dim)`` observation; ``overrides`` go to
        ``gym.make``."""
        env = _gym_make(self.env_id, {**self.env_kwargs, **overrides}, self.name)
        if self.dict_obs_keys is not None:
            env = FlattenDictObservation(env, self.dict_obs_keys)
        if env.observation_space.shape != (self.obs_dim,) or env.action_space.shape != (
            self.act_dim,
        ):
            raise ConfigError(
                f"task {self.name}: env {self.env_id} gives observation "
                f"{env.observation_space.shape} and action {env.action_space.shape}, "
                f"the registry says ({self.obs_dim},) and ({self.act_dim},)"
            )
        return env


def _joint_labels(
    root: list[str], joints: list[str], with_root_x_vel: bool = True
) -> tuple[str, ...]:
    """Labels of the MuJoCo locomotion layout: qpos (minus root x) then qvel."""
    pos = [f"{n}_pos" for n in root + joints]
    vel = [f"{n}_vel" for n in (["rootx"] if with_root_x_vel else []) + root + joints]
    return tuple(pos + vel)


_LEGS = ["thigh", "leg", "foot"]
TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add ``task`` to :data:`TASKS` under ``task.name`` (replacing one of that name); returns
    it. Its hand-written labels and defaults then win over what would be derived from the env.
    To have a task resolve in every process (a checkpoint's task, a ROS node's), expose it
    through the :data:`ENTRY_POINT_GROUP` entry-point group instead of registering it at run
    time."""
    TASKS[task.name] = task
    return task


for _task in (
    Task(
        "InvertedPendulum-v5",
        "InvertedPendulum-v5",
        4,
        1,
        obs_labels=("cart_x", "pole_angle", "cart_vel", "pole_angvel"),
        expert_algo="ppo",
        expert_steps=30_000,
    ),
    Task("Pusher-v5", "Pusher-v5", 23, 7, expert_steps=300_000),
    Task(
        "Reacher-v5",
        "Reacher-v5",
        10,
        2,
        obs_labels=(
            "cos_joint0",
            "cos_joint1",
            "sin_joint0",
            "sin_joint1",
            "target_x",
            "target_y",
            "joint0_vel",
            "joint1_vel",
            "fingertip_to_target_x",
            "fingertip_to_target_y",
        ),
        expert_steps=200_000,
    ),
    Task(
        "HalfCheetah-v5",
        "HalfCheetah-v5",
        17,
        6,
        obs_labels=_joint_labels(
            ["rootz", "rooty"], [f"{s}{j}" for s in "bf" for j in ("thigh", "shin", "foot")]
        ),
    ),
    Task(
        "Hopper-v5",
        "Hopper-v5",
        11,
        3,
        obs_labels=_joint_labels(["rootz", "rooty"], ["thigh", "leg", "foot"]),
    ),
    Task(
        "Walker2d-v5",
        "Walker2d-v5",
        17,
        6,
        obs_labels=_joint_labels(["rootz", "rooty"], _LEGS + [f"{j}_left" for j in _LEGS]),
    ),
    Task("Ant-v5", "Ant-v5", 105, 8),
    # Goal-conditioned reach: observation = desired_goal (3) + robot observation (10).
    Task(
        "FetchReach-v4",
        "FetchReach-v4",
        13,
        4,
        dict_obs_keys=("desired_goal", "observation"),
        obs_labels=(
            "goal_x",
            "goal_y",
            "goal_z",
            "grip_x",
            "grip_y",
            "grip_z",
            "finger_r",
            "finger_l",
            "grip_vx",
            "grip_vy",
            "grip_vz",
            "finger_vr",
            "finger_vl",
        ),
        has_success=True,
        goal_dim=3,
        expert_algo="ppo",
        expert_steps=40_960,
    ),
    # The multimodal benchmark's PointMaze forks (learned_control.envs.pointmaze_fork): the goal
    # is fixed, each reset starts at a free cell drawn from its seed.
    *(
        Task(
            name,
            f"learned_control.envs.pointmaze_fork:LearnedControl/{name}",
            8,
            2,
            dict_obs_keys=("achieved_goal", "desired_goal", "observation"),
            obs_labels=("achieved_x", "achieved_y", "goal_x", "goal_y", "x", "y", "vx", "vy"),
            has_success=True,
        )
        for name in ("PointMazeFork-v0", "PointMazeForkWide-v0")
    ),
):
    register_task(_task)


# ---- tasks derived from an env ----------------------------------------------------------------

_ROBOTICS: list[bool] = []  # gymnasium-robotics registration tried (once per process)
_DERIVED: dict[tuple[str, str], Task] = {}
_LOADED_ENTRY_POINTS: set[str] = set()
_ENTRY_POINT_ERRORS: list[str] = []


def _ensure_registered(env_id: str) -> None:
    """Register the gymnasium-robotics envs when ``env_id`` is not known yet (once)."""
    if ":" in env_id or env_id in gym.registry or _ROBOTICS:
        return
    _ROBOTICS.append(True)
    try:
        import gymnasium_robotics
    except ImportError:
        return
    gym.register_envs(gymnasium_robotics)


def _gym_make(env_id: str, kwargs: dict[str, Any], name: str) -> gym.Env:
    """``gym.make(env_id, **kwargs)``; one-line ConfigError for an unknown id, an env that
    cannot be made or kwargs it refuses."""
    _ensure_registered(env_id)
    try:
        return gym.make(env_id, **kwargs)
    except (gym.error.Error, ModuleNotFoundError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        unknown = isinstance(
            err, (gym.error.UnregisteredEnv, gym.error.DeprecatedEnv, ModuleNotFoundError)
        ) or first.startswith("No registered env")
        if not unknown:
            raise ConfigError(f"task {name!r}: gym.make({env_id!r}) failed: {first}") from None
        close = difflib.get_close_matches(env_id.split(":")[-1], [*TASKS, *gym.registry], n=3)
        raise ConfigError(
            f"unknown task {name!r}: not registered, and gymnasium says: {first}"
            + (f"; close ids: {', '.join(close)}" if close else "")
            + "".join(f"; {e}" for e in _ENTRY_POINT_ERRORS)
        ) from None
    except TypeError as err:
        raise ConfigError(
            f"task {name!r}: env {env_id} refuses env_kwargs {kwargs}: {err}"
        ) from None


_JOINT_COORDS = {  # mjtJoint -> names of its qpos and qvel entries
    0: (("x", "y", "z", "qw", "qx", "qy", "qz"), ("vx", "vy", "vz", "wx", "wy", "wz")),  # free
    1: (("qw", "qx", "qy", "qz"), ("wx", "wy", "wz")),  # ball
    2: (("pos",), ("vel",)),  # slide
    3: (("pos",), ("vel",)),  # hinge
}
_MAX_EXCLUDED_ROOT = 3  # leading qpos entries (root x, y, z) an observation may leave out


def _state_labels(
    env: gym.Env, samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> tuple[str, ...]:
    """Joint labels of a MuJoCo env whose observation starts with ``qpos[k:]`` then ``qvel``,
    ``k`` the excluded root positions (0-3), verified on every ``(obs, qpos, qvel)`` sample and
    unique; the elements after them are ``obs_<i>``. ``()`` when no single ``k`` fits."""
    import mujoco

    model = getattr(env.unwrapped, "model", None)
    if not isinstance(model, mujoco.MjModel):
        return ()
    obs_dim = samples[0][0].size
    fits = []
    for k in range(min(model.nq, _MAX_EXCLUDED_ROOT) + 1):
        n = model.nq - k + model.nv
        if 0 < n <= obs_dim and all(
            np.allclose(obs[:n], np.concatenate([qpos[k:], qvel]), rtol=1e-5, atol=1e-8)
            for obs, qpos, qvel in samples
        ):
            fits.append(k)
    if len(fits) != 1:
        return ()
    pos, vel = [""] * model.nq, [""] * model.nv
    for j in range(model.njnt):
        joint = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or f"joint{j}"
        qpos_names, qvel_names = _JOINT_COORDS[int(model.jnt_type[j])]
        for i, coord in enumerate(qpos_names):
            pos[model.jnt_qposadr[j] + i] = f"{joint}_{coord}"
        for i, coord in enumerate(qvel_names):
            vel[model.jnt_dofadr[j] + i] = f"{joint}_{coord}"
    head = pos[fits[0] :] + vel
    return tuple(head + [f"obs_{i}" for i in range(len(head), obs_dim)])


def _flat_box(space: gym.Space, what: str, name: str) -> gym.spaces.Box:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(
            f"task {name!r}: the {what} space is {space}; learned_control takes a flat Box "
            f"{what}" + (" or a Dict of Boxes" if what == "observation" else "")
        )
    return space


def _derive(name: str, kwargs: dict[str, Any], base: Task | None) -> Task:
    """The task of env ``name`` (or of ``base`` with more ``kwargs``), read from one env built
    here: spaces, labels, success and goal from a seeded reset and one step."""
    env_id = base.env_id if base is not None else name
    env_kwargs = {**base.env_kwargs, **kwargs} if base is not None else kwargs
    env = _gym_make(env_id, env_kwargs, name)
    space = env.observation_space
    try:
        if base is not None:
            keys = base.dict_obs_keys
        elif isinstance(space, gym.spaces.Dict):
            keys = tuple(sorted(space.spaces))
        else:
            keys = None
            _flat_box(space, "observation", name)
        flat = FlattenDictObservation(env, keys) if keys is not None else env
        action_space = _flat_box(flat.action_space, "action", name)
        flat.action_space.seed(0)
        samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        infos = []
        for step in range(2):
            if step == 0:
                obs, info = flat.reset(seed=0)
            else:
                obs, _, _, _, info = flat.step(action_space.sample())
            data = getattr(flat.unwrapped, "data", None)
            none = np.empty(0)
            qpos, qvel = (data.qpos.copy(), data.qvel.copy()) if data is not None else (none, none)
            samples.append((np.asarray(obs, np.float64).reshape(-1), qpos, qvel))
            infos.append(info)
        facts = _EnvFacts.read(flat)
        obs_dim = int(facts.observation_space.shape[0])
        labels: tuple[str, ...] = ()
        goal_dim, unwrapped = 0, flat.unwrapped
        if keys is not None:
            sizes = {k: gym.spaces.flatdim(cast(gym.spaces.Dict, space)[k]) for k in keys}
            labels = tuple(f"{key}_{i}" for key in keys for i in range(sizes[key]))
            get_obs = getattr(unwrapped, "_get_obs", None)  # the bridge sets goals through it
            if (
                "desired_goal" in keys
                and hasattr(unwrapped, "goal")
                and get_obs is not None
                and not inspect.signature(get_obs).parameters
            ):
                goal_dim = sizes["desired_goal"]
        elif data is not None:
            labels = _state_labels(flat, samples)
    finally:
        env.close()
    if base is not None:
        task = replace(
            base,
            env_kwargs=env_kwargs,
            obs_dim=obs_dim,
            act_dim=int(action_space.shape[0]),
            obs_labels=base.obs_labels if obs_dim == base.obs_dim else labels,
        )
    else:
        task = Task(
            name,
            env_id,
            obs_dim,
            int(action_space.shape[0]),
            env_kwargs=env_kwargs,
            dict_obs_keys=keys,
            obs_labels=labels,
            has_success=any("is_success" in info for info in infos),
            goal_dim=goal_dim,
        )
    object.__setattr__(task, "_facts", facts)
    return task


def _load_entry_points() -> None:
    """Register the tasks of every :data:`ENTRY_POINT_GROUP` entry point not loaded yet (a
    name already in :data:`TASKS` is kept). A failing entry point is warned about and named in
    the error for an unknown task."""
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = f"{entry.name} = {entry.value}"
        if key in _LOADED_ENTRY_POINTS:
            continue
        _LOADED_ENTRY_POINTS.add(key)
        try:
            found = entry.load()
            if callable(found) and not isinstance(found, Task):
                found = found()
            tasks = [found] if isinstance(found, Task) else list(cast(Iterable[Task], found))
            wrong = [t for t in tasks if not isinstance(t, Task)]
            if wrong:
                raise TypeError(f"gave {wrong[0]!r}, not a Task")
        except Exception as err:  # a broken plugin must not break the other tasks
            message = f"entry point {key} ({ENTRY_POINT_GROUP}) failed: {err}"
            _ENTRY_POINT_ERRORS.append(message)
            warnings.warn(message, stacklevel=3)
            continue
        for task in tasks:
            TASKS.setdefault(task.name, task)


def get_task(name: str, env_kwargs: Mapping[str, Any] | str | None = None) -> Task:
    """The task ``name`` with ``env_kwargs`` for ``gym.make`` (a mapping or a JSON object string).

    A registered task (:data:`TASKS`, entry points included) keeps its labels and defaults; with
    ``env_kwargs`` its sizes are read again from the env (labels kept when the observation size
    is unchanged). Any other name is a Gymnasium id whose task is derived from the env (see the
    module docstring), cached per ``(name, env_kwargs)``.

    Raises:
        ConfigError: one line for an unknown id (with close ids), env_kwargs that are not a JSON
            object or that the env refuses, or spaces the package cannot act in.
    """
    kwargs = parse_env_kwargs(env_kwargs)
    key = (name, json.dumps(kwargs, sort_keys=True, default=repr))
    registered = TASKS.get(name)
    if registered is None:
        if key in _DERIVED:
            return _DERIVED[key]
        _load_entry_points()
        registered = TASKS.get(name)
    if registered is not None and {**registered.env_kwargs, **kwargs} == registered.env_kwargs:
        return registered
    if key not in _DERIVED:
        _DERIVED[key] = _derive(name, kwargs, registered)
    return _DERIVED[key]


def make_env(task: str | Task, **overrides: Any) -> gym.Env:
    """Shortcut for ``get_task(task).make_env(**overrides)``."""
    return (get_task(task) if isinstance(task, str) else task).make_env(**overrides)
