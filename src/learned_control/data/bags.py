"""rosbag2 bags in and out with the ``rosbags`` library (no rclpy): the recorder's writer and the
bag -> :class:`Episode` conversion behind ``bag2minari`` and ``load_transitions(kind="bag")``.

Message types are the real ROS 2 Jazzy ones (``get_typestore(Stores.ROS2_JAZZY)``), so a bag
written here is readable by ``ros2 bag info/play``. Topic names and the pairing rule are
:mod:`learned_control.topics` (a module of constants, importable without ROS).
"""

from __future__ import annotations

import os
import sqlite3
import struct
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
import yaml

from .. import topics
from ..errors import DatasetError
from ..tasks import Task
from .episodes import Episode

__all__ = [
    "STORAGES",
    "FLUSH_INTERVAL_S",
    "typestore",
    "BagWriter",
    "write_bag",
    "reindex",
    "bag_to_episodes",
    "open_bag",
    "summary_slices",
    "float_array",
    "RACE_S",
]

STORAGES = ("sqlite3", "mcap")
"""rosbag2 storage plugins the writer supports."""

FLUSH_INTERVAL_S = 0.5
"""How often the recorder makes its bag survive a killed process (s): an mcap chunk is closed
and written out, a sqlite3 transaction committed. A SIGKILL loses at most this much."""


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
        self.flush()
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

    def flush(self) -> None:
        """Put what was written so far into the file, readable after a SIGKILL (see
        :func:`reindex`): mcap closes its open chunk (when it holds a message) and flushes the
        file, sqlite3 commits. The page cache keeps it across a killed process, not a power cut."""
        from rosbags.rosbag2.storage_mcap import McapWriter
        from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer

        storage = self._writer.storage
        if isinstance(storage, McapWriter):
            if storage.chunk.msgs:
                storage.close_chunk()
            storage.bio.flush()
        elif isinstance(storage, Sqlite3Writer):
            storage.conn.commit()

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


def float_array(values: Sequence[float] | np.ndarray, label: str) -> Any:
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
                bag.write(topics.OBSERVATION, stamp, float_array(ep.observations[t], label))
                bag.write(topics.COMMAND, stamp, float_array(ep.actions[t], ""))
                if ep.expert_actions is not None:
                    bag.write(topics.EXPERT_COMMAND, stamp, float_array(ep.expert_actions[t], ""))
                bag.write(
                    topics.APPLIED_COMMAND, stamp, float_array(ep.actions[t], "applied_command")
                )
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
                float_array(
                    summary + ep.observations[-1].tolist(),
                    ",".join(topics.EPISODE_FIELDS) + ",terminal_observation",
                ),
            )
    return Path(path)


MCAP_MAGIC = b"\x89MCAP0\r\n"
"""The first and last 8 bytes of an mcap file."""


def _record(op: int, body: bytes) -> bytes:
    """One mcap record: opcode, uint64 length, body."""
    return bytes([op]) + struct.pack("<Q", len(body)) + body


def _pairs(fmt: str, items: Sequence[tuple[int, int]]) -> bytes:
    """An mcap map/array field: uint32 byte length, then ``items`` packed with ``fmt``."""
    packed = b"".join(struct.pack(fmt, *item) for item in items)
    return struct.pack("<I", len(packed)) + packed


@dataclass
class _Chunk:
    """A complete chunk record found in an mcap file: where it lies (bytes), its header fields
    and, per channel, its messages' ``(log_time, offset in the chunk's records)``."""

    start: int
    length: int
    header: bytes  # message start/end time, uncompressed size and crc, compression, size
    times: tuple[int, int]
    index: dict[int, list[tuple[int, int]]]
    index_offsets: dict[int, int] = field(default_factory=dict)
    index_end: int = 0  # end of its message index records


def _read_record(f: BinaryIO) -> tuple[int, bytes] | None:
    """The next record at the file position; ``None`` at the end or a record cut short."""
    head = f.read(9)
    if len(head) < 9:
        return None
    (length,) = struct.unpack("<Q", head[1:])
    body = f.read(length)
    return (head[0], body) if len(body) == length else None


