"""The learner's core: one training job from a :class:`LearnerConfig`, and a background runner.

A job reads its data sources fresh (a folder of bags is listed again at every job, so bags the
recorder closed since the last job are included), refuses data whose sizes do not fit the task,
trains a BC policy or a dynamics ensemble, and writes a new numbered run folder::

    <output_dir>/<what>-<NNNN>/<what>-<NNNN>.pt   checkpoint (written atomically, last)
    <output_dir>/<what>-<NNNN>/loss_curve.png | curves.png, history.json, tensorboard/

Each job writes a new file and never touches an earlier one, so a crash or a cancel leaves every
previous checkpoint intact; the incomplete run folder of a failed or cancelled job is removed.
Cancellation is checked between epochs. No ROS here: ``learned_control.ros.learner`` wraps
:class:`BackgroundLearner` in a node.
"""

from __future__ import annotations

import re
import shutil
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypedDict

import numpy as np

from ..actors import load_actor
from ..data.episodes import Transitions
from ..data.robot_bags import DEFAULT_GAP_S
from ..data.sources import load_transitions
from ..errors import ConfigError, DatasetError, LearnedControlError, SpecError
from ..models.dynamics import EnsembleDynamics
from ..models.mlp import ACTIVATIONS
from ..specs import RobotSpecs, specs_for
from ..tasks import Task, get_task
from ..utils import config_from, resolve_device, seed_everything
from .bc import BCConfig, check_policy_options, policy_for, train_bc_run
from .dynamics import (
    REWARD_HEADS,
    DynamicsTrainConfig,
    train_dynamics_run,
    wants_reward_heads,
)

__all__ = [
    "LearnerConfig",
    "EpochReport",
    "JobCancelledError",
    "resolve_sources",
    "load_sources",
    "run_learner_job",
    "LearnerStatus",
    "BackgroundLearner",
    "WHATS",
    "LABELS",
]

WHATS = ("bc", "dynamics")
"""What a learner trains: a behavior-cloning policy or a dynamics ensemble."""

LABELS = ("applied", "expert")
"""BC action labels: the actions applied, or the expert's relabels (DAgger)."""

_INT_MAX = 2**31 - 1


