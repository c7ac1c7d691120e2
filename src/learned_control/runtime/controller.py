"""The controller's logic: what computes the action, and swapping it safely while running.

The actor is chosen by the parameter ``actor``: ``policy`` runs a policy checkpoint, ``cem`` plans
with CEM-MPC (:class:`~learned_control.planning.mpc.MPCController`) through a dynamics checkpoint;
both are loaded by :func:`~learned_control.actors.load_actor`.
It is explicit rather than inferred from the checkpoint's kind so that a launch file says what runs,
the planner parameters visibly apply, and a checkpoint of the other kind (a policy handed to a
planner, or the reverse) is refused with a message instead of silently changing the controller.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from ..actors import Actor, load_actor
from ..errors import ConfigError, LearnedControlError
from ..planning.cem import CEMConfig
from ..planning.mpc import (
    PLANNER_PARAMETERS,
    MPCConfig,
    MPCController,
    mpc_config_from_parameters,
)
from ..planning.rewards import get_reward_fns
from ..tasks import Task, get_task
from .inputs import check_vector

__all__ = ["ControllerConfig", "LoadedActor", "ModelSlot", "ACTORS", "one_line_error"]

MODES = ("lockstep", "realtime")
ACTORS = ("policy", "cem")
_CEM, _MPC = CEMConfig(), MPCConfig()  # the planner defaults a task's parameter file leaves out


@dataclass
class ControllerConfig:
    """Settings of the controller (the node's parameters, same names).

    Attributes:
        task: a registered task or any Gymnasium id (``module:EnvId`` included); the
            checkpoint must fit its observation and action sizes and layout.
        env_kwargs: keyword arguments for ``gym.make`` as a JSON object; empty: none.
        checkpoint: path of the policy checkpoint to run.
        expert: DAgger labelling: an expert (policy checkpoint, SB3 ``.zip`` or
            ``cem:<dynamics checkpoint>``) that acts on every observation beside the actor; its
            action goes to ``expert_command`` (recorded, never applied). Empty: none.
        mode: ``lockstep`` (answer every observation) or ``realtime`` (act from a timer).
        rate_hz: realtime control rate in Hz; 0 means the env's own rate.
        max_obs_age: realtime: never act on an observation older than this, in seconds.
        max_rejected_in_a_row: rejected inputs or actions in a row (no command between them)
            after which the controller deactivates itself, saying why; 0: never.
        device: torch device for inference (``cpu``, ``cuda``, ``auto``).
        spec_file: robot mode: the robot spec YAML (``learned-control export-spec``); empty: the
            ``observation`` topic. In lockstep the controller answers once per stamp, when every
            topic source carries it; in realtime it acts on sources younger than their max_age.
        configure_timeout: robot mode: seconds configure waits for the first ``/joint_states``
            and the spec's topics before failing, naming what is missing.
        actor: ``policy`` (``checkpoint`` is a policy) or ``cem`` (``checkpoint`` is a dynamics
            ensemble; CEM-MPC plans every tick with the settings below).
        horizon: cem: planned steps H.
        samples: cem: sequences N per CEM iteration.
        elites: cem: best sequences K the Gaussian is refitted to (<= samples).
        iterations: cem: CEM refits per plan (realtime: fewer when the period runs out).
        alpha: cem: smoothing weight of the old mean/std, in [0, 1).
        init_std: cem: std of the first iteration, action units (> 0).
        std_floor: cem: lower bound of the std after each refit, action units (>= 0).
        warm_start: cem: start from the previous plan shifted by the steps since it.
        optimizer: cem: ``cem``, ``icem`` (sample-efficient CEM) or ``mppi`` (weighted refit).
        noise_beta: cem with optimizer icem: exponent of the sampling noise's spectrum
            1/f^beta along the horizon (>= 0; 0 white, 2 smooth).
        keep_elites: cem with optimizer icem: fraction of the elites carried into the next
            iteration and plan, in [0, 1].
        population_decay: cem with optimizer icem: iteration i samples
            samples * population_decay**-i sequences (at least 2 * elites); >= 1.
        temperature: cem with optimizer mppi: weights softmax(score / temperature), score
            units (> 0).
        particles: cem: particles per sequence.
        propagation: cem: ensemble propagation, expectation, ts1 or tsinf.
        sample: cem: sample probabilistic members' deltas instead of their mean.
        reward: cem: torch reward name (planning.rewards.REWARDS); empty: the task's own.
        seed: cem: seed of the planner's sampling (reseeded on every model load).
        plan_in_background: cem in realtime: plan in a thread of its own from each new
            observation, every tick publishing the current plan's action for that moment (its
            sequence shifted by the periods since its observation), never waiting for a plan;
            false: each tick plans, the period as its deadline.
        max_plan_age: cem in realtime, in the background: a plan from an observation older
            than this (s) gives no command.
        goal: robot mode: the goal (world frame, the size of the spec's goal source) the
            observation carries, as a goal on the spec's goal topic would give it (the newer
            of the two stands); settable while running. Empty: the topic's, else the spec's
            value; with neither, no command.
    """

    task: str = "InvertedPendulum-v5"
    env_kwargs: str = ""
    checkpoint: str = ""
    expert: str = ""
    mode: str = "lockstep"
    rate_hz: float = field(default=0.0, metadata={"range": (0.0, 10000.0)})
    max_obs_age: float = field(default=0.2, metadata={"range": (0.001, 3600.0)})
    max_rejected_in_a_row: int = field(default=10, metadata={"range": (0, 1_000_000)})
    device: str = "cpu"
    spec_file: str = ""
    configure_timeout: float = field(default=10.0, metadata={"range": (0.1, 3600.0)})
    actor: str = "policy"
    horizon: int = field(default=_CEM.horizon, metadata={"range": (1, 10_000)})
    samples: int = field(default=_CEM.samples, metadata={"range": (1, 10_000_000)})
    elites: int = field(default=_CEM.elites, metadata={"range": (1, 10_000_000)})
    iterations: int = field(default=_CEM.iterations, metadata={"range": (1, 10_000)})
    alpha: float = _CEM.alpha
    init_std: float = _CEM.init_std
    std_floor: float = _CEM.std_floor
    warm_start: bool = _CEM.warm_start
    optimizer: str = _CEM.optimizer
    noise_beta: float = _CEM.noise_beta
    keep_elites: float = _CEM.keep_elites
    population_decay: float = _CEM.population_decay
    temperature: float = _CEM.temperature
    particles: int = field(default=_MPC.particles, metadata={"range": (1, 1_000_000)})
    propagation: str = _MPC.propagation
    sample: bool = _MPC.sample
    reward: str = ""
    seed: int = field(default=0, metadata={"range": (0, 2**31 - 1)})
    plan_in_background: bool = True
    max_plan_age: float = field(default=0.5, metadata={"range": (0.001, 3600.0)})
    goal: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        get_task(self.task, self.env_kwargs)
        try:  # a ROS list parameter left empty arrives untyped; integers are fine
            self.goal = [float(v) for v in (self.goal or [])]
        except (TypeError, ValueError):
            raise ConfigError(f"goal={self.goal!r}; expected a list of numbers") from None
        if not all(math.isfinite(v) for v in self.goal):
            raise ConfigError(f"goal={self.goal!r}; expected finite numbers")
        if self.goal and not self.spec_file:
            raise ConfigError("goal is for robot mode (spec_file); the bridge owns the goal")
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r}; expected one of {MODES}")
        if self.actor not in ACTORS:
            raise ConfigError(f"actor={self.actor!r}; expected one of {ACTORS}")
        if self.expert and self.spec_file:
            raise ConfigError(
                "expert labelling runs on the observation topic; robot mode "
                f"(spec_file={self.spec_file!r}) has none"
            )
        if self.rate_hz < 0 or self.max_obs_age <= 0 or self.max_rejected_in_a_row < 0:
            raise ConfigError(
                f"rate_hz={self.rate_hz}, max_obs_age={self.max_obs_age}, "
                f"max_rejected_in_a_row={self.max_rejected_in_a_row}: need rate_hz >= 0, "
                "max_obs_age > 0 (seconds) and max_rejected_in_a_row >= 0"
            )
        planner = mpc_config_from_parameters(
            {name: getattr(self, name) for name in PLANNER_PARAMETERS}
        )  # validates
        if self.actor == "cem":
            get_reward_fns(planner.reward or self.task)

    def planner(self) -> MPCConfig | None:
        """The planner settings; ``None`` unless ``actor`` is ``cem``."""
        if self.actor != "cem":
            return None
        return mpc_config_from_parameters(
            {name: getattr(self, name) for name in PLANNER_PARAMETERS}
        )


def one_line_error(err: BaseException) -> str:
    """``err`` in one line: its message's first line, where torch's weights-only refusal (a
    page of advice) becomes the refused global it names; the exception's type if it says
    nothing."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    first = lines[0]
    refused = next((ln for ln in lines if "WeightsUnpickler error:" in ln), None)
    if refused is not None:
        why = refused.split("WeightsUnpickler error:", 1)[1].split(". ")[0].strip()
        first = f"{first.split('Weights only load failed.')[0]}weights-only load refused: {why}"
    return first.rstrip(": ") or type(err).__name__