def _parse_chunk(
    body: bytes, start: int, schemas: dict[int, bytes], channels: dict[int, bytes]
) -> _Chunk:
    """A chunk record's contents; its schema and channel records go into ``schemas`` and
    ``channels`` (id -> record body). Raises ReaderError for a corrupt one."""
    from rosbags.rosbag2.storage_mcap import decompress

    t0, t1, size, crc, name_len = struct.unpack_from("<QQQII", body)
    at = 32 + name_len
    compression = body[32:at].decode()
    (packed_len,) = struct.unpack_from("<Q", body, at)
    records = decompress(body[at + 8 : at + 8 + packed_len], compression, size, crc)
    index: dict[int, list[tuple[int, int]]] = defaultdict(list)
    pos = 0
    while pos < len(records):
        op, (length,) = records[pos], struct.unpack_from("<Q", records, pos + 1)
        rec = records[pos + 9 : pos + 9 + length]
        (key,) = struct.unpack_from("<H", rec)
        if op == 0x03:
            schemas[key] = rec
        elif op == 0x04:
            channels[key] = rec
        elif op == 0x05:
            index[key].append((struct.unpack_from("<Q", rec, 6)[0], pos))
        pos += 9 + length
    length = 9 + len(body)
    return _Chunk(start, length, body[: at + 8], (t0, t1), dict(index), index_end=start + length)


def _repair_mcap(file: Path) -> int:
    """Finish an mcap file its writer never closed, the way ``ros2 bag reindex`` reads one: keep
    every complete chunk, drop the unfinished tail, write the message indexes of the last chunk
    and the summary (schemas, channels, chunk indexes, statistics) and footer.

    Returns:
        The bytes of unfinished tail dropped; 0 for a file that was complete.

    Raises:
        DatasetError: not an mcap file.
    """
    from rosbags.rosbag2.errors import ReaderError

    with file.open("r+b") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(0)
        if f.read(8) != MCAP_MAGIC:
            raise DatasetError(f"{file} is not an mcap file (no magic)")
        if size >= 8 + 37:  # a footer record (opcode 0x02, length 20) and the closing magic
            f.seek(size - 37)
            tail = f.read(37)
            if tail[:9] == _record(0x02, bytes(20))[:9] and tail[-8:] == MCAP_MAGIC:
                return 0
        f.seek(8)
        schemas: dict[int, bytes] = {}
        channels: dict[int, bytes] = {}
        chunks: list[_Chunk] = []
        end = 8  # end of the data kept
        while True:
            start = f.tell()
            record = _read_record(f)
            if record is None or record[0] == 0x0F:  # cut short, or the data end
                break
            op, body = record
            if op == 0x06:
                try:
                    chunks.append(_parse_chunk(body, start, schemas, channels))
                except (ReaderError, struct.error, UnicodeDecodeError):
                    break  # a corrupt chunk: what follows is not trusted either
            elif op == 0x07 and chunks:
                chunks[-1].index_offsets[struct.unpack_from("<H", body)[0]] = start
                chunks[-1].index_end = f.tell()
                continue  # the last chunk's indexes are written anew
            elif op == 0x03:
                schemas[struct.unpack_from("<H", body)[0]] = body
            elif op == 0x04:
                channels[struct.unpack_from("<H", body)[0]] = body
            end = f.tell()
        f.seek(end)
        f.truncate()
        if chunks:  # the last chunk's message indexes, complete or not, from its contents
            last = chunks[-1]
            last.index_offsets = {}
            for cid, entries in last.index.items():
                last.index_offsets[cid] = f.tell()
                f.write(_record(0x07, struct.pack("<H", cid) + _pairs("<QQ", entries)))
            last.index_end = f.tell()
        f.write(_record(0x0F, struct.pack("<I", 0)))
        groups = []
        for op, bodies in (
            (0x03, list(schemas.values())),
            (0x04, list(channels.values())),
            (0x08, [_chunk_index(c) for c in chunks]),
            (0x0B, [_statistics(chunks, len(schemas), len(channels))]),
        ):
            group_start = f.tell()
            f.write(b"".join(_record(op, b) for b in bodies))
            groups.append((op, group_start, f.tell() - group_start))
        summary_start, offsets_start = groups[0][1], f.tell()
        for op, group_start, length in groups:
            if length:
                f.write(_record(0x0E, struct.pack("<BQQ", op, group_start, length)))
        f.write(_record(0x02, struct.pack("<QQI", summary_start, offsets_start, 0)))
        f.write(MCAP_MAGIC)
    return size - end