@dataclass
class LearnerConfig:
    """Settings of a training job (the learner node's parameters, same names).

    Attributes:
        what: bc (a policy by behavior cloning, its class chosen by ``policy``) or dynamics (an
            ensemble for CEM-MPC).
        sources: data sources, each a rosbag2 bag folder, a folder of bags (every closed bag in
            it, listed again at each job), or a Minari dataset id.
        task: a registered task or any Gymnasium id (``module:EnvId`` included); every source
            must fit its observation and action sizes.
        env_kwargs: keyword arguments for ``gym.make`` as a JSON object; empty: none.
        labels: bc: ``applied`` (the action the robot applied) or ``expert`` (the expert's
            relabel of each observation, a bag's ``expert_command``: DAgger).
        expert: with ``labels: expert``: an expert (policy checkpoint, SB3 ``.zip`` or
            ``cem:<dynamics checkpoint>``) that relabels every observation when the job loads
            the data, instead of a recorded ``expert_command`` (a robot's bags carry none).
        spec_file: a robot spec YAML: every bag is one of the robot's own topics, converted with
            it (observations assembled as the controller does, episodes split at pauses longer
            than ``gap``, rewards and terminations from the task's functions); empty: bags of
            the bridge's topics.
        lockstep: with ``spec_file``: the bags were recorded in lockstep (each command answers
            one stamp); default: realtime (each command answers the newest samples).
        gap: with ``spec_file``: the pause between commands (s) that ends an episode.
        output_dir: folder that receives one numbered run folder per job.
        device: torch device for training (cpu, cuda, auto).
        seed: seed of the initial weights, the split and the batch order.
        epochs: passes over the training split (dynamics: the maximum, early stopping may end
            sooner).
        batch_size: samples per gradient step (dynamics: per member).
        lr: Adam learning rate.
        val_fraction: share of samples held out for validation (dynamics: must be > 0).
        hid_size: width of each hidden layer.
        num_layers: number of hidden layers.
        activation: hidden activation (relu, tanh, silu, ...).
        policy: bc only: policy class, mse (deterministic MLP) or a multimodal class (gaussian,
            mixture, cvae, discrete, diffusion).
        chunk_size: bc only: actions predicted per call H (> 1: trained on the next H actions
            of each episode; not with mse).
        execute_steps: bc only: actions of a chunk executed before predicting again, in
            [1, chunk_size].
        members: dynamics only: ensemble size.
        probabilistic: dynamics only: predict mean and log-std of the delta (Gaussian NLL).
        weight_decay: dynamics only: Adam L2 weight decay.
        patience: dynamics only: early-stopping patience in epochs, 0 disables it.
        rollout_steps: dynamics only: k of the k-step open-loop validation error.
        reward_heads: dynamics only: also learn reward and termination heads, one of
            :data:`~learned_control.training.dynamics.REWARD_HEADS` (auto: exactly for a task
            without a torch reward, where the planner needs them).
    """

    what: str = "bc"
    sources: list[str] = field(default_factory=list)
    task: str = "InvertedPendulum-v5"
    env_kwargs: str = ""
    labels: str = "applied"
    expert: str = ""
    spec_file: str = ""
    lockstep: bool = False
    gap: float = field(default=DEFAULT_GAP_S, metadata={"range": (1e-3, 3600.0)})
    output_dir: str = "learner"
    device: str = "cpu"
    seed: int = field(default=0, metadata={"range": (0, _INT_MAX)})
    epochs: int = field(default=BCConfig.epochs, metadata={"range": (1, _INT_MAX)})
    batch_size: int = field(default=BCConfig.batch_size, metadata={"range": (1, _INT_MAX)})
    lr: float = field(default=BCConfig.lr, metadata={"range": (1e-12, 10.0)})
    val_fraction: float = field(default=BCConfig.val_fraction, metadata={"range": (0.0, 0.99)})
    hid_size: int = field(default=64, metadata={"range": (1, 65536)})
    num_layers: int = field(default=2, metadata={"range": (0, 64)})
    activation: str = "relu"
    policy: str = "mse"
    chunk_size: int = field(default=1, metadata={"range": (1, 1024)})
    execute_steps: int = field(default=1, metadata={"range": (1, 1024)})
    members: int = field(default=5, metadata={"range": (1, 1024)})
    probabilistic: bool = False
    weight_decay: float = field(
        default=DynamicsTrainConfig.weight_decay, metadata={"range": (0.0, 1.0)}
    )
    patience: int = field(default=DynamicsTrainConfig.patience, metadata={"range": (0, _INT_MAX)})
    rollout_steps: int = field(
        default=DynamicsTrainConfig.rollout_steps, metadata={"range": (1, _INT_MAX)}
    )
    reward_heads: str = "auto"

    def __post_init__(self) -> None:
        if self.what not in WHATS:
            raise ConfigError(f"what={self.what!r}; expected one of {WHATS}")
        if not isinstance(self.sources, (list, tuple)) or not all(
            isinstance(s, str) and s for s in self.sources
        ):
            raise ConfigError(
                f"sources={self.sources!r}; expected a list of non-empty strings "
                "(bag folders, folders of bags, Minari dataset ids)"
            )
        self.sources = list(self.sources)
        get_task(self.task, self.env_kwargs)  # ConfigError for an unknown id or bad kwargs
        if self.labels not in LABELS or (self.labels == "expert" and self.what != "bc"):
            raise ConfigError(
                f"labels={self.labels!r}; expected one of {LABELS} (expert: what=bc only)"
            )
        if self.expert and self.labels != "expert":
            raise ConfigError(f"expert={self.expert!r} relabels; it needs labels='expert'")
        if self.spec_file and self.labels == "expert" and not self.expert:
            raise ConfigError(
                "labels='expert' with spec_file: a robot's bags carry no expert_command; give "
                "the expert that relabels them (parameter 'expert')"
            )
        if self.spec_file:
            try:
                specs_for(self.task, self.spec_file, self.env_kwargs)
            except SpecError as err:
                raise ConfigError(f"spec_file: {err}") from None
        if not self.output_dir:
            raise ConfigError("output_dir is empty; give the folder for the learner's runs")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation={self.activation!r}; expected one of {sorted(ACTIVATIONS)}"
            )
        for name in ("hid_size", "members"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r}; expected an integer >= 1")
        if self.num_layers < 0:
            raise ConfigError(f"num_layers={self.num_layers!r}; expected an integer >= 0")
        for name, default in (("policy", "mse"), ("chunk_size", 1)):
            if self.what != "bc" and getattr(self, name) != default:
                raise ConfigError(
                    f"{name}={getattr(self, name)!r} applies to what=bc only; "
                    f"leave it at {default!r} for what={self.what!r}"
                )
        check_policy_options(self.policy, self.chunk_size, self.execute_steps)
        if self.reward_heads not in REWARD_HEADS:
            raise ConfigError(f"reward_heads={self.reward_heads!r}; expected one of {REWARD_HEADS}")
        try:
            resolve_device(self.device)  # ConfigError for cuda without a GPU
        except RuntimeError as err:
            raise ConfigError(f"device={self.device!r} is not a torch device: {err}") from err
        self.trainer_config()  # the trainer's own range checks

    def trainer_config(self) -> BCConfig | DynamicsTrainConfig:
        """The trainer settings these fields describe (ConfigError names a bad value)."""
        if self.what == "bc":
            return config_from(BCConfig, self)
        return config_from(DynamicsTrainConfig, self)


