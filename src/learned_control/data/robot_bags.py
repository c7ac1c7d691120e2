"""Any rosbag2 bag -> episodes, and episodes -> a bag (``bag2minari``, ``minari2bag``).

**Steps.** One step per command, in log (receive) order:

- with a robot spec, the command topic (Float64MultiArray in the spec's ``joints`` order, or a
  JointTrajectory's first point, any joint order) gives the action in policy order; the
  observation is what :class:`~learned_control.specs.ObservationAssembler` (the controller's)
  assembles from the source messages (JointState, PoseStamped, Odometry, PointStamped goal)
  received before the command; with ``lockstep`` (a controller in lockstep, e.g. on the bridge
  as a driver) each command answers the oldest stamp that every source topic carries and no
  command answered yet, the controller's own rule, so the order in which a recorder wrote
  messages that arrived together does not matter (a stamp some source's message was lost for is
  stale);
- without a spec, the standard ``command`` topic answers the ``observation`` received last before
  it: each observation pairs with the first command received after it, and an observation
  followed by another before any command (superseded) or a command with no new observation since
  the previous one is not paired (both counted in the notes).

Ages are measured on the log clock: a source whose latest message was received more than its
``max_age`` before the command is stale. A stale step is never paired: it **splits** the episode
(the part before it ends at its last fresh observation, the part after starts fresh) and is
dropped.

**Episodes**, first found wins: the bridge's ``episode`` summaries (each episode's commands are
checked against its length, with its seed and terminal observation); else a marker topic (each
message starts a new episode); else the controller's lifecycle transitions
(``<controller>/transition_event``); else gaps between commands longer than ``gap`` seconds.
Without a summary an episode ends at the first observation after its last command (received
within ``gap`` and before the next boundary); without one its last command is dropped and its last
observation is the final one.

**Rewards and terminations**: the bag's ``reward`` topic when it pairs one reward with each step;
else the task's torch functions (:mod:`learned_control.planning.rewards`) when asked; else zeros,
never terminated. With summaries an episode shorter than the time limit counts as terminated.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import topics
from ..errors import DatasetError, SpecError
from ..specs import (
    TRAJECTORY_POINT_FIELDS,
    JointSample,
    ObservationAssembler,
    RobotSpecs,
    command_to_action,
    sample_from_msg,
    stamp_seconds,
)
from ..specs.observation import BODY_FIELDS, JOINT_FIELDS, ObservationSpec
from ..tasks import Task
from .bags import BagWriter, bag_to_episodes, float_array, open_bag, summary_slices, typestore
from .episodes import Episode

__all__ = [
    "DEFAULT_GAP_S",
    "Conversion",
    "convert_bag",
    "convert_any_bag",
    "episodes_to_bag",
]

DEFAULT_GAP_S = 0.5
"""Without summaries, markers or transitions: a pause between commands longer than this (s)
starts a new episode."""

TRANSITION_TYPE = "lifecycle_msgs/msg/TransitionEvent"
FLOAT_ARRAY = "std_msgs/msg/Float64MultiArray"
SOURCE_TYPES = {
    "JointState": "sensor_msgs/msg/JointState",
    "PoseStamped": "geometry_msgs/msg/PoseStamped",
    "Odometry": "nav_msgs/msg/Odometry",
    "goal": "geometry_msgs/msg/PointStamped",
}
"""ROS 2 message type of each spec source type."""


@dataclass
class Conversion:
    """What :func:`convert_bag` made of a bag.

    Attributes:
        episodes: the converted episodes.
        boundaries: where the episode boundaries came from (one phrase).
        rewards: where rewards and terminations came from (one phrase).
        notes: one line per thing left out (episodes dropped, steps split off, unpaired
            messages), each with its reason.
    """

    episodes: list[Episode]
    boundaries: str
    rewards: str
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One paragraph for the dataset's metadata."""
        return f"Episodes from {self.boundaries}; rewards and terminations from {self.rewards}." + (
            f" Left out: {'; '.join(self.notes)}." if self.notes else ""
        )


def _resolve(available: dict[str, str], name: str, path: Path) -> str | None:
    """The bag topic for ``name``: itself (``/`` added to a relative one), else the one topic
    ending in ``/name`` (a namespaced graph); ``None`` when absent."""
    full = name if name.startswith("/") else "/" + name
    if full in available:
        return full
    if name.startswith("/"):
        return None
    found = sorted(t for t in available if t.endswith(full))
    if len(found) > 1:
        raise DatasetError(f"bag {path}: topics {found} all end in {full!r}; which one is meant?")
    return found[0] if found else None


