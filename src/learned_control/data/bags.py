"""rosbag2 bags in and out with the ``rosbags`` library (no rclpy): the recorder's writer and the
bag -> :class:`Episode` conversion behind ``bag2minari`` and ``load_transitions(kind="bag")``.

Message types are the real ROS 2 Jazzy ones (``get_typestore(Stores.ROS2_JAZZY)``), so a bag
written here is readable by ``ros2 bag info/play``. Topic names and the pairing rule are
:mod:`learned_control.topics` (a module of constants, importable without ROS).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .. import topics
from ..errors import DatasetError
from ..tasks import Task
from .episodes import Episode

__all__ = ["STORAGES", "typestore", "BagWriter", "write_bag", "bag_to_episodes"]

STORAGES = ("sqlite3", "mcap")
"""rosbag2 storage plugins the writer supports."""


@lru_cache(maxsize=1)
def typestore():
    """The ROS 2 Jazzy type store (message definitions for (de)serialisation)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


class BagWriter:
    """A new rosbag2 bag open for writing; use as a context manager (closes the bag on exit).

    Args:
        path: the bag folder; must not exist (nothing is ever overwritten).
        storage: ``"sqlite3"`` or ``"mcap"``.
        topic_types: topic -> ROS 2 message type (``std_msgs/msg/Float64``); default
            :data:`topics.RECORDED_TOPICS`.

    Raises:
        DatasetError: the path exists or the storage is unknown.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        storage: str = "sqlite3",
        topic_types: dict[str, str] | None = None,
    ) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        if storage not in STORAGES:
            raise DatasetError(f"bag storage {storage!r} is not one of {STORAGES}")
        if self.path.exists():
            raise DatasetError(f"bag path {self.path} already exists; give a new path")
        self.topic_types = dict(topics.RECORDED_TOPICS if topic_types is None else topic_types)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._connections: dict[str, Any] = {}

    def __enter__(self) -> BagWriter:
        self._writer.open()
        store = typestore()
        self._connections = {
            topic: self._writer.add_connection(topic, msgtype, typestore=store)
            for topic, msgtype in self.topic_types.items()
        }
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Write the metadata and close the storage (idempotent)."""
        if self._connections:
            self._connections = {}
            self._writer.close()

    def write_raw(self, topic: str, stamp_ns: int, cdr: bytes | memoryview) -> None:
        """Append one CDR-serialised message (as rclpy hands it with ``raw=True``)."""
        try:
            connection = self._connections[topic]
        except KeyError:
            raise DatasetError(
                f"topic {topic!r} is not recorded in {self.path} (recorded: "
                f"{sorted(self._connections)})"
            ) from None
        self._writer.write(connection, int(stamp_ns), cdr)

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        """Serialise a ``rosbags`` message object and append it."""
        self.write_raw(topic, stamp_ns, typestore().serialize_cdr(msg, self.topic_types[topic]))


def _array(values: Sequence[float], label: str) -> Any:
    """A rosbags ``std_msgs/Float64MultiArray`` with one labelled dimension."""
    store = typestore()
    dim = store.types["std_msgs/msg/MultiArrayDimension"](
        label=label, size=len(values), stride=len(values)
    )
    layout = store.types["std_msgs/msg/MultiArrayLayout"](dim=[dim], data_offset=0)
    return store.types["std_msgs/msg/Float64MultiArray"](
        layout=layout, data=np.asarray(values, dtype=np.float64)
    )


def write_bag(
    path: str | os.PathLike,
    episodes: Sequence[Episode],
    storage: str = "sqlite3",
    labels: Sequence[str] = (),
    dt_ns: int = 1_000_000,
) -> Path:
    """Write episodes as the bridge publishes them (observation, applied_command, reward, episode).

    Args:
        path: new bag folder.
        episodes: the episodes (their ``expert_actions`` go to ``expert_command`` when set).
        storage: ``"sqlite3"`` or ``"mcap"``.
        labels: observation element names for the layout.
        dt_ns: log-time spacing between steps, ns.

    Returns:
        The bag path.
    """
    store = typestore()
    label = ",".join(labels)
    stamp = 0
    with BagWriter(path, storage) as bag:
        for index, ep in enumerate(episodes):
            for t in range(len(ep)):
                stamp += dt_ns
                bag.write(topics.OBSERVATION, stamp, _array(ep.observations[t], label))
                bag.write(topics.COMMAND, stamp, _array(ep.actions[t], ""))
                if ep.expert_actions is not None:
                    bag.write(topics.EXPERT_COMMAND, stamp, _array(ep.expert_actions[t], ""))
                bag.write(topics.APPLIED_COMMAND, stamp, _array(ep.actions[t], "applied_command"))
                bag.write(
                    topics.REWARD,
                    stamp,
                    store.types["std_msgs/msg/Float64"](data=float(ep.rewards[t])),
                )
            seed = float("nan") if ep.seed is None else float(ep.seed)
            summary = [float(index), ep.episode_return, float(len(ep)), float("nan"), seed]
            bag.write(
                topics.EPISODE,
                stamp,
                _array(
                    summary + ep.observations[-1].tolist(),
                    ",".join(topics.EPISODE_FIELDS) + ",terminal_observation",
                ),
            )
    return Path(path)


