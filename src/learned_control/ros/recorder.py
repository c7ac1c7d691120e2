"""recorder node: topics into a rosbag2 bag (rosbags writer, raw CDR as received, no re-encoding).

Parameters (see :class:`RecorderConfig`): ``bag``, ``storage``, ``mode``, ``joint_states``,
``topics``, ``spec_file``, ``wait_for``, ``flush_interval``. By default it records the bridge's
topics (:data:`~learned_control.topics.RECORDED_TOPICS`: observation, command, applied_command,
expert_command, reward, episode, /joint_states) and, with a ``spec_file``, the spec's sources
(joint states, poses, odometry, goal), its command topic and ``assembled_observation``.

Every ``flush_interval`` seconds the bag is made to survive a SIGKILL (:meth:`BagWriter.flush`:
an mcap chunk closed and written, a sqlite3 commit); a killed recorder's bag is reindexed by
``bag2minari``/``bag-reindex``. On SIGINT/SIGTERM it first writes what had already arrived, then
closes the bag (metadata written), so a cut run stays readable and keeps its last steps. Once a
second it reports on ``/diagnostics`` the messages written and the publishers matched per topic
(WARN while a bridge topic has no publisher), so rqt shows whether the recording is live.

With ``wait_for`` (``up --record`` gives ``command``), the subscriptions to the bridge's
observation, applied_command, reward and episode are made only once each ``wait_for`` topic has
matched a publisher: a bridge with ``wait_for_recorder`` starts its first episode once it sees
those readers, so it never steps before the controller's command writer reaches the recorder
(discovery runs per pair of nodes; the bridge cannot see that pair).
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription

from .. import topics
from ..data.bags import FLUSH_INTERVAL_S, STORAGES, BagWriter, typestore
from ..errors import ConfigError, DatasetError, SpecError
from ..runtime.diagnostics import WARN, Status
from ..specs import load_specs
from . import qos
from .node_utils import declare_config, publish_diagnostics, read_config, run_node
from .robot_msgs import MSG_TYPES

__all__ = ["RecorderConfig", "Recorder", "main"]


LATCHED_RECORDING = QoSProfile(
    depth=qos.RECORDING.depth,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
"""The recorder's lockstep observation subscription: deep, reliable, transient-local."""

BEST_EFFORT_RECORDING = QoSProfile(
    depth=qos.RECORDING.depth,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
"""The recorder's subscriptions to sensor topics: best effort (matches any publisher), as deep as
the reliable ones, so a burst that arrives while the recorder writes is kept, not dropped."""


@dataclass
class RecorderConfig:
    """Recorder parameters.

    Attributes:
        bag: folder of the new bag; must not exist.
        storage: rosbag2 storage plugin, sqlite3 or mcap.
        mode: the bridge's mode, lockstep (observation reliable) or realtime (best effort).
        joint_states: also record /joint_states (default set only).
        topics: what to record, each ``name`` or ``name:pkg/msg/Type`` (a name of the default
            set needs no type); empty: the default set.
        spec_file: a robot spec file; its sources, command topic and assembled_observation
            join the default set (and give their types to ``topics``).
        wait_for: topics whose publishers must match before the bridge's topics are subscribed.
        flush_interval: seconds between flushes; a SIGKILL loses at most about this much.
        wait_timeout: the longest ``wait_for`` is waited on (s), then a warning.
    """

    bag: str = ""
    storage: str = "sqlite3"
    mode: str = "lockstep"
    joint_states: bool = True
    topics: list[str] = field(default_factory=list)
    spec_file: str = ""
    wait_for: list[str] = field(default_factory=list)
    flush_interval: float = field(default=FLUSH_INTERVAL_S, metadata={"range": (0.01, 10.0)})
    wait_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.bag:
            raise ConfigError("recorder parameter 'bag' is empty; give the path of a new bag")
        if self.storage not in STORAGES:
            raise ConfigError(
                f"recorder parameter 'storage' is {self.storage!r}; expected one of {STORAGES}"
            )
        if self.mode not in ("lockstep", "realtime"):
            raise ConfigError(
                f"recorder parameter 'mode' is {self.mode!r}; expected lockstep or realtime"
            )
        # a ROS list parameter left empty arrives untyped
        self.topics, self.wait_for = list(self.topics or []), list(self.wait_for or [])
        if not 0 < self.flush_interval <= 10:
            raise ConfigError(
                f"recorder parameter 'flush_interval' is {self.flush_interval}; expected (0, 10] s"
            )


def _message_class(msgtype: str) -> type:
    """``std_msgs/msg/Float64`` -> the rclpy message class; ConfigError for a type that is not
    installed or that the bag writer's type store lacks."""
    try:
        package, kind, name = msgtype.split("/")
        cls = getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ValueError, ImportError, AttributeError):
        cls = None
    if cls is None or msgtype not in typestore().types:
        raise ConfigError(
            f"recorder: unknown message type {msgtype!r}; give pkg/msg/Type of a ROS 2 Jazzy "
            "message"
        )
    return cls