def _require(available: dict[str, str], name: str, path: Path, what: str) -> str:
    """:func:`_resolve`, with a one-line DatasetError naming a missing topic."""
    topic = _resolve(available, name, path)
    if topic is None:
        raise DatasetError(f"bag {path} has no topic {name!r} ({what}); it has {sorted(available)}")
    return topic


def _check_type(available: dict[str, str], topic: str, types: Sequence[str], path: Path) -> None:
    if available[topic] not in types:
        raise DatasetError(
            f"bag {path}: topic {topic!r} is {available[topic]}, expected {' or '.join(types)}"
        )


@dataclass(slots=True)
class _Step:
    """One command: its log time (ns), action, observation (``None``: stale) and the header
    stamps of the sources it was assembled from."""

    time: int
    action: np.ndarray
    observation: np.ndarray | None
    stamps: tuple[float, ...] = ()
    stale: tuple[str, ...] = ()
    after: tuple[int, np.ndarray | None] | None = None  # the first observation after it


@dataclass
class _Read:
    """Everything read from a bag: the steps and the streams that bound and reward them."""

    steps: list[_Step] = field(default_factory=list)
    summaries: list[tuple[int, np.ndarray]] = field(default_factory=list)
    rewards: list[tuple[int, float]] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  # marker or transition log times
    unpaired: dict[str, int] = field(default_factory=dict)
    joint_names: set[str] = field(default_factory=set)  # every joint /joint_states carried


def _command_values(msg: Any, msgtype: str, interface: str) -> tuple[list[str] | None, Any]:
    """``(joint names or None, values)`` of a Float64MultiArray or JointTrajectory message."""
    if msgtype == FLOAT_ARRAY:
        return None, msg.data
    if not msg.points:
        raise SpecError("a JointTrajectory command without points")
    return list(msg.joint_names), getattr(msg.points[0], TRAJECTORY_POINT_FIELDS[interface])


def _read(
    path: Path,
    task: Task,
    specs: RobotSpecs | None,
    episode_topic: str | None,
    controller: str,
    lockstep: bool,
) -> tuple[_Read, str]:
    """Read the bag once in log order; returns what was read and the boundary source."""
    from rosbags.rosbag2 import Reader

    store = typestore()
    out = _Read()
    try:
        reader = Reader(path)
        reader.open()
    except Exception as err:  # rosbags raises ReaderError and storage errors of several kinds
        raise DatasetError(f"cannot read bag {path}: {err}") from err
    try:
        available = {c.topic: c.msgtype for c in reader.connections}
        roles: dict[str, Callable[[int, Any], None]] = {}
        summary = _resolve(available, topics.EPISODE, path)
        reward = _resolve(available, topics.REWARD, path)
        if summary is not None:
            _check_type(available, summary, [FLOAT_ARRAY], path)
            roles[summary] = lambda t, m: out.summaries.append((t, np.asarray(m.data)))
            boundaries = f"the bridge's {summary!r} summaries"
        elif episode_topic:
            marker = _require(available, episode_topic, path, "the --episode-topic marker")
            roles[marker] = lambda t, m: out.cuts.append(t)
            boundaries = f"the marker topic {marker!r}"
        elif (lifecycle := _resolve(available, f"{controller}/transition_event", path)) is not None:
            _check_type(available, lifecycle, [TRANSITION_TYPE], path)
            roles[lifecycle] = lambda t, m: out.cuts.append(t)
            boundaries = f"the controller's lifecycle transitions on {lifecycle!r}"
        else:
            boundaries = "gaps between commands"
        if reward is not None and available[reward] == "std_msgs/msg/Float64":
            roles[reward] = lambda t, m: out.rewards.append((t, float(m.data)))
        if specs is None:
            _standard_roles(available, path, task, roles, out)
        else:
            _spec_roles(available, path, specs, roles, out, summary is None, lockstep)
        conns = [c for c in reader.connections if c.topic in roles]
        try:
            for conn, stamp, raw in reader.messages(connections=conns):
                roles[conn.topic](stamp, store.deserialize_cdr(raw, conn.msgtype))
        except DatasetError:
            raise
        except Exception as err:  # a corrupt message or storage error
            raise DatasetError(f"cannot read bag {path}: {type(err).__name__}: {err}") from err
    finally:
        reader.close()
    if specs is not None and out.joint_names:
        missing = [j for j in specs.observation.joints if j not in out.joint_names]
        if missing:
            raise DatasetError(
                f"bag {path}: the JointState messages never carry joint(s) {missing} named by "
                "the spec"
            )
    return out, boundaries


