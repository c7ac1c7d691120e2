"""recorder node: the bridge's topics into a rosbag2 bag (rosbags writer, raw CDR, no re-encoding).

Parameters (see :class:`RecorderConfig`): ``bag``, ``storage``, ``mode``, ``joint_states``.
On SIGINT/SIGTERM it first writes what had already arrived, then closes the bag (metadata
written), so a cut run stays readable and keeps its last steps. Once a
second it reports on ``/diagnostics`` the messages written and the publishers matched per topic
(WARN while a lockstep topic has no publisher), so rqt shows whether the recording is live.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from .. import topics
from ..data.bags import STORAGES, BagWriter
from ..errors import ConfigError, DatasetError
from ..runtime.diagnostics import WARN, Status
from . import qos
from .node_utils import declare_config, publish_diagnostics, read_config, run_node

__all__ = ["RecorderConfig", "Recorder", "main"]


LATCHED_RECORDING = QoSProfile(
    depth=qos.RECORDING.depth,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
"""The recorder's lockstep observation subscription: deep, reliable, transient-local."""


@dataclass
class RecorderConfig:
    """Recorder parameters.

    Attributes:
        bag: folder of the new bag; must not exist.
        storage: rosbag2 storage plugin, sqlite3 or mcap.
        mode: the bridge's mode, lockstep (observation reliable) or realtime (best effort).
        joint_states: also record /joint_states.
    """

    bag: str = ""
    storage: str = "sqlite3"
    mode: str = "lockstep"
    joint_states: bool = True

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


def _message_class(msgtype: str) -> type:
    """``std_msgs/msg/Float64`` -> the rclpy message class."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


class Recorder(Node):
    """Subscribes with ``raw=True`` and writes the CDR bytes with the receive time (ns)."""

    def __init__(self) -> None:
        super().__init__("recorder")
        declare_config(self, RecorderConfig)
        self.config = read_config(self, RecorderConfig)
        wanted = dict(topics.RECORDED_TOPICS)
        if not self.config.joint_states:
            wanted.pop(topics.JOINT_STATES)
        resolved = {self.resolve_topic_name(t): msgtype for t, msgtype in wanted.items()}
        try:
            self.bag = BagWriter(self.config.bag, self.config.storage, resolved).__enter__()
        except DatasetError as err:
            raise ConfigError(f"recorder parameter 'bag': {err}") from err
        self.counts = dict.fromkeys(resolved, 0)
        profiles = {
            self.resolve_topic_name(topics.JOINT_STATES): qos.SENSOR,
            # realtime: best effort; lockstep: latched like the bridge's, so a recorder
            # that matches late still gets the observation the bridge is waiting on
            self.resolve_topic_name(topics.OBSERVATION): qos.SENSOR
            if self.config.mode == "realtime"
            else LATCHED_RECORDING,
        }
        self._subs = {
            name: self.create_subscription(
                _message_class(msgtype),
                name,
                self._writer(name),
                profiles.get(name, qos.RECORDING),
                raw=True,
            )
            for name, msgtype in resolved.items()
        }
        self._bridge_topics = [
            self.resolve_topic_name(t)
            for t in (topics.OBSERVATION, topics.APPLIED_COMMAND, topics.REWARD, topics.EPISODE)
        ]
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, qos.RELIABLE)
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"recording {sorted(resolved)} into {self.config.bag} ({self.config.storage})"
        )

    def _writer(self, name: str):
        def write(raw: bytes) -> None:
            self.bag.write_raw(name, self.get_clock().now().nanoseconds, raw)
            self.counts[name] += 1

        return write

    def _publish_diagnostics(self) -> None:
        """Per topic ``written/<topic>`` and ``publishers/<topic>`` (matched publishers)."""
        matched = {name: sub.get_publisher_count() for name, sub in self._subs.items()}
        missing = [name for name in self._bridge_topics if matched[name] == 0]
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