def _type_name(cls: type) -> str:
    """The rclpy message class -> ``pkg/msg/Type``."""
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


def default_topics(config: RecorderConfig) -> tuple[dict[str, str], set[str]]:
    """``({topic: type}, best-effort topics)``: the bridge's topics and, with a spec file, its
    sources (read best-effort, as the robot sends them), command topic and
    ``assembled_observation``."""
    wanted = dict(topics.RECORDED_TOPICS)
    best_effort = {topics.JOINT_STATES}
    if config.spec_file:
        try:
            specs = load_specs(config.spec_file)
        except SpecError as err:
            raise ConfigError(f"recorder parameter 'spec_file': {err}") from err
        for src in specs.observation.sources:
            if src.topic:
                wanted[src.topic] = _type_name(MSG_TYPES[src.type])
                best_effort.add(src.topic)
        command = "trajectory_msgs" if specs.command.type == "JointTrajectory" else "std_msgs"
        wanted[specs.command.topic] = f"{command}/msg/{specs.command.type}"
        wanted[topics.ASSEMBLED_OBSERVATION] = "std_msgs/msg/Float64MultiArray"
    return wanted, best_effort


def recorded_topics(config: RecorderConfig) -> tuple[dict[str, str], set[str]]:
    """``({topic: type}, best-effort topics)`` the recorder records: ``config.topics`` (types
    from the default set or given as ``name:type``; a topic outside the default set is read
    best-effort, which matches any publisher), else the default set."""
    known, best_effort = default_topics(config)
    if not config.topics:
        if not config.joint_states:
            known.pop(topics.JOINT_STATES)
        return known, best_effort
    wanted = {}
    for entry in config.topics:
        name, _, msgtype = entry.partition(":")
        if not msgtype and name not in known:
            raise ConfigError(
                f"recorder parameter 'topics': no type known for {name!r}; give "
                f"'{name}:pkg/msg/Type' (known: {sorted(known)})"
            )
        if msgtype and name not in known:
            best_effort.add(name)
        wanted[name] = msgtype or known[name]
    return wanted, best_effort