def _chunk_index(chunk: _Chunk) -> bytes:
    """The ChunkIndex record body of ``chunk``."""
    t0, t1, size, _crc, name_len = struct.unpack_from("<QQQII", chunk.header)
    compression = chunk.header[28 : 32 + name_len]  # the length-prefixed string
    (packed_len,) = struct.unpack_from("<Q", chunk.header, 32 + name_len)
    chunk_end = chunk.start + chunk.length
    return (
        struct.pack("<QQQQ", t0, t1, chunk.start, chunk.length)
        + _pairs("<HQ", sorted(chunk.index_offsets.items()))
        + struct.pack("<Q", chunk.index_end - chunk_end)
        + compression
        + struct.pack("<QQ", packed_len, size)
    )


def _statistics(chunks: Sequence[_Chunk], n_schemas: int, n_channels: int) -> bytes:
    """The Statistics record body over ``chunks``."""
    counts: dict[int, int] = defaultdict(int)
    for chunk in chunks:
        for cid, entries in chunk.index.items():
            counts[cid] += len(entries)
    times = [c.times for c in chunks if c.index]
    start = min((t[0] for t in times), default=0)
    stop = max((t[1] for t in times), default=0)
    return struct.pack(
        "<QHIIIIQQ", sum(counts.values()), n_schemas, n_channels, 0, 0, len(chunks), start, stop
    ) + _pairs("<HQ", sorted(counts.items()))


def _rollback_sqlite(file: Path) -> None:
    """Open the database read-write once, so SQLite rolls back the transaction a killed writer
    left (its hot journal); the readers open it immutable and would not."""
    try:
        with sqlite3.connect(file) as conn:
            conn.execute("SELECT count(*) FROM messages").fetchone()
        conn.close()
    except sqlite3.Error as err:
        raise DatasetError(f"cannot open {file}: {err}") from err


def reindex(path: str | os.PathLike) -> str | None:
    """Make a bag whose recorder was killed readable, like ``ros2 bag reindex``: finish its
    storage file (mcap: see :func:`_repair_mcap`; sqlite3: roll back the uncommitted
    transaction) and write ``metadata.yaml`` from what the file holds.

    Args:
        path: the bag folder.

    Returns:
        ``None`` when the bag has its ``metadata.yaml`` (nothing done); else a one-line notice of
        what was recovered.

    Raises:
        DatasetError: no bag folder, not exactly one storage file, or one that cannot be read.
    """
    from rosbags.interfaces import ConnectionExtRosbag2
    from rosbags.rosbag2 import Reader
    from rosbags.rosbag2.metadata import dump_qos_v9

    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"no bag folder at {path}")
    if (path / "metadata.yaml").exists():
        return None
    files = sorted(path.glob("*.mcap")) + sorted(path.glob("*.db3"))
    if len(files) != 1:
        raise DatasetError(
            f"bag {path} has no metadata.yaml and {len(files)} storage files (.mcap/.db3); "
            "need exactly one to reindex"
        )
    file = files[0]
    dropped = 0
    if file.suffix == ".mcap":
        dropped = _repair_mcap(file)
    else:
        _rollback_sqlite(file)
    try:
        with Reader(file) as reader:
            conns = list(reader.connections)
            count, start = reader.message_count, reader.start_time
            duration = max(0, reader.end_time - 1 - start) if count else 0
    except Exception as err:  # rosbags raises ReaderError and storage errors of several kinds
        raise DatasetError(f"cannot read {file} to reindex it: {err}") from err
    store = typestore()
    info = {
        "version": 9,
        "storage_identifier": "mcap" if file.suffix == ".mcap" else "sqlite3",
        "relative_file_paths": [file.name],
        "duration": {"nanoseconds": duration},
        "starting_time": {"nanoseconds_since_epoch": start if count else 0},
        "message_count": count,
        "topics_with_message_count": [
            {
                "topic_metadata": {
                    "name": c.topic,
                    "type": c.msgtype,
                    "serialization_format": "cdr",
                    "offered_qos_profiles": dump_qos_v9(
                        list(c.ext.offered_qos_profiles)
                        if isinstance(c.ext, ConnectionExtRosbag2)
                        else []
                    ),
                    "type_description_hash": c.digest
                    or (store.hash_rihs01(c.msgtype) if c.msgtype in store.types else ""),
                },
                "message_count": c.msgcount,
            }
            for c in conns
        ],
        "compression_format": "",
        "compression_mode": "",
        "files": [
            {
                "path": file.name,
                "starting_time": {"nanoseconds_since_epoch": start if count else 0},
                "duration": {"nanoseconds": duration},
                "message_count": count,
            }
        ],
        "custom_data": None,
        "ros_distro": "rosbags",
    }
    (path / "metadata.yaml").write_text(
        yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False)
    )
    lost = f", {dropped} bytes of an unfinished chunk dropped" if dropped else ""
    return (
        f"bag {path} had no metadata.yaml (recorder killed?): reindexed {count} messages "
        f"on {len(conns)} topics{lost}"
    )


