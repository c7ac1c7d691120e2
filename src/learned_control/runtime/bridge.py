"""The simulation bridge's logic: command checks, the timeout policy and episode bookkeeping.

The ROS node :mod:`learned_control.ros.sim_bridge` only converts messages and calls these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import gymnasium as gym
import mujoco
import numpy as np

from ..errors import ConfigError
from ..tasks import Task, get_task
from .inputs import check_vector

__all__ = ["BridgeConfig", "CommandGate", "SimSession", "StepOutcome", "JointStateSample"]


class _SimEnv(Protocol):
    """What a session uses of its task's unwrapped env: a MuJoCo env whose class (often from the
    untyped gymnasium_robotics) ``gym.Env`` does not describe."""

    model: mujoco.MjModel
    data: mujoco.MjData
    dt: float  # s per env step
    goal: np.ndarray  # (goal_dim,) world frame; goal-conditioned tasks only

    def _get_obs(self) -> dict[str, np.ndarray]:
        """The observation dict before the wrappers (goal-conditioned tasks only)."""


MODES = ("lockstep", "realtime")
TIMEOUT_POLICIES = ("zero", "hold")
INTERFACES = ("observation", "ros2_control")


@dataclass
class BridgeConfig:
    """Settings of the simulation bridge (the node's parameters, same names).

    Attributes:
        task: a registered task or any Gymnasium id (``module:EnvId`` included).
        env_kwargs: keyword arguments for ``gym.make`` as a JSON object; empty: none.
        seed: reset seed of episode 0; episode ``k`` resets with ``seed + k``.
        mode: ``lockstep`` (wait for one command per observation; deterministic) or
            ``realtime`` (step at ``rate_hz`` with the newest command, zero-order hold).
        rate_hz: realtime step rate in Hz; 0 means the env's own rate ``1 / env.dt``.
        command_timeout: seconds without a command before ``on_timeout`` applies (realtime) or a
            wait is reported (lockstep, which never steps without a command).
        on_timeout: ``zero`` (zero action) or ``hold`` (repeat the last valid action).
        auto_reset: start the next episode when one ends.
        reset_s: with ``auto_reset``: seconds between an episode's end and the next start, as a
            robot's reset takes; nothing is stepped meanwhile and, after a driver's
            (``ros2_control``) state where the episode ended, nothing is published, so a bag of
            the robot's topics shows the episodes apart (a pause between commands).
        max_episodes: stop stepping after this many episodes (0: no limit).
        publish_clock: publish ``/clock`` (exactly one bridge per graph should).
        interface: ``observation`` (the ``observation``/``command`` topics) or ``ros2_control``
            (only what a ros2_control robot with mocap publishes: ``/joint_states`` and the spec's
            pose/odometry/goal topics, one stamp per step; commands on the spec's controller topic).
        spec_file: robot spec YAML for ``ros2_control``; empty: the task's packaged spec.
        wait_for_recorder: on activation, start the first episode only once a recorder (a
            node reading ``observation``, ``applied_command``, ``reward`` and ``episode``, or on
            ``ros2_control`` every topic of the robot's) has matched, so its bag holds every
            episode from step 0 (``up --record`` sets it).
            (In lockstep the first episode always waits for a controller to match.)
        goal_frame: goal-conditioned tasks: the frame goals on the ``goal`` topic must be given
            in (the env's world frame; there is no tf here); goals in others are rejected.
    """

    task: str = "InvertedPendulum-v5"
    env_kwargs: str = ""
    seed: int = field(default=0, metadata={"range": (0, 2**31 - 1)})
    mode: str = "lockstep"
    rate_hz: float = field(default=0.0, metadata={"range": (0.0, 10000.0)})
    command_timeout: float = field(default=0.5, metadata={"range": (0.001, 3600.0)})
    on_timeout: str = "zero"
    auto_reset: bool = True
    reset_s: float = field(default=0.0, metadata={"range": (0.0, 3600.0)})
    max_episodes: int = field(default=0, metadata={"range": (0, 2**31 - 1)})
    publish_clock: bool = True
    interface: str = "observation"
    spec_file: str = ""
    wait_for_recorder: bool = False
    goal_frame: str = "world"

    def __post_init__(self) -> None:
        get_task(self.task, self.env_kwargs)  # ConfigError for an unknown id or bad kwargs
        if self.interface not in INTERFACES:
            raise ConfigError(f"interface={self.interface!r}; expected one of {INTERFACES}")
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r}; expected one of {MODES}")
        if self.on_timeout not in TIMEOUT_POLICIES:
            raise ConfigError(f"on_timeout={self.on_timeout!r}; expected one of {TIMEOUT_POLICIES}")
        if min(self.rate_hz, self.max_episodes, self.reset_s) < 0 or self.command_timeout <= 0:
            raise ConfigError(
                f"rate_hz={self.rate_hz}, command_timeout={self.command_timeout}, "
                f"max_episodes={self.max_episodes}, reset_s={self.reset_s}: need rate_hz >= 0, "
                "command_timeout > 0, max_episodes >= 0, reset_s >= 0"
            )


@dataclass
class CommandGate:
    """Checks commands before they reach the robot; counts every rejection and clip.

    Args:
        low: lower action bounds ``(act_dim,)``.
        high: upper action bounds ``(act_dim,)``.
    """

    low: np.ndarray
    high: np.ndarray
    rejected_size: int = 0
    rejected_nonfinite: int = 0
    rejected_overflow: int = 0
    clipped: int = 0
    accepted: int = 0

    def check(self, values) -> tuple[np.ndarray | None, str]:
        """The action to apply, clipped to bounds, or ``(None, reason)`` if it must be rejected:
        a wrong length, NaN or inf, or values beyond float32 (garbage, not a saturated command)."""
        action, kind, reason = check_vector(values, self.low.size, "command")
        if action is None:
            setattr(self, f"rejected_{kind}", getattr(self, f"rejected_{kind}") + 1)
            return None, reason
        clipped = np.clip(action, self.low, self.high)
        if not np.array_equal(clipped, action):
            self.clipped += 1
        self.accepted += 1
        return clipped, ""

    def counters(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "rejected_size": self.rejected_size,
            "rejected_nonfinite": self.rejected_nonfinite,
            "rejected_overflow": self.rejected_overflow,
            "clipped": self.clipped,
        }


@dataclass
class StepOutcome:
    """What one env step produced (``observation`` is the post-step one)."""

    observation: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    success: bool | None

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


@dataclass
class JointStateSample:
    """Joint names, positions (rad or m), velocities and actuator efforts of the MuJoCo model."""

    names: list[str]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


@dataclass
class SimSession:
    """A task's env with seeded episodes and running episode statistics.

    Episode ``k`` of the session resets with ``seed + k``, so a deterministic controller in lockstep
    reproduces ``evaluate(policy, env, episodes, seed)``.
    """

    config: BridgeConfig
    task: Task = field(init=False)
    env: gym.Env = field(init=False)
    gate: CommandGate = field(init=False)
    episode_index: int = field(init=False, default=-1)
    episode_return: float = field(init=False, default=0.0)
    episode_length: int = field(init=False, default=0)
    episodes_done: int = field(init=False, default=0)
    observation: np.ndarray | None = field(init=False, default=None)
    last_action: np.ndarray = field(init=False)
    goal: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.task = get_task(self.config.task, self.config.env_kwargs)
        self.env = self.task.make_env()
        low, high = self.task.action_low, self.task.action_high
        self.gate = CommandGate(low, high)
        self.last_action = np.zeros_like(low)
        self._index_joints()

    @property
    def _sim(self) -> _SimEnv:
        """The task's unwrapped env."""
        return cast(_SimEnv, self.env.unwrapped)

    @property
    def dt(self) -> float:
        """Simulated seconds per step (the task's: mazes keep it on their inner env)."""
        return self.task.dt

    @property
    def rate_hz(self) -> float:
        return self.config.rate_hz or 1.0 / self.dt

    @property
    def finished(self) -> bool:
        """True once ``max_episodes`` episodes have ended."""
        return 0 < self.config.max_episodes <= self.episodes_done

    def reset(self) -> np.ndarray:
        """Start the next episode; returns its first observation ``(obs_dim,)``."""
        self.episode_index += 1
        self.observation, _ = self.env.reset(seed=self.config.seed + self.episode_index)
        self.episode_return, self.episode_length = 0.0, 0
        self.last_action = np.zeros_like(self.last_action)
        if self.goal is not None:  # a commanded goal outlives the env's own sampling
            self._apply_goal()
        return self.observation

    def set_goal(self, goal) -> np.ndarray | None:
        """Command the goal ``(goal_dim,)`` (world frame) of a goal-conditioned task, from this
        step on and for the following episodes; returns the current observation carrying it
        (``None`` before the first episode). ConfigError for other tasks or a wrong size."""
        goal = np.asarray(goal, dtype=np.float64).reshape(-1)
        if not self.task.goal_dim or goal.shape != (self.task.goal_dim,):
            raise ConfigError(
                f"goal of size {goal.size} refused: task {self.task.name} takes "
                + (f"a goal of size {self.task.goal_dim}" if self.task.goal_dim else "no goal")
            )
        _, kind, reason = check_vector(goal, None, "goal")
        if kind:  # NaN, inf or beyond float32
            raise ConfigError(reason)
        self.goal = goal
        if self.observation is not None:
            self._apply_goal()
        return self.observation

    def _apply_goal(self) -> None:
        """Set the env's goal and recompute the observation through the wrappers' layout."""
        assert self.goal is not None  # called once a goal is commanded
        unwrapped = self._sim
        unwrapped.goal = self.goal.copy()
        wrappers, env = [], self.env
        while isinstance(env, gym.Wrapper):
            if isinstance(env, gym.ObservationWrapper):
                wrappers.append(env)
            env = env.env
        obs: Any = unwrapped._get_obs()  # each wrapper below changes its type
        for wrapper in reversed(wrappers):  # innermost first
            obs = wrapper.observation(obs)
        self.observation = obs

    def timeout_action(self) -> np.ndarray:
        """The action ``on_timeout`` applies when no valid command came in time."""
        return (
            self.last_action
            if self.config.on_timeout == "hold"
            else np.zeros_like(self.last_action)
        )

    def step(self, action: np.ndarray) -> StepOutcome:
        """Apply an already checked action for one env step."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.last_action = np.asarray(action, dtype=np.float64)
        self.observation = obs
        self.episode_return += float(reward)
        self.episode_length += 1
        self.episodes_done += bool(terminated or truncated)
        success = info.get("is_success")
        return StepOutcome(
            obs,
            float(reward),
            bool(terminated),
            bool(truncated),
            None if success is None else bool(success),
        )

    def episode_summary(self, success: bool | None) -> list[float]:
        """``[episode_index, return, length, success (1/0/NaN), seed]`` (the ``episode`` topic)."""
        return [
            float(self.episode_index),
            self.episode_return,
            float(self.episode_length),
            float("nan") if success is None else float(success),
            float(self.config.seed + self.episode_index),
        ]

    def _index_joints(self) -> None:
        """Cache the 1-dof joints' names, state addresses and driving actuators (once per env;
        none for an env without a MuJoCo model)."""
        model = getattr(self.env.unwrapped, "model", None)
        if not isinstance(model, mujoco.MjModel):
            empty = np.zeros(0, dtype=int)
            self._joint_names, self._qpos_adr, self._dof_adr = [], empty, empty
            self._driven, self._actuators = np.zeros(0, dtype=bool), empty
            return
        joints = [
            j
            for j in range(model.njnt)
            if model.jnt_type[j] in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
        ]
        actuator_of = {
            int(model.actuator_trnid[a, 0]): a
            for a in range(model.nu)
            if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
        }
        self._joint_names = [
            mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or f"joint{j}" for j in joints
        ]
        self._qpos_adr = model.jnt_qposadr[joints]
        self._dof_adr = model.jnt_dofadr[joints]
        self._driven = np.array([j in actuator_of for j in joints], dtype=bool)
        self._actuators = np.array([actuator_of[j] for j in joints if j in actuator_of], dtype=int)

    def joint_state(self) -> JointStateSample:
        """Named 1-dof joints (hinge and slide) with positions, velocities and actuator efforts
        (0 for joints no actuator drives); empty for an env without a MuJoCo model."""
        if not self._joint_names:
            empty = np.zeros(0)
            return JointStateSample([], empty, empty.copy(), empty.copy())
        data = self._sim.data
        effort = np.zeros(len(self._joint_names))
        effort[self._driven] = data.actuator_force[self._actuators]
        return JointStateSample(
            list(self._joint_names),
            data.qpos[self._qpos_adr].copy(),
            data.qvel[self._dof_adr].copy(),
            effort,
        )

    def close(self) -> None:
        self.env.close()