def _max_steps(task: Task | None) -> int | None:
    """The time limit of ``task``'s env (its env kwargs included); ``None``: no task or none."""
    return None if task is None else task.max_episode_steps


def bag_to_episodes(
    path: str | os.PathLike, task: Task | None = None, max_episode_steps: int | None = None
) -> list[Episode]:
    """Episodes from a bag recorded off the bridge, paired per :mod:`topics`' rule.

    Per topic the messages are taken in log order; episode ``k`` (the ``k``-th ``episode``
    summary, of length ``T``) takes the next ``T`` observations, ``applied_command`` messages and
    rewards, and its terminal observation from the summary. An episode cut before its summary
    (a bag stopped mid-episode) is dropped. Without a termination flag on the wire, an episode
    whose length equals the time limit counts as truncated, a shorter one as terminated.

    Args:
        path: the bag folder.
        task: when given, the observation size is checked and its time limit is read from the
            Gymnasium registry.
        max_episode_steps: the time limit (overrides the task's); ``None`` and no task: every
            episode counts as truncated.

    Raises:
        DatasetError: no such bag, an unreadable one, no complete episode, or per-topic counts
            that do not fit the summaries (the topic and both counts named).
    """
    from rosbags.rosbag2 import Reader

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"no bag at {path}")
    store = typestore()
    wanted = {
        topics.OBSERVATION,
        topics.APPLIED_COMMAND,
        topics.EXPERT_COMMAND,
        topics.REWARD,
        topics.EPISODE,
    }
    streams: dict[str, list[np.ndarray]] = defaultdict(list)  # per topic; rewards apart
    rewards: list[float] = []
    try:
        with Reader(path) as reader:
            conns = [c for c in reader.connections if c.topic.lstrip("/").split("/")[-1] in wanted]
            for conn, _, raw in reader.messages(connections=conns):
                msg = store.deserialize_cdr(raw, conn.msgtype)
                name = conn.topic.lstrip("/").split("/")[-1]
                if name == topics.REWARD:
                    rewards.append(float(msg.data))
                else:
                    streams[name].append(np.asarray(msg.data, dtype=np.float64))
    except Exception as err:  # rosbags raises ReaderError and storage errors of several kinds
        raise DatasetError(f"cannot read bag {path}: {err}") from err
    limit = max_episode_steps if max_episode_steps is not None else _max_steps(task)
    summaries = streams[topics.EPISODE]
    if not summaries:
        raise DatasetError(f"bag {path} holds no complete episode (no {topics.EPISODE!r} summary)")
    n_fields = len(topics.EPISODE_FIELDS)
    lengths = [int(s[2]) for s in summaries]
    total = sum(lengths)
    counts = {
        topics.OBSERVATION: len(streams[topics.OBSERVATION]),
        topics.APPLIED_COMMAND: len(streams[topics.APPLIED_COMMAND]),
        topics.REWARD: len(rewards),
    }
    for name, count in counts.items():
        if count < total:
            raise DatasetError(
                f"bag {path}: {count} {name!r} messages for "
                f"{total} steps in {len(summaries)} episodes; cannot pair"
            )
    experts = streams.get(topics.EXPERT_COMMAND, [])
    use_expert = len(experts) >= total
    episodes, start = [], 0
    for summary, steps in zip(summaries, lengths, strict=True):
        stop = start + steps
        terminal = summary[n_fields:]
        obs = np.stack(list(streams[topics.OBSERVATION][start:stop]) + [terminal])
        if task is not None and obs.shape[1] != task.obs_dim:
            raise DatasetError(
                f"bag {path} has observations of size {obs.shape[1]}; task "
                f"{task.name} needs {task.obs_dim}"
            )
        truncated = limit is None or steps >= limit
        done = np.zeros(steps, dtype=bool)
        done[-1] = True
        seed = None if np.isnan(summary[4]) else int(summary[4])
        episodes.append(
            Episode(
                observations=obs,
                actions=np.stack(streams[topics.APPLIED_COMMAND][start:stop]),
                rewards=np.asarray(rewards[start:stop]),
                terminations=done & (not truncated),
                truncations=done & truncated,
                seed=seed,
                expert_actions=np.stack(experts[start:stop]) if use_expert else None,
            )
        )
        start = stop
    return episodes