@dataclass(frozen=True)
class EpochReport:
    """Progress after one epoch.

    Attributes:
        epoch: epochs done so far (1-based).
        epochs: the configured number of epochs (dynamics may stop sooner).
        train_loss: mean training loss of the epoch (normalized units).
        val_loss: validation loss (BC: the policy's loss; dynamics: one-step MSE in raw units),
            ``None`` without a validation split.
    """

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None


class JobCancelledError(LearnedControlError):
    """A training job stopped because its cancel flag was set; nothing was written."""


def _is_bag(path: Path) -> bool:
    """A closed rosbag2 bag folder (the writer adds ``metadata.yaml`` when it closes)."""
    return (path / "metadata.yaml").is_file()


def resolve_sources(sources: list[str]) -> list[tuple[str, Literal["minari", "bag"]]]:
    """``(source, kind)`` pairs for :func:`~learned_control.data.sources.load_transitions`.

    A bag folder is a bag; a folder holding bags expands to every closed bag in it, sorted by
    name (bags still being recorded have no ``metadata.yaml`` and are skipped); anything else is
    a Minari dataset id.

    Raises:
        DatasetError: no sources, or a folder that holds no closed bag.
    """
    if not sources:
        raise DatasetError(
            "the learner has no data sources; set 'sources' to bag folders, "
            "folders of bags or Minari dataset ids"
        )
    resolved: list[tuple[str, Literal["minari", "bag"]]] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            if _is_bag(path):
                resolved.append((str(path), "bag"))
                continue
            bags = sorted(p for p in path.iterdir() if p.is_dir() and _is_bag(p))
            if not bags:
                raise DatasetError(
                    f"folder {str(path)!r} holds no closed rosbag2 bag (no "
                    "sub-folder with a metadata.yaml)"
                )
            resolved += [(str(bag), "bag") for bag in bags]
        else:
            resolved.append((source, "minari"))
    return resolved