@dataclass(frozen=True)
class LoadedActor:
    """An actor loaded by :meth:`ModelSlot.load`, not yet running, with what it was loaded from."""

    actor: Actor
    path: str
    planner: MPCConfig | None
    seed: int


@dataclass
class ModelSlot:
    """The running actor and its identity; a failed swap keeps the old one.

    Thread-safe for loading beside the control loop: :meth:`load` touches nothing that runs, and
    :meth:`install` takes the same lock as :meth:`act` and :meth:`reset`, so a model loaded in
    another thread comes in between two actions, never during one.

    Attributes:
        task: the task every loaded model must fit.
        device: inference device.
        planner: ``None``: the slot runs policies (ours or SB3 ``.zip``); else it plans through
            dynamics checkpoints with these settings (the CEM-MPC planner of
            :func:`~learned_control.actors.load_actor`).
        seed: the planner's seed.
        path: the file the running actor came from.
    """

    task: Task
    device: str = "cpu"
    planner: MPCConfig | None = None
    seed: int = 0
    actor: Actor | None = None
    path: str = ""
    identity: str = "none"
    swaps: int = 0
    failed_swaps: int = 0
    last_error: str = ""
    last_swap_failed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def swap(self, path: str, planner: MPCConfig | None = None, seed: int | None = None) -> str:
        """Load ``path`` and run it from now on; on failure keep the old actor (and settings).

        Args:
            planner, seed: new planner settings to load with (kept only on success); ``None``:
                the current ones.

        Returns:
            ``""`` on success, else the error message (also kept in ``last_error``).
        """
        loaded = self.load(path, planner, seed)
        if isinstance(loaded, str):
            return loaded
        self.install(loaded)
        return ""

    def load(
        self, path: str, planner: MPCConfig | None = None, seed: int | None = None
    ) -> LoadedActor | str:
        """The first half of :meth:`swap`: load ``path`` without running it (a failure counts
        as a failed swap); :meth:`install` runs the result.

        Returns:
            the loaded actor, or the error message (also kept in ``last_error``).
        """
        planner = planner or self.planner
        seed = self.seed if seed is None else seed
        try:
            actor = self._load(path, planner, seed)
        except Exception as err:  # a file from elsewhere may raise anything; none ends the node
            self.failed_swaps += 1
            reason = one_line_error(err)
            if str(path) not in reason:
                reason = f"{str(path)!r}: {reason}"
            self.last_error, self.last_swap_failed = reason, True
            return self.last_error
        return LoadedActor(actor, str(path), planner, seed)

    def install(self, loaded: LoadedActor) -> None:
        """Run ``loaded`` (from :meth:`load`) from now on, its planner settings with it."""
        actor = loaded.actor
        if hasattr(actor, "reset"):
            actor.reset()
        with self._lock:
            self.actor, self.identity = actor, f"{type(actor).__name__}@{Path(loaded.path).name}"
            self.path, self.planner, self.seed = loaded.path, loaded.planner, loaded.seed
            self.swaps += 1
            self.last_swap_failed = False

    def _load(self, path: str, planner: MPCConfig | None, seed: int) -> Actor:
        """The actor of ``path``: a planner through it with ``planner`` settings, else a policy."""
        if planner is not None:
            return load_actor(f"cem:{path}", self.task, self.device, planner, seed)
        if path.startswith("cem:"):
            raise ConfigError(
                f"{path!r} names a planner; the controller plans with actor=cem "
                "and the dynamics checkpoint as its checkpoint"
            )
        return load_actor(path, self.task, self.device)

    def reset(self) -> None:
        """Episode start: the actor forgets its state (a planner its warm start)."""
        with self._lock:
            if self.actor is not None and hasattr(self.actor, "reset"):
                self.actor.reset()

    def act(self, obs: np.ndarray, deadline: float | None = None) -> np.ndarray:
        """The action for ``obs``; a planner stops refining at ``deadline``
        (``time.perf_counter()`` seconds; see :meth:`CEMOptimizer.optimize`), a policy ignores
        it."""
        with self._lock:
            if self.planner is not None:
                return self._planner().act(obs, deadline)
            assert self.actor is not None  # acting starts after the first successful swap
            return self.actor.act(obs)

    def checked_act(
        self, obs: np.ndarray, deadline: float | None = None
    ) -> tuple[np.ndarray | None, str, str]:
        """:meth:`act`, checked: ``(action (act_dim,), "", "")``, or ``(None, kind, reason)`` for
        an action of the wrong size, with NaN or inf, beyond float32 (kinds of
        :func:`~learned_control.runtime.inputs.check_vector`), or ``error`` when the actor
        refused ``obs`` (it raised ValueError or one of ours)."""
        try:
            action = self.act(obs, deadline)
        except (LearnedControlError, ValueError) as err:
            return None, "error", f"the actor refused the observation: {err}"
        return check_vector(action, self.task.act_dim, "action")

    def plan(self, obs: np.ndarray, shift: int = 1) -> np.ndarray:
        """The planner's whole action sequence ``(horizon, act_dim)`` for ``obs``, its warm
        start shifted ``shift`` steps (:meth:`MPCController.plan`); planners only."""
        with self._lock:
            return self._planner().plan(obs, shift=shift)

    @property
    def iterations_done(self) -> int | None:
        """CEM iterations of the last plan; ``None`` for a policy."""
        return self._planner().iterations_done if self.planner is not None else None

    def _planner(self) -> MPCController:
        """The running actor while ``planner`` is set: the CEM-MPC planner ``load_actor`` builds
        for a ``cem:`` spec."""
        return cast(MPCController, self.actor)