def _standard_roles(
    available: dict[str, str],
    path: Path,
    task: Task,
    roles: dict[str, Callable[[int, Any], None]],
    out: _Read,
) -> None:
    """Handlers of the standard ``observation`` and ``command`` topics."""
    obs_topic = _require(available, topics.OBSERVATION, path, "the observations")
    cmd_topic = _require(available, topics.COMMAND, path, "the commands")
    for topic in (obs_topic, cmd_topic):
        _check_type(available, topic, [FLOAT_ARRAY], path)
    pending: list[np.ndarray | None] = [None]
    out.unpaired = {"superseded observations": 0, "commands without a new observation": 0}

    def on_obs(t: int, msg: Any) -> None:
        if len(msg.data) != task.obs_dim:
            raise DatasetError(
                f"bag {path}: {obs_topic!r} carries {len(msg.data)} values; task {task.name} "
                f"observes {task.obs_dim}"
            )
        ended = out.steps and (after := out.steps[-1].after) is not None and after[1] is pending[0]
        if pending[0] is not None and not ended:  # (one that ended an episode is used)
            out.unpaired["superseded observations"] += 1
        pending[0] = np.array(msg.data, dtype=np.float64)
        if out.steps and out.steps[-1].after is None:
            out.steps[-1].after = (t, pending[0])

    def on_cmd(t: int, msg: Any) -> None:
        if len(msg.data) != task.act_dim:
            raise DatasetError(
                f"bag {path}: {cmd_topic!r} carries {len(msg.data)} values; task {task.name} "
                f"acts with {task.act_dim}"
            )
        if pending[0] is None:
            out.unpaired["commands without a new observation"] += 1
            return
        out.steps.append(_Step(t, np.array(msg.data, dtype=np.float64), pending[0]))
        pending[0] = None

    roles[obs_topic], roles[cmd_topic] = on_obs, on_cmd


def _spec_roles(
    available: dict[str, str],
    path: Path,
    specs: RobotSpecs,
    roles: dict[str, Callable[[int, Any], None]],
    out: _Read,
    need_after: bool,
    lockstep: bool,
) -> None:
    """Handlers of the spec's source topics (into the assembler) and its command topic;
    ``need_after``: assemble the first observation after each command (no summaries);
    ``lockstep``: each command answers the oldest complete stamp not yet answered."""
    ospec, cspec = specs.observation, specs.command
    assembler = ObservationAssembler(ospec)
    headers: dict[str, float] = {}  # latest header stamp per topic source
    synced: list[str] = []  # the sources the bag has a topic of
    # lockstep: the stamps not answered yet, each [log time, assembly (None until every source
    # carried it), stamps, stale sources (all, until then)]
    unanswered: deque[list[Any]] = deque()
    newest = [-math.inf]  # the newest stamp (s)
    for src in ospec.sources:
        if src.topic is None:
            continue
        topic = _resolve(available, src.topic, path)
        if topic is None:
            if src.type == "goal" and src.value is not None:
                continue  # the goal's parameter value stands
            raise DatasetError(
                f"bag {path} has no topic {src.topic!r} ({src.type} source {src.name!r} of the "
                f"spec); it has {sorted(available)}"
            )
        _check_type(available, topic, [SOURCE_TYPES[src.type]], path)
        synced.append(src.name)

        def on_source(t: int, msg: Any, src=src) -> None:
            stamp = headers[src.name] = stamp_seconds(msg.header.stamp)
            sample = sample_from_msg(src, msg, t * 1e-9)
            if isinstance(sample, JointSample):
                out.joint_names.update(sample.names)
            assembler.update(src.name, sample)
            if need_after and out.steps and out.steps[-1].after is None:
                out.steps[-1].after = (t, assembler.assemble(t * 1e-9).observation)
            if not lockstep:
                return
            if stamp > newest[0]:  # a new stamp: one command will answer it
                newest[0] = stamp
                unanswered.append([t, None, (), tuple(synced)])
            stamps = tuple([headers.get(name, -math.inf) for name in synced])
            if stamp == newest[0] and all(s == stamp for s in stamps):  # complete: assemble
                assembly = assembler.assemble(t * 1e-9)
                unanswered[-1][:] = [t, assembly.observation, stamps, assembly.stale]

        roles[topic] = on_source
    cmd_topic = _require(available, cspec.topic, path, "the spec's command topic")
    cmd_type = (
        "trajectory_msgs/msg/JointTrajectory" if cspec.type == "JointTrajectory" else FLOAT_ARRAY
    )
    _check_type(available, cmd_topic, [cmd_type], path)
    order = [cspec.joints.index(j) for j in cspec.action_joints]  # joints -> policy order
    ages = [(s.name, s.max_age) for s in ospec.sources if s.name in synced and s.max_age]
    if lockstep:
        out.unpaired = {"commands with no unanswered sample stamp": 0}

    def on_cmd(t: int, msg: Any) -> None:
        try:
            names, values = _command_values(msg, cmd_type, cspec.interface)
            if names is None and len(values) == len(order):
                action = np.asarray(values, dtype=np.float64)[order]
            else:
                action = command_to_action(cspec, names, values)
        except SpecError as err:
            raise DatasetError(f"bag {path}: {cmd_topic!r}: {err}") from None
        if not lockstep:
            assembly = assembler.assemble(t * 1e-9)
            stamps = tuple([headers.get(name, -math.inf) for name in synced])
            out.steps.append(_Step(t, action, assembly.observation, stamps, assembly.stale))
            return
        if not unanswered:
            out.unpaired["commands with no unanswered sample stamp"] += 1
            return
        t0, obs, stamps, stale = unanswered.popleft()
        late = tuple(name for name, age in ages if t - t0 > age * 1e9)
        out.steps.append(_Step(t, action, None if late else obs, stamps, late or stale))

    roles[cmd_topic] = on_cmd