class Recorder(Node):
    """Subscribes with ``raw=True`` and writes the CDR bytes with the receive time (ns)."""

    def __init__(self) -> None:
        super().__init__("recorder")
        declare_config(self, RecorderConfig)
        self.config = read_config(self, RecorderConfig)
        wanted, best_effort = recorded_topics(self.config)
        for msgtype in wanted.values():
            _message_class(msgtype)
        resolved = {self.resolve_topic_name(t): msgtype for t, msgtype in wanted.items()}
        try:
            self.bag = BagWriter(self.config.bag, self.config.storage, resolved).__enter__()
        except DatasetError as err:
            raise ConfigError(f"recorder parameter 'bag': {err}") from err
        self.counts = dict.fromkeys(resolved, 0)
        self._profiles = {self.resolve_topic_name(t): BEST_EFFORT_RECORDING for t in best_effort}
        # realtime: best effort; lockstep: latched like the bridge's, so a recorder that
        # matches late still gets the observation the bridge is waiting on
        self._profiles[self.resolve_topic_name(topics.OBSERVATION)] = (
            BEST_EFFORT_RECORDING if self.config.mode == "realtime" else LATCHED_RECORDING
        )
        self._bridge_topics = [
            name
            for name in (
                self.resolve_topic_name(t)
                for t in (topics.OBSERVATION, topics.APPLIED_COMMAND, topics.REWARD, topics.EPISODE)
            )
            if name in resolved
        ]
        self._awaited = [self.resolve_topic_name(t) for t in self.config.wait_for]
        if not set(self._awaited) <= set(resolved):
            raise ConfigError(
                f"recorder parameter 'wait_for': {self.config.wait_for} are not all recorded "
                f"({sorted(resolved)})"
            )
        held = set(self._bridge_topics) if self._awaited else set()
        self._subs: dict[str, Subscription] = {}
        self._subscribe([name for name in resolved if name not in held])
        self._held = [name for name in resolved if name in held]
        self._wait_start = time.monotonic()
        self._wait_timer = self.create_timer(0.02, self._release_held) if self._held else None
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, qos.RELIABLE)
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics)
        self._flush_timer = self.create_timer(self.config.flush_interval, self.bag.flush)
        self.get_logger().info(
            f"recording {sorted(resolved)} into {self.config.bag} ({self.config.storage}, "
            f"flushed every {self.config.flush_interval} s)"
            + (f"; the bridge's topics once {self._awaited} matched" if self._held else "")
        )

    def _subscribe(self, names: list[str]) -> None:
        """Subscribe (raw) to ``names``, each with its profile (deep reliable by default)."""
        for name in names:
            self._subs[name] = self.create_subscription(
                _message_class(self.bag.topic_types[name]),
                name,
                self._writer(name),
                self._profiles.get(name, qos.RECORDING),
                raw=True,
            )

    def _release_held(self) -> None:
        """Subscribe to the held bridge topics once every ``wait_for`` topic matched a
        publisher (or after ``wait_timeout``, with a warning). A tick the executor had queued
        before the timer was destroyed finds nothing left to do."""
        if self._wait_timer is None:
            return
        unmatched = [name for name in self._awaited if self._subs[name].get_publisher_count() < 1]
        waited = time.monotonic() - self._wait_start
        if unmatched and waited < self.config.wait_timeout:
            return
        if unmatched:
            self.get_logger().warn(
                f"no publisher of {unmatched} within {self.config.wait_timeout} s: "
                "recording the bridge's topics anyway"
            )
        else:
            self.get_logger().info(
                f"{self._awaited} matched after {waited:.2f} s: subscribing to {self._held}"
            )
        self.destroy_timer(self._wait_timer)
        self._wait_timer = None
        self._subscribe(self._held)
        self._held = []

    def _writer(self, name: str):
        def write(raw: bytes) -> None:
            self.bag.write_raw(name, self.get_clock().now().nanoseconds, raw)
            self.counts[name] += 1

        return write

    def _publish_diagnostics(self) -> None:
        """Per topic ``written/<topic>`` and ``publishers/<topic>`` (matched publishers)."""
        matched = {name: sub.get_publisher_count() for name, sub in self._subs.items()}
        missing = [name for name in self._bridge_topics if matched.get(name, 0) == 0]
        status = Status(message=f"recording into {self.config.bag}")
        status.update({f"written/{name}": n for name, n in self.counts.items()})
        status.update({f"publishers/{name}": n for name, n in matched.items()})
        if missing:
            status.summary(WARN, f"no publisher on {', '.join(missing)}")
        publish_diagnostics(self, self._diag_pub, {"recording": status})

    def drain(self, executor, quiet_s: float = 0.3, limit_s: float = 3.0) -> None:
        """On stop, before closing: write what already arrived or is in flight, until nothing
        new came for ``quiet_s`` (at most ``limit_s``), so the last steps before Ctrl-C are kept."""
        start = last_change = time.monotonic()
        written = sum(self.counts.values())
        while time.monotonic() - last_change < quiet_s and time.monotonic() - start < limit_s:
            executor.spin_once(timeout_sec=0.05)
            if sum(self.counts.values()) != written:
                written, last_change = sum(self.counts.values()), time.monotonic()

    def close(self) -> None:
        """Close the bag (metadata written), reporting what was recorded."""
        self.bag.close()
        self.get_logger().info(f"closed {self.config.bag}: {self.counts}")


def main(args: list[str] | None = None) -> int:
    return run_node(Recorder, args)


if __name__ == "__main__":
    raise SystemExit(main())