RACE_S = 2e-4
"""Two topics' messages logged within this long (s) of an episode summary may sit on either side
of it (the recorder writes what arrived at once in subscription order); a count one off at a
boundary is accepted only within it."""


def open_bag(path: str | os.PathLike) -> Path:
    """``path`` checked to exist; a bag without ``metadata.yaml`` (its recorder was killed) is
    first reindexed (:func:`~learned_control.data.bags.reindex`), with a one-line notice on
    stderr."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"no bag at {path}")
    if path.is_dir():
        notice = reindex(path)
        if notice:
            print(notice, file=sys.stderr)
    return path


def summary_slices(
    times: np.ndarray, summary_times: Sequence[int], lengths: Sequence[int], label: str = "messages"
) -> list[tuple[int, int] | str]:
    """Per episode summary, the ``[start, stop)`` range of one topic's messages, or why none.

    Episode ``k`` takes the next ``lengths[k]`` messages, checked against the log times: the
    messages logged up to summary ``k`` must end where the count says, one off only for a message
    logged within :data:`RACE_S` of the summary. Else the episode gets a reason and the next one
    starts after the messages logged up to summary ``k``: a recording missing an episode's first
    messages (a recorder that joined late) loses that episode, never shifts the rest.

    Args:
        times: the topic's log times (ns), ascending.
        summary_times: each summary's log time (ns), ascending.
        lengths: each summary's episode length (steps).
        label: what the messages are, for the reason (``"3 {label} for 5 steps"``).
    """

    def near(i: int, tau: int) -> bool:
        return 0 <= i < len(times) and abs(int(times[i]) - tau) <= RACE_S * 1e9

    out: list[tuple[int, int] | str] = []
    cursor, prev = 0, None
    for tau, steps in zip(summary_times, lengths, strict=True):
        window_end = int(np.searchsorted(times, tau, side="right"))
        if prev is not None:
            window_start = int(np.searchsorted(times, prev, side="right"))
            if cursor != window_start and not (
                abs(cursor - window_start) == 1 and near(min(cursor, window_start), prev)
            ):
                cursor = window_start
        stop = cursor + steps
        if stop <= len(times) and (
            stop == window_end or (abs(stop - window_end) == 1 and near(min(stop, window_end), tau))
        ):
            out.append((cursor, stop))
            cursor = stop
        else:
            out.append(f"{window_end - cursor} {label} for {steps} steps")
            cursor = window_end
        prev = tau
    return out


def _max_steps(task: Task | None) -> int | None:
    """The time limit of ``task``'s env (its env kwargs included); ``None``: no task or none."""
    return None if task is None else task.max_episode_steps