def _segments(read: _Read, gap: float) -> list[tuple[int, int, int]]:
    """``(start, stop, before)``: step ranges between cuts (markers, transitions) or gaps, and
    the log time (ns) before which an observation after the last command still ends the
    segment (the next cut, at most ``gap`` after that command)."""
    times = np.array([s.time for s in read.steps], dtype=np.int64)
    cuts = np.array(sorted(read.cuts), dtype=np.int64)
    if read.cuts:
        edges = np.searchsorted(times, cuts, side="left")
    else:
        edges = np.flatnonzero(np.diff(times) > gap * 1e9) + 1
    bounds = [0, *sorted({int(e) for e in edges}), len(times)]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b > a:
            before = int(times[b - 1] + gap * 1e9)
            later = cuts[cuts > times[b - 1]]
            out.append((a, b, min(before, int(later[0])) if len(later) else before))
    return out


def _split_stale(steps: Sequence[_Step]) -> list[list[_Step]]:
    """Runs of fresh steps between stale ones (the stale steps dropped)."""
    runs: list[list[_Step]] = [[]]
    for step in steps:
        if step.observation is None:
            runs.append([])
        else:
            runs[-1].append(step)
    return runs


@dataclass
class _Part:
    """Steps of one episode-to-be: observations ``(T+1, obs_dim)``, actions, rewards (or
    ``None``), whether it ended in a termination, and its seed."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray | None
    terminated: bool
    seed: int | None = None


def _parts(
    steps: Sequence[_Step],
    rewards: np.ndarray | None,
    terminal: np.ndarray | None,
    terminated: bool,
    seed: int | None,
    label: str,
    notes: list[str],
) -> list[_Part]:
    """One episode's steps split at stale ones: every run but the last ends at its last
    observation (its last command dropped); the last run ends at ``terminal`` when given, else as
    the others."""
    index = {id(s): i for i, s in enumerate(steps)}
    runs = _split_stale(steps)
    stale = sum(s.observation is None for s in steps)
    if stale:
        names = sorted({n for s in steps if s.observation is None for n in s.stale})
        notes.append(f"{label}: {stale} stale step(s) (source(s) {names}) dropped, split there")
    out = []
    for k, run in enumerate(runs):
        ends = k == len(runs) - 1 and terminal is not None
        kept = run if ends else run[:-1]
        if not kept:
            continue
        final = terminal if terminal is not None and ends else run[-1].observation
        assert final is not None  # a run holds fresh steps only
        obs = np.stack([s.observation for s in kept if s.observation is not None] + [final])
        acts = np.stack([s.action for s in kept])
        rew = None if rewards is None else rewards[[index[id(s)] for s in kept]]
        out.append(_Part(obs, acts, rew, terminated and ends, seed if k == 0 else None))
    return out


def _duplicate_stamps(steps: Sequence[_Step]) -> int:
    """Commands that answered the same source stamps as the command before them."""
    return sum(
        a.stamps == b.stamps and a.observation is not None and b.observation is not None
        for a, b in zip(steps[:-1], steps[1:], strict=True)
    )


def _reward_per_step(read: _Read) -> np.ndarray | None:
    """Without summaries: the one reward logged after each command and up to the next; ``None``
    when some step has none or several."""
    if not read.rewards:
        return None
    cmd = np.array([s.time for s in read.steps], dtype=np.int64)
    rew_t = np.array([t for t, _ in read.rewards], dtype=np.int64)
    first = np.searchsorted(rew_t, cmd, side="left")
    after = np.append(first[1:], len(rew_t))
    if not np.all(after - first == 1):
        return None
    return np.array([v for _, v in read.rewards])[first]


def _task_rewards(
    task: Task,
) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
    """``(observations (T+1, obs_dim), actions (T, act_dim)) -> (rewards (T,), terminated (T,))``
    from the task's torch reward and termination; ``None`` for a task without them."""
    import torch

    from ..planning.rewards import get_reward_fns, has_reward

    if not has_reward(task.name):
        return None
    reward_fn, done_fn = get_reward_fns(task.name)

    def compute(obs: np.ndarray, acts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        o, a = torch.from_numpy(obs), torch.from_numpy(acts)
        with torch.no_grad():
            return reward_fn(o[:-1], a, o[1:]).numpy(), done_fn(o[1:]).numpy()

    return compute


def convert_bag(
    path: str | os.PathLike,
    task: Task,
    specs: RobotSpecs | None = None,
    episode_topic: str | None = None,
    gap: float = DEFAULT_GAP_S,
    task_rewards: bool = False,
    max_episode_steps: int | None = None,
    controller: str = "controller",
    lockstep: bool = False,
) -> Conversion:
    """Episodes from any bag (see the module doc for the rules).

    Args:
        path: the bag folder (a killed recorder's bag is reindexed first).
        task: the task (observation and action sizes; time limit, rewards).
        specs: a robot spec: observations from its sources, actions from its command topic;
            ``None``: the standard ``observation`` and ``command`` topics.
        episode_topic: a marker topic (used when the bag has no summaries).
        gap: the pause (s) that ends an episode when there is nothing else.
        task_rewards: rewards and terminations from the task's functions when the bag's
            ``reward`` topic does not pair (zeros, said so, for a task without them).
        max_episode_steps: the time limit (default the task's) that tells a truncated
            summarized episode from a terminated one.
        controller: the controller node's name, whose ``transition_event`` marks episodes.
        lockstep: (with ``specs``) the controller ran in lockstep: each command answers the
            oldest stamp that every source topic carries and no command answered yet, as the
            controller does, whatever order the recorder wrote them in; default: the newest
            samples received before the command (realtime).

    Raises:
        DatasetError: in one line, a missing topic or joint, a command that does not fit the
            spec, sizes that do not fit the task, or no episode that converts (with why).
    """
    path = open_bag(path)
    read, boundaries = _read(path, task, specs, episode_topic, controller, lockstep)
    notes = [f"{n} {what}" for what, n in read.unpaired.items() if n]
    if not read.steps:
        raise DatasetError(f"bag {path}: no command was paired with an observation")
    if read.summaries:
        parts, rewards_from = _summary_parts(read, task, specs, max_episode_steps, notes, path)
    else:
        parts, rewards_from = _segment_parts(read, gap, notes)
    summarized = bool(read.summaries)  # terminations from the summaries' lengths
    compute = _task_rewards(task) if task_rewards else None
    fns = f"task {task.name}'s reward and termination functions"
    if rewards_from is None:
        rewards_from = (
            fns
            if compute is not None
            else "nowhere: zero rewards, never terminated ("
            + (
                f"task {task.name} has no reward function in learned_control.planning.rewards)"
                if task_rewards
                else "no reward topic, no --task)"
            )
        )
    elif compute is not None and not summarized:
        rewards_from += f", terminations from {fns}"
    episodes = []
    for part in parts:
        obs, acts = part.observations, part.actions
        terms = np.zeros(len(acts), dtype=bool)
        rewards = part.rewards if part.rewards is not None else np.zeros(len(acts))
        if summarized:
            terms[-1] = part.terminated
        elif compute is not None:
            computed, terms = compute(obs, acts)
            rewards = computed if part.rewards is None else rewards
            if terms[:-1].any():  # the task ended there: keep what comes before
                stop = int(np.argmax(terms)) + 1
                notes.append(f"an episode cut after step {stop - 1}, where {task.name} terminates")
                obs, acts, rewards, terms = (
                    obs[: stop + 1],
                    acts[:stop],
                    rewards[:stop],
                    terms[:stop],
                )
        truncs = np.zeros(len(terms), dtype=bool)
        truncs[-1] = not terms[-1]
        episodes.append(Episode(obs, acts, rewards, terms, truncs, seed=part.seed))
    if not episodes:
        raise DatasetError(f"bag {path}: no episode converts ({'; '.join(notes) or 'too short'})")
    return Conversion(episodes, boundaries, rewards_from, notes)


def _summary_parts(
    read: _Read,
    task: Task,
    specs: RobotSpecs | None,
    max_episode_steps: int | None,
    notes: list[str],
    path: Path,
) -> tuple[list[_Part], str | None]:
    """Episodes bounded by the bridge's summaries, each checked per episode
    (:func:`~learned_control.data.bags.summary_slices`); ``(parts, rewards source or None)``."""
    limit = max_episode_steps if max_episode_steps is not None else task.max_episode_steps
    times = np.array([s.time for s in read.steps], dtype=np.int64)
    summary_t = [t for t, _ in read.summaries]
    lengths = [int(s[2]) for _, s in read.summaries]
    ranges = summary_slices(times, summary_t, lengths, "commands")
    reward_t = np.array([t for t, _ in read.rewards], dtype=np.int64)
    reward_v = np.array([v for _, v in read.rewards])
    reward_ranges: list[tuple[int, int] | str | None] = (
        list(summary_slices(reward_t, summary_t, lengths, "rewards"))
        if read.rewards
        else [None] * len(ranges)
    )
    n_fields = len(topics.EPISODE_FIELDS)
    parts: list[_Part] = []
    for k, ((_, summary), rng, rrng) in enumerate(
        zip(read.summaries, ranges, reward_ranges, strict=True)
    ):
        if isinstance(rng, str) or isinstance(rrng, str):
            notes.append(f"episode {k} dropped: {rng if isinstance(rng, str) else rrng}")
            continue
        steps = read.steps[rng[0] : rng[1]]
        if specs is not None and (dup := _duplicate_stamps(steps)):
            notes.append(
                f"episode {k} dropped: {dup} command(s) answered the same source stamps as the "
                "one before (a sample lost or reordered)"
            )
            continue
        if len(summary) - n_fields != task.obs_dim:
            raise DatasetError(
                f"bag {path}: the episode summaries carry observations of size "
                f"{len(summary) - n_fields}; task {task.name} needs {task.obs_dim}"
            )
        seed = None if np.isnan(summary[4]) else int(summary[4])
        rewards = None if rrng is None else reward_v[rrng[0] : rrng[1]]
        terminated = limit is not None and lengths[k] < limit
        parts += _parts(steps, rewards, summary[n_fields:], terminated, seed, f"episode {k}", notes)
    if (after := int(np.sum(times > summary_t[-1]))) > 0:
        notes.append(f"{after} command(s) after the last summary (an episode cut) dropped")
    return parts, (f"the bag's {topics.REWARD!r} topic" if read.rewards else None)


def _segment_parts(read: _Read, gap: float, notes: list[str]) -> tuple[list[_Part], str | None]:
    """Episodes between cuts or gaps, each ended by the first observation after its last
    command (received before the next boundary); ``(parts, rewards source or None)``."""
    per_step = _reward_per_step(read)
    if read.rewards and per_step is None:
        notes.append(f"the {topics.REWARD!r} topic does not pair one reward per command: not used")
    parts: list[_Part] = []
    for a, b, before in _segments(read, gap):
        rewards = None if per_step is None else per_step[a:b]
        after = read.steps[b - 1].after
        terminal = after[1] if after is not None and after[0] < before else None
        parts += _parts(
            read.steps[a:b], rewards, terminal, False, None, f"commands {a}-{b - 1}", notes
        )
    return parts, (f"the bag's {topics.REWARD!r} topic" if per_step is not None else None)


def convert_any_bag(
    path: str | os.PathLike,
    task: Task,
    specs: RobotSpecs | None = None,
    **options: Any,
) -> Conversion:
    """What ``bag2minari`` runs: with ``specs`` :func:`convert_bag` on the spec's topics; else a
    bag with the bridge's ``applied_command`` and ``episode`` topics through
    :func:`~learned_control.data.bags.bag_to_episodes` (the action the bridge applied); else
    :func:`convert_bag` on the standard topics. ``options``: those of :func:`convert_bag`."""
    from rosbags.rosbag2 import Reader

    path = open_bag(path)
    if specs is None:
        try:
            with Reader(path) as reader:
                names = {c.topic.lstrip("/").split("/")[-1] for c in reader.connections}
        except Exception as err:  # rosbags raises ReaderError and storage errors of several kinds
            raise DatasetError(f"cannot read bag {path}: {err}") from err
        if {topics.APPLIED_COMMAND, topics.EPISODE} <= names:
            notes: list[str] = []
            episodes = bag_to_episodes(path, task, options.get("max_episode_steps"), notes)
            return Conversion(
                episodes,
                f"the bridge's {topics.EPISODE!r} summaries (actions: {topics.APPLIED_COMMAND!r})",
                f"the bag's {topics.REWARD!r} topic",
                notes,
            )
    return convert_bag(path, task, specs, **options)


# ------------------------------------------------------------------------------ writing


def _setters(spec: ObservationSpec) -> list[tuple[str, str, str, list[int], int]]:
    """``(kind, source or joint, field, indices, offset)`` per feature: where each observation
    value goes in the source messages. DatasetError for a feature that is not a plain read (a
    ``joint``, ``body`` or ``goal`` value, or a ``const``)."""
    from ..specs.observation import compile_features

    out, offset = [], 0
    for feature, (size, _) in zip(spec.features, compile_features(spec), strict=True):
        expr = feature.expr
        kind = next(iter(k for k in ("joint", "body", "goal", "const") if k in expr), None)
        if kind is None:
            raise DatasetError(
                f"feature {feature.name!r} ({', '.join(expr)}) is not a plain read of a joint, "
                "body or goal: its messages cannot be written from an observation; write the "
                "standard topics instead"
            )
        index = [int(i) for i in expr.get("index", range(size))]
        fld = str(expr.get("field", "position"))
        out.append((kind, str(expr[kind]) if kind != "const" else "", fld, index, offset))
        offset += size
    return out


def _source_messages(
    specs: RobotSpecs,
    setters: Sequence[tuple[str, str, str, list[int], int]],
    obs: np.ndarray,
    stamp: float,
) -> dict[str, Any]:
    """Source name -> the rosbags message that assembles to ``obs`` (fields no feature reads
    are zero; an orientation no feature reads is the identity)."""
    store = typestore()
    types = store.types
    ospec = specs.observation
    joints = ospec.joints
    jvals = {f: np.zeros(len(joints)) for f in JOINT_FIELDS}
    bodies: dict[str, dict[str, np.ndarray]] = {}
    goals: dict[str, np.ndarray] = {}
    for kind, name, fld, index, offset in setters:
        values = obs[offset : offset + len(index)]
        if kind == "joint":
            jvals[fld][joints.index(name)] = values[0]
        elif kind == "body":
            body = bodies.setdefault(
                name,
                {
                    f: np.array([0.0, 0.0, 0.0, 1.0]) if f == "orientation" else np.zeros(n)
                    for f, n in BODY_FIELDS.items()
                },
            )
            body[fld][index] = values
        elif kind == "goal":
            src = ospec.source(name)
            size = len(src.value) if src.value is not None else max(index) + 1
            goals.setdefault(name, np.zeros(max(size, 3)))[index] = values
    sec = int(stamp)
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=round((stamp - sec) * 1e9)),
        frame_id="",
    )
    point = types["geometry_msgs/msg/Point"]
    vector = types["geometry_msgs/msg/Vector3"]
    out: dict[str, Any] = {}
    for src in ospec.sources:
        framed = dataclasses.replace(header, frame_id=src.frame)
        if src.type == "JointState":
            out[src.name] = types[SOURCE_TYPES["JointState"]](
                header=header, name=list(joints), **{f: jvals[f] for f in JOINT_FIELDS}
            )
        elif src.type == "goal":
            if src.topic is None:
                continue
            x, y, z = goals.get(name := src.name, np.array([*(src.value or ()), 0, 0, 0]))[:3]
            out[name] = types[SOURCE_TYPES["goal"]](header=framed, point=point(x=x, y=y, z=z))
        else:
            b = bodies.get(src.name, {f: np.zeros(n) for f, n in BODY_FIELDS.items()})
            q = b.get("orientation", np.array([0.0, 0.0, 0.0, 1.0]))
            pose = types["geometry_msgs/msg/Pose"](
                position=point(*b["position"]),
                orientation=types["geometry_msgs/msg/Quaternion"](*q),
            )
            if src.type == "PoseStamped":
                out[src.name] = types[SOURCE_TYPES["PoseStamped"]](header=framed, pose=pose)
                continue
            cov = np.zeros(36)
            twist = types["geometry_msgs/msg/Twist"](
                linear=vector(*b["linear_velocity"]), angular=vector(*b["angular_velocity"])
            )
            out[src.name] = types[SOURCE_TYPES["Odometry"]](
                header=framed,
                child_frame_id=src.sim_body or src.name,
                pose=types["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=cov),
                twist=types["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=cov),
            )
    return out


def _command_message(specs: RobotSpecs, action: np.ndarray) -> Any:
    """The controller command carrying ``action`` (policy order) unshaped: a Float64MultiArray
    in ``joints`` order, or a one-point JointTrajectory (inverse of
    :func:`~learned_control.specs.command_to_action`)."""
    types = typestore().types
    cspec = specs.command
    values = np.array([action[cspec.action_joints.index(j)] for j in cspec.joints])
    if cspec.type == "Float64MultiArray":
        return float_array(values, ",".join(cspec.joints))
    sec = int(cspec.period)
    empty = np.zeros(0)
    fields = {"positions": empty, "velocities": empty, "accelerations": empty, "effort": empty}
    fields[TRAJECTORY_POINT_FIELDS[cspec.interface]] = values
    point = types["trajectory_msgs/msg/JointTrajectoryPoint"](
        **fields,
        time_from_start=types["builtin_interfaces/msg/Duration"](
            sec=sec, nanosec=round((cspec.period - sec) * 1e9)
        ),
    )
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""
    )
    return types["trajectory_msgs/msg/JointTrajectory"](
        header=header, joint_names=list(cspec.joints), points=[point]
    )


def episodes_to_bag(
    path: str | os.PathLike,
    episodes: Sequence[Episode],
    task: Task,
    specs: RobotSpecs | None = None,
    storage: str = "mcap",
    start_ns: int = 1_000_000_000,
    reset_gap_s: float = 1.0,
) -> Path:
    """Write episodes as a robot's bag: per step the observation (with ``specs``: the source
    messages it assembles from, stamped with the step time; else ``observation``), then the
    command (the spec's command topic, unshaped; else ``command``) and ``reward``; per episode
    the bridge's ``episode`` summary (length, return, seed, terminal observation), then a pause of
    ``reset_gap_s``. Steps are ``dt`` apart (the spec's command period, else the task's).
    :func:`convert_bag` reads it back exactly.

    Raises:
        DatasetError: an existing path, sizes that do not fit ``task``, or a spec feature that
            is not a plain read (see :func:`_setters`).
    """
    dt = specs.command.period if specs is not None else (task.dt or 0.02)
    dt_ns = max(round(dt * 1e9), 10_000)
    store = typestore()
    reward_type = store.types["std_msgs/msg/Float64"]
    if specs is not None:
        setters = _setters(specs.observation)
        cmd_type = (
            "trajectory_msgs/msg/JointTrajectory"
            if specs.command.type == "JointTrajectory"
            else FLOAT_ARRAY
        )
        wanted = {
            src.topic: SOURCE_TYPES[src.type] for src in specs.observation.sources if src.topic
        } | {specs.command.topic: cmd_type}
    else:
        wanted = {"/" + topics.OBSERVATION: FLOAT_ARRAY, "/" + topics.COMMAND: FLOAT_ARRAY}
    wanted |= {"/" + topics.REWARD: "std_msgs/msg/Float64", "/" + topics.EPISODE: FLOAT_ARRAY}
    for i, ep in enumerate(episodes):
        if ep.observations.shape[1] != task.obs_dim or ep.actions.shape[1] != task.act_dim:
            raise DatasetError(
                f"episode {i} has observations of size {ep.observations.shape[1]} and actions "
                f"of size {ep.actions.shape[1]}; task {task.name} takes {task.obs_dim} and "
                f"{task.act_dim}"
            )
    labels = ",".join(task.labels)
    stamp = start_ns
    with BagWriter(path, storage, wanted) as bag:
        for index, ep in enumerate(episodes):
            for t in range(len(ep)):
                obs = ep.observations[t]
                if specs is None:
                    bag.write("/" + topics.OBSERVATION, stamp, float_array(list(obs), labels))
                    bag.write("/" + topics.COMMAND, stamp + 1000, float_array(ep.actions[t], ""))
                else:
                    for name, msg in _source_messages(specs, setters, obs, stamp * 1e-9).items():
                        topic = specs.observation.source(name).topic
                        assert topic is not None  # only topic sources get messages
                        bag.write(topic, stamp, msg)
                    bag.write(
                        specs.command.topic, stamp + 1000, _command_message(specs, ep.actions[t])
                    )
                bag.write("/" + topics.REWARD, stamp + 2000, reward_type(data=float(ep.rewards[t])))
                stamp += dt_ns
            seed = math.nan if ep.seed is None else float(ep.seed)
            summary = [float(index), ep.episode_return, float(len(ep)), math.nan, seed]
            bag.write(
                "/" + topics.EPISODE,
                stamp - dt_ns + 3000,
                float_array(
                    summary + ep.observations[-1].tolist(),
                    ",".join(topics.EPISODE_FIELDS) + ",terminal_observation",
                ),
            )
            stamp += round(reset_gap_s * 1e9)
    return Path(path)
