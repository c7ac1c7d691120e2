"""The controller's logic: what computes the action, and swapping it safely while running."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checkpoint import load_checkpoint
from ..errors import CheckpointError, ConfigError, LearnedControlError
from ..evaluation import Actor
from ..tasks import Task, action_bounds, get_task
from ..utils import resolve_device

__all__ = ["ControllerConfig", "load_actor", "ModelSlot"]

MODES = ("lockstep", "realtime")


@dataclass
class ControllerConfig:
    """Settings of the controller (the node's parameters, same names).

    Attributes:
        task: registry task name; the checkpoint must fit its observation and action sizes.
        checkpoint: path of the policy checkpoint to run.
        mode: ``lockstep`` (answer every observation) or ``realtime`` (act from a timer).
        rate_hz: realtime control rate in Hz; 0 means the env's own rate.
        max_obs_age: realtime: never act on an observation older than this, in seconds.
        device: torch device for inference (``cpu``, ``cuda``, ``auto``).
        spec_file: robot mode: the robot spec YAML (``learned-control export-spec``); empty: the
            ``observation`` topic. In lockstep the controller answers once per stamp, when every
            topic source carries it; in realtime it acts on sources younger than their max_age.
        configure_timeout: robot mode: seconds configure waits for the first ``/joint_states``
            and the spec's topics before failing, naming what is missing.
    """

    task: str = "InvertedPendulum-v5"
    checkpoint: str = ""
    mode: str = "lockstep"
    rate_hz: float = field(default=0.0, metadata={"range": (0.0, 10000.0)})
    max_obs_age: float = field(default=0.2, metadata={"range": (0.001, 3600.0)})
    device: str = "cpu"
    spec_file: str = ""
    configure_timeout: float = field(default=10.0, metadata={"range": (0.1, 3600.0)})

    def __post_init__(self) -> None:
        get_task(self.task)
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r}; expected one of {MODES}")
        if self.rate_hz < 0 or self.max_obs_age <= 0:
            raise ConfigError(f"rate_hz={self.rate_hz}, max_obs_age={self.max_obs_age}: need "
                              "rate_hz >= 0 and max_obs_age > 0 (seconds)")


def load_actor(path: str | Path, task: Task, device: str = "cpu") -> Actor:
    """The actor a checkpoint describes, checked against ``task``'s sizes.

    Raises:
        CheckpointError: missing/corrupt file, or sizes that do not fit the task.
    """
    env = task.make_env()
    low, high = action_bounds(env)
    env.close()
    ckpt = load_checkpoint(path, resolve_device(device), action_low=low, action_high=high)
    ckpt.check_fits(task.obs_dim, task.act_dim, task.name)
    if ckpt.model.kind != "policy":
        raise CheckpointError(f"{path}: a {ckpt.model.kind} checkpoint cannot drive the controller "
                              "in policy mode")
    ckpt.model.eval()
    return ckpt.model


@dataclass
class ModelSlot:
    """The running actor and its identity; a failed swap keeps the old one.

    Attributes:
        task: the task every loaded model must fit.
        device: inference device.
    """

    task: Task
    device: str = "cpu"
    actor: Actor | None = None
    identity: str = "none"
    swaps: int = 0
    failed_swaps: int = 0
    last_error: str = ""

    def swap(self, path: str) -> str:
        """Load ``path`` and run it from now on; on failure keep the old actor.

        Returns:
            ``""`` on success, else the error message (also kept in ``last_error``).
        """
        try:
            actor = load_actor(path, self.task, self.device)
        except (LearnedControlError, OSError) as err:
            self.failed_swaps += 1
            self.last_error = str(err)
            return self.last_error
        if hasattr(actor, "reset"):
            actor.reset()
        self.actor, self.identity = actor, f"{type(actor).__name__}@{Path(path).name}"
        self.swaps += 1
        return ""

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.actor.act(obs)