def load_sources(
    sources: list[str],
    task: Task,
    expert_labels: bool = False,
    specs: RobotSpecs | None = None,
    lockstep: bool = False,
    gap: float | None = None,
) -> Transitions:
    """All transitions of ``sources``, read now, in order (``expert_labels``, ``specs``,
    ``lockstep``, ``gap``: see :func:`~learned_control.data.sources.load_transitions`).

    Raises:
        DatasetError: a source that is missing, unreadable, or whose observation/action sizes do
            not fit the task (the source and both sizes named).
    """
    parts = [
        load_transitions(
            source, task, kind, expert_labels=expert_labels, specs=specs, lockstep=lockstep, gap=gap
        )
        for source, kind in resolve_sources(sources)
    ]
    return Transitions.concatenate(parts)


def _new_run_dir(output_dir: Path, what: str) -> Path:
    """The next ``<what>-<NNNN>`` folder in ``output_dir`` (one more than the highest there)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"{re.escape(what)}-(\d+)")
    taken = [int(m.group(1)) for p in output_dir.iterdir() if (m := pattern.fullmatch(p.name))]
    number = max(taken, default=0) + 1
    while True:
        run_dir = output_dir / f"{what}-{number:04d}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            number += 1


def run_learner_job(
    config: LearnerConfig,
    cancel: threading.Event | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> Path:
    """Run one training job; returns the new checkpoint's absolute path.

    Args:
        config: what to train, on which data, where to write it.
        cancel: when set, the job stops after the current epoch and raises
            :class:`JobCancelledError`; no checkpoint is written.
        on_epoch: called after every epoch with an :class:`EpochReport`.

    Raises:
        DatasetError: no sources, or data that is missing or does not fit the task.
        JobCancelledError: ``cancel`` was set.
    """
    cancel = cancel or threading.Event()
    task = get_task(config.task, config.env_kwargs)
    specs = specs_for(task.name, config.spec_file, config.env_kwargs) if config.spec_file else None
    recorded_labels = config.labels == "expert" and not config.expert
    data = load_sources(config.sources, task, recorded_labels, specs, config.lockstep, config.gap)
    if config.expert:  # DAgger on data without recorded labels: the expert relabels it now
        expert = load_actor(config.expert, task, config.device, seed=config.seed)
        data = replace(data, actions=np.stack([expert.act(obs) for obs in data.observations]))
    if cancel.is_set():
        raise JobCancelledError("cancelled before training started")
    trainer_config = config.trainer_config()
    device = resolve_device(config.device)

    def report(epoch: int, train_loss: float, val_loss: float | None) -> None:
        if on_epoch is not None:
            on_epoch(EpochReport(epoch + 1, config.epochs, train_loss, val_loss))
        if cancel.is_set():
            raise JobCancelledError(f"cancelled after epoch {epoch + 1} of {config.epochs}")

    run_dir = _new_run_dir(Path(config.output_dir).absolute(), config.what)
    name = f"{run_dir.name}.pt"
    metadata = {"sources": list(config.sources), "transitions": len(data), "labels": config.labels}
    seed_everything(config.seed)  # the initial weights
    try:
        if config.what == "bc":
            assert isinstance(trainer_config, BCConfig)  # what == "bc"
            policy = policy_for(
                task,
                config.policy,
                config.hid_size,
                config.num_layers,
                config.activation,
                config.chunk_size,
                config.execute_steps,
                config.seed,
            )
            _, path = train_bc_run(
                policy,
                data,
                task,
                trainer_config,
                run_dir,
                device,
                progress=False,
                metadata={**metadata, "policy": config.policy},
                on_epoch=report,
                checkpoint_name=name,
            )
        else:
            assert isinstance(trainer_config, DynamicsTrainConfig)  # what == "dynamics"
            model = EnsembleDynamics(
                task.obs_dim,
                task.act_dim,
                config.members,
                config.hid_size,
                config.num_layers,
                config.activation,
                config.probabilistic,
                reward_heads=wants_reward_heads(config.reward_heads, task),
            )
            model.to(device)
            _, path = train_dynamics_run(
                model,
                data,
                task,
                trainer_config,
                run_dir,
                config.seed,
                metadata=metadata,
                callback=lambda epoch, m: report(epoch, m["train_loss"], m["val_one_step_mse"]),
                checkpoint_name=name,
            )
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # an incomplete run holds no checkpoint
        raise
    return path


@dataclass
class LearnerStatus:
    """What the learner is doing, for diagnostics.

    Attributes:
        state: ``idle``, ``training`` or ``failed`` (the last job raised; see ``last_error``).
        epoch: epochs done in the current (or last) job.
        epochs: configured epochs of the current (or last) job.
        train_loss: last reported training loss (NaN before the first epoch).
        val_loss: last reported validation loss (NaN when none).
        jobs_done: jobs that wrote a checkpoint.
        last_outcome: ``""`` (no job yet), ``completed``, ``cancelled`` or ``failed``.
        last_checkpoint: absolute path of the newest checkpoint written (``""`` if none).
        last_error: the message of the last failure or cancellation (``""`` if none).
    """

    state: str = "idle"
    epoch: int = 0
    epochs: int = 0
    train_loss: float = float("nan")
    val_loss: float = float("nan")
    jobs_done: int = 0
    last_outcome: str = ""
    last_checkpoint: str = ""
    last_error: str = ""


class _JobOutcome(TypedDict, total=False):
    """The :class:`LearnerStatus` fields a finished job sets."""

    state: str
    last_outcome: str
    last_error: str
    last_checkpoint: str


class BackgroundLearner:
    """Runs one :func:`run_learner_job` at a time in a background thread.

    Args:
        on_finished: called from the worker thread when a job ends (whatever its outcome), after
            the status is updated; the ROS node uses it to wake its executor.
    """

    def __init__(self, on_finished: Callable[[], None] | None = None) -> None:
        self._on_finished = on_finished
        self._lock = threading.Lock()
        self._status = LearnerStatus()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._status.state == "training"

    def status(self) -> LearnerStatus:
        """A copy of the current status."""
        with self._lock:
            return replace(self._status)

    def start(self, config: LearnerConfig) -> tuple[bool, str]:
        """Start a job unless one is running; returns ``(started, message)`` at once."""
        with self._lock:
            if self._status.state == "training":
                return False, (
                    f"already training (epoch {self._status.epoch}/"
                    f"{self._status.epochs}); call cancel first or wait"
                )
            self._status = replace(
                self._status,
                state="training",
                epoch=0,
                epochs=config.epochs,
                train_loss=float("nan"),
                val_loss=float("nan"),
            )
            self._cancel = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(config, self._cancel), name="learner-job", daemon=True
            )
            self._thread.start()
        return True, f"training {config.what} on {config.task} from {len(config.sources)} source(s)"

    def cancel(self) -> tuple[bool, str]:
        """Ask the running job to stop after its current epoch; ``(accepted, message)``."""
        with self._lock:
            if self._status.state != "training":
                return False, "no training job is running"
            self._cancel.set()
            return True, f"cancelling after epoch {self._status.epoch + 1}"

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the running job to end; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _progress(self, report: EpochReport) -> None:
        with self._lock:
            self._status.epoch, self._status.epochs = report.epoch, report.epochs
            self._status.train_loss = report.train_loss
            self._status.val_loss = float("nan") if report.val_loss is None else report.val_loss

    def _run(self, config: LearnerConfig, cancel: threading.Event) -> None:
        try:
            path = run_learner_job(config, cancel, self._progress)
        except JobCancelledError as err:
            update: _JobOutcome = {
                "state": "idle",
                "last_outcome": "cancelled",
                "last_error": str(err),
            }
        except Exception as err:  # any crash ends the job, reported, never the node
            message = (
                str(err)
                if isinstance(err, LearnedControlError)
                else "".join(traceback.format_exception_only(err)).strip()
            )
            update = {"state": "failed", "last_outcome": "failed", "last_error": message}
        else:
            update = {
                "state": "idle",
                "last_outcome": "completed",
                "last_error": "",
                "last_checkpoint": str(path),
            }
        with self._lock:
            done = self._status.jobs_done + (update["last_outcome"] == "completed")
            self._status = replace(self._status, jobs_done=done, **update)
        if self._on_finished is not None:
            self._on_finished()