def bag_to_episodes(
    path: str | os.PathLike,
    task: Task | None = None,
    max_episode_steps: int | None = None,
    notes: list[str] | None = None,
) -> list[Episode]:
    """Episodes from a bag recorded off the bridge, paired per :mod:`topics`' rule.

    A bag without ``metadata.yaml`` (its recorder was killed) is first reindexed
    (:func:`reindex`), with a one-line notice on stderr.

    Per topic the messages are taken in log order; episode ``k`` (the ``k``-th ``episode``
    summary, of length ``T``) takes the next ``T`` observations, ``applied_command`` messages and
    rewards (and ``expert_command`` labels, in a bag that has any), and its terminal observation
    from the summary, each checked per episode against the log times (:func:`summary_slices`): an
    episode whose messages do not pair (a recording that lost some) is dropped with its reason,
    the next ones are re-aligned, nothing is shifted. An
    episode cut before its summary (a bag stopped mid-episode) is dropped. Without a termination
    flag on the wire, an episode whose length equals the time limit counts as truncated, a
    shorter one as terminated.

    Args:
        path: the bag folder.
        task: when given, the observation size is checked and its time limit is read from the
            Gymnasium registry.
        max_episode_steps: the time limit (overrides the task's); ``None`` and no task: every
            episode counts as truncated.
        notes: when given, gets one line per episode dropped (else they go to stderr).

    Raises:
        DatasetError: no such bag, an unreadable one, or no episode that pairs (each reason
            named).
    """
    from rosbags.rosbag2 import Reader

    path = open_bag(path)
    store = typestore()
    wanted = {
        topics.OBSERVATION,
        topics.APPLIED_COMMAND,
        topics.EXPERT_COMMAND,
        topics.REWARD,
        topics.EPISODE,
    }
    streams: dict[str, list[np.ndarray]] = defaultdict(list)  # per topic
    times: dict[str, list[int]] = defaultdict(list)
    try:
        with Reader(path) as reader:
            conns = [c for c in reader.connections if c.topic.lstrip("/").split("/")[-1] in wanted]
            for conn, stamp, raw in reader.messages(connections=conns):
                msg = store.deserialize_cdr(raw, conn.msgtype)
                name = conn.topic.lstrip("/").split("/")[-1]
                streams[name].append(np.asarray(msg.data, dtype=np.float64))
                times[name].append(stamp)
    except Exception as err:  # rosbags raises ReaderError and storage errors of several kinds
        raise DatasetError(f"cannot read bag {path}: {err}") from err
    limit = max_episode_steps if max_episode_steps is not None else _max_steps(task)
    summaries = streams[topics.EPISODE]
    if not summaries:
        raise DatasetError(f"bag {path} holds no complete episode (no {topics.EPISODE!r} summary)")
    n_fields = len(topics.EPISODE_FIELDS)
    lengths = [int(s[2]) for s in summaries]
    paired = (topics.OBSERVATION, topics.APPLIED_COMMAND, topics.REWARD)
    slices = {
        name: summary_slices(
            np.array(times[name], dtype=np.int64),
            times[topics.EPISODE],
            lengths,
            f"{name!r} messages",
        )
        for name in (*paired, topics.EXPERT_COMMAND)
    }
    # a bag with expert labels needs them for every step: an episode missing some is dropped
    labelled = (*paired, topics.EXPERT_COMMAND) if streams[topics.EXPERT_COMMAND] else paired
    episodes, dropped = [], []
    for k, (summary, steps) in enumerate(zip(summaries, lengths, strict=True)):
        bad = [r for n in labelled if isinstance(r := slices[n][k], str)]
        if bad:
            dropped.append(f"episode {k}: {', '.join(bad)}")
            continue
        ok = {n: r for n in slices if not isinstance(r := slices[n][k], str)}
        obs_a, obs_b = ok[topics.OBSERVATION]
        act_a, act_b = ok[topics.APPLIED_COMMAND]
        rew_a, rew_b = ok[topics.REWARD]
        terminal = summary[n_fields:]
        obs = np.stack(streams[topics.OBSERVATION][obs_a:obs_b] + [terminal])
        if task is not None and obs.shape[1] != task.obs_dim:
            raise DatasetError(
                f"bag {path} has observations of size {obs.shape[1]}; task "
                f"{task.name} needs {task.obs_dim}"
            )
        expert = ok.get(topics.EXPERT_COMMAND)
        truncated = limit is None or steps >= limit
        done = np.zeros(steps, dtype=bool)
        done[-1] = True
        seed = None if np.isnan(summary[4]) else int(summary[4])
        episodes.append(
            Episode(
                observations=obs,
                actions=np.stack(streams[topics.APPLIED_COMMAND][act_a:act_b]),
                rewards=np.stack(streams[topics.REWARD][rew_a:rew_b]),
                terminations=done & (not truncated),
                truncations=done & truncated,
                seed=seed,
                expert_actions=(
                    None
                    if expert is None
                    else np.stack(streams[topics.EXPERT_COMMAND][expert[0] : expert[1]])
                ),
            )
        )
    if not episodes:
        raise DatasetError(f"bag {path}: no episode pairs: {'; '.join(dropped)}")
    lines = [f"bag {path}: {line}: dropped" for line in dropped]
    if notes is None:
        for line in lines:
            print(line, file=sys.stderr)
    else:
        notes += lines
    return episodes
