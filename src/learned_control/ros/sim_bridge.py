"""sim_bridge: a Gymnasium MuJoCo env as a managed ROS 2 robot.

Parameters: the fields of :class:`learned_control.runtime.bridge.BridgeConfig` (task, seed, mode,
rate_hz, command_timeout, on_timeout, auto_reset, reset_s, max_episodes, publish_clock, interface,
spec_file, wait_for_recorder, goal_frame) plus ``autostart`` and ``torch_threads``. Topics and
the pairing rule: :mod:`learned_control.topics`. With ``interface: ros2_control`` the bridge
publishes only what a ros2_control robot with mocap would (``/joint_states`` and the spec's
pose/odometry/goal topics, one stamp per step, republished while a lockstep step waits) and takes
commands on the spec's controller topic; ``applied_command``, ``reward`` and ``episode`` stay as
side topics.

Goal-conditioned tasks (FetchReach): the bridge owns the goal, as in simulation it must. A
``goal`` (geometry_msgs/PointStamped in ``goal_frame``) becomes the env's goal from the next
observation on and for the following episodes (instead of the env's own random goals), so the
observation's ``desired_goal`` and the summary's ``success`` refer to the goal that was given; a
goal in another frame is rejected and counted on ``/diagnostics``.

Lifecycle: configure builds the env and the interfaces; activate starts the first episode and
stepping (in lockstep once a controller has matched, with ``wait_for_recorder`` once a recorder
has too, so both receive the first observation live rather than as a late joiner); deactivate
stops stepping (the simulated robot is held where it is); cleanup releases all.
"""

from __future__ import annotations

import math
import time

import mujoco
import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.lifecycle import State, TransitionCallbackReturn
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from .. import topics
from ..errors import ConfigError, SpecError
from ..runtime.bridge import BridgeConfig, SimSession, StepOutcome
from ..runtime.diagnostics import WARN, CounterCheck, Status
from ..runtime.stats import LatencyStats
from ..specs import GoalSample, RobotSpecs, command_to_action, driver_samples, specs_for
from . import qos
from .node_utils import ManagedNode, array_msg, run_node
from .robot_msgs import MSG_TYPES, command_values, msg_from_sample, to_stamp

__all__ = ["SimBridge", "main"]

MATCH_SETTLE_S = 0.3
"""Seconds the first episode waits once its writers matched the controller and the recorder:
discovery runs per endpoint, and a reader matches the writer only after the writer matched it; a
volatile sample sent in between never reaches that reader (a lockstep controller that missed the
first observation left the bridge waiting for its command)."""


def _nodes(infos) -> set[tuple[str, str]]:
    """``(namespace, name)`` of the nodes behind endpoint infos."""
    return {(info.node_namespace, info.node_name) for info in infos}


class SimBridge(ManagedNode[BridgeConfig]):
    """Publishes the env's state, applies checked commands, steps in lockstep or realtime."""

    status_name = "bridge"

    def __init__(self, node_name: str = "sim_bridge") -> None:
        super().__init__(node_name, BridgeConfig)
        self.session: SimSession | None = None  # set from configure until cleanup
        self.specs: RobotSpecs | None = None  # interface ros2_control: the robot specs
        self.active = False
        self.paused = False
        self.sim_time = 0.0
        self.latest: tuple[np.ndarray, float] | None = None  # realtime: (action, receive time)
        self.pending: np.ndarray | None = None  # lockstep: a command received while paused
        self.waiting_since = 0.0
        self._matched_since: float | None = None  # first episode: when all roles showed
        self._settled_since: float | None = None  # first episode: since when nothing is awaited
        # lockstep: the command writers (endpoint ids) seen while commands were coming
        self._command_writers: set[tuple[int, ...]] = set()
        self.resent = 0  # lockstep: observations sent again to a controller that joined late
        self.lockstep_waits = self.timeouts = self.ignored = self.goals = self.rejected_goals = 0
        self.steps = LatencyStats()
        self._own_pubs: dict = {}
        self.checks: list = []
        self._own_timers: list = []
        self._own_subs: list = []
        self._own_services: list = []

    # ---- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            config = self.load_config()
            self.session = SimSession(config)
            self.specs = (
                specs_for(config.task, config.spec_file, config.env_kwargs)
                if (config.interface == "ros2_control")
                else None
            )
        except (ConfigError, SpecError) as err:
            self.close()  # the env, if it was made
            return self.configure_failed(str(err))
        lockstep = config.mode == "lockstep"
        self._own_pubs = {
            "obs": self.create_publisher(
                Float64MultiArray, topics.OBSERVATION, qos.LOCKSTEP if lockstep else qos.SENSOR
            ),
            "applied": self.create_publisher(
                Float64MultiArray, topics.APPLIED_COMMAND, qos.RECORDING
            ),
            "reward": self.create_publisher(Float64, topics.REWARD, qos.RECORDING),
            "episode": self.create_publisher(Float64MultiArray, topics.EPISODE, qos.SUMMARY),
            "joints": self.create_publisher(JointState, topics.JOINT_STATES, qos.SENSOR),
        }
        if config.publish_clock:
            self._own_pubs["clock"] = self.create_publisher(Clock, topics.CLOCK, qos.RELIABLE)
        command_topic, command_type = topics.COMMAND, Float64MultiArray
        if self.specs is not None:  # a driver publishes only its topics, stamped per step
            for key in ("obs", "joints"):
                self.destroy_publisher(self._own_pubs.pop(key))
            # gymnasium types .unwrapped as the base Env; a task's MuJoCo env has model and data
            self._scratch = mujoco.MjData(self.session.env.unwrapped.model)  # type: ignore[attr-defined]
            self._driver_pubs = {
                src.name: self.create_publisher(MSG_TYPES[src.type], src.topic, qos.RECORDING)
                for src in self.specs.observation.sources
                if src.topic
            }
            self._own_pubs.update({f"driver:{k}": v for k, v in self._driver_pubs.items()})
            command_topic = self.specs.command.topic
            command_type = (
                JointTrajectory
                if self.specs.command.type == "JointTrajectory"
                else Float64MultiArray
            )
        self.published_stamp = -1.0
        self._own_subs = [
            self.create_subscription(command_type, command_topic, self._on_command, qos.RELIABLE)
        ]
        if self.session.task.goal_dim and self.specs is None:  # the bridge owns the goal
            self._own_subs.append(
                self.create_subscription(PointStamped, topics.GOAL, self._on_goal, qos.RELIABLE)
            )
        self._own_services = [
            self.create_service(Trigger, name, callback)
            for name, callback in (
                (topics.RESET, self._on_reset),
                (topics.PAUSE, self._on_pause),
                (topics.RESUME, self._on_resume),
            )
        ]
        self.checks = [CounterCheck(self._fault_counts)]
        self._own_timers = []
        self.labels = ",".join(self.session.task.labels)
        self.get_logger().info(
            f"configured {config.task} in {config.mode} mode at {self.session.rate_hz:.1f} Hz"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        assert self.session is not None
        self.active = True
        if self.session.config.mode == "realtime":
            self._own_timers.append(self.create_timer(1.0 / self.session.rate_hz, self._on_tick))
        else:
            self._own_timers.append(
                self.create_timer(self.session.config.command_timeout, self._check_lockstep_wait)
            )
        if self.session.observation is not None:  # re-activated mid-episode
            if self.session.config.mode == "lockstep":
                self.waiting_since = time.monotonic()
        elif self._awaited_roles():
            self.get_logger().info(
                f"waiting for {' and '.join(self._awaited_roles())} to match "
                "before the first episode"
            )
            self._matched_since = self._settled_since = None
            self._start_wait = self.create_timer(0.05, self._start_once_matched)
            self._own_timers.append(self._start_wait)
        else:
            self._start_episode()
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        for timer in self._own_timers:
            self.destroy_timer(timer)
        self._own_timers = []
        self.latest = None
        self.get_logger().info("deactivated: stepping stopped, robot held")
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Release timers, interfaces and the env (idempotent)."""
        self.active = False
        for timer in self._own_timers:
            self.destroy_timer(timer)
        for pub in self._own_pubs.values():
            self.destroy_publisher(pub)
        for sub in self._own_subs:
            self.destroy_subscription(sub)
        for srv in self._own_services:
            self.destroy_service(srv)
        self._own_timers, self._own_pubs, self._own_subs, self._own_services = [], {}, [], []
        if self.session is not None:
            self.session.close()
            self.session = None

    # ---- stepping --------------------------------------------------------------------------
    def _awaited_roles(self) -> list[str]:
        """Who the first episode waits for: in lockstep on the observation interface the
        controller, with ``wait_for_recorder`` (either interface) the recorder. Both then get
        every message live: a late joiner's transient-local sample is not reliably delivered
        (Fast DDS #3822), and a volatile one sent before its writer matched is never delivered."""
        assert self.session is not None
        lockstep = self.session.config.mode == "lockstep" and self.specs is None
        return (["a controller"] if lockstep else []) + (
            ["a recorder"] if self.session.config.wait_for_recorder else []
        )

    def _command_writer_ids(self) -> set[tuple[int, ...]]:
        """Endpoint ids of the writers of the command topic (a SIGKILLed node's stay listed
        until its lease runs out: a new one is told apart by its id, not its name)."""
        return {
            tuple(info.endpoint_gid)
            for info in self.get_publishers_info_by_topic(self._own_subs[0].topic_name)
        }

    def _controllers(self) -> set[tuple[str, str]]:
        """``(namespace, name)`` of the nodes that read ``observation`` and write ``command``."""

        return _nodes(
            self.get_subscriptions_info_by_topic(self._own_pubs["obs"].topic_name)
        ) & _nodes(self.get_publishers_info_by_topic(self._own_subs[0].topic_name))

    def _unmatched(self) -> list[str]:
        """What the first episode still waits for, by name; empty once a controller (a node
        reading ``observation`` and writing ``command``) and a recorder (a node reading every
        side topic: ``applied_command``, ``reward``, ``episode`` and, on the observation
        interface, ``observation``; or, on the ros2_control interface, every topic of the
        robot's) show in the graph and each of those topics' writers matched
        every reader the graph shows. Discovery runs per endpoint: a reader that matched the
        writer says nothing of the writer's side, so the writers' own counts decide. A reader
        that never matches (incompatible QoS) is waited on for 2 s."""

        side = [key for key in ("obs", "applied", "reward", "episode") if key in self._own_pubs]
        driver = [key for key in self._own_pubs if key.startswith("driver:")]
        pubs = {key: self._own_pubs[key] for key in side + driver}
        infos = {
            key: self.get_subscriptions_info_by_topic(pub.topic_name) for key, pub in pubs.items()
        }
        readers = {key: _nodes(found) for key, found in infos.items()}
        missing = []
        if "a controller" in self._awaited_roles() and not self._controllers():
            missing.append("a controller")
        # a recorder reads every side topic, or (a driver) every topic of the robot's
        recorded = [g for g in (side, driver) if g and set.intersection(*(readers[k] for k in g))]
        if "a recorder" in self._awaited_roles() and not recorded:
            missing.append("a recorder")
        pubs = {key: pubs[key] for key in side + (driver if driver in recorded else [])}
        if missing:
            self._matched_since = None
            return missing
        self._matched_since = self._matched_since or time.monotonic()
        unmatched = [
            pub.topic_name
            for key, pub in pubs.items()  # endpoints, not nodes
            if pub.get_subscription_count() < len(infos[key])
        ]
        if unmatched and time.monotonic() - self._matched_since > 2.0:
            self.get_logger().warn(
                f"starting although readers of {unmatched} did not match "
                "within 2 s (incompatible QoS?)"
            )
            return []
        return unmatched

    def _start_once_matched(self) -> None:
        """Timer before the first episode: start it once nothing has been awaited for
        ``MATCH_SETTLE_S`` (the readers' own side of each match, which the bridge cannot see)."""
        assert self.session is not None
        if self.session.observation is not None:
            return
        if self._unmatched():
            self._settled_since = None
            return
        self._settled_since = self._settled_since or time.monotonic()
        if time.monotonic() - self._settled_since >= MATCH_SETTLE_S:
            self._own_timers.remove(self._start_wait)
            self.destroy_timer(self._start_wait)
            self.get_logger().info(f"{' and '.join(self._awaited_roles())} matched: starting")
            self._start_episode()

    def _start_episode(self) -> None:
        assert self.session is not None
        obs = self.session.reset()
        if self.published_stamp == self.sim_time:  # a reset mid-step: a new stamp for a new state
            self.sim_time += self.session.dt
        if self.session.config.mode == "lockstep" and self.specs is None:
            self._command_writers = self._command_writer_ids()  # who will answer, not new
        self._publish_state(obs)
        self.waiting_since = time.monotonic()

    def _publish_state(self, obs: np.ndarray) -> None:
        """The observation the controller answers and the matching joint states, or (interface
        ros2_control) the driver's joint states, poses and goals, all stamped with the step time."""
        assert self.session is not None
        self.published_stamp = self.sim_time
        if self.specs is not None:
            unwrapped = self.session.env.unwrapped
            samples = driver_samples(
                self.specs.observation,
                # gymnasium types .unwrapped as the base Env; a task's MuJoCo env has model and data
                unwrapped.model,  # type: ignore[attr-defined]
                unwrapped.data,  # type: ignore[attr-defined]
                self.sim_time,
                self._scratch,
            )
            for src in self.specs.observation.sources:
                if src.name in self._driver_pubs:
                    sample = samples.get(src.name)
                    if sample is None:  # a goal held by parameter: the task's fixed goal
                        if src.value is None:
                            raise SpecError(
                                f"simulator: goal {src.name!r} has neither sim_joints nor a value"
                            )
                        sample = GoalSample(src.value, self.sim_time)
                    self._driver_pubs[src.name].publish(msg_from_sample(src, sample))
            return
        self._own_pubs["obs"].publish(array_msg(obs, self.labels))
        joints = self.session.joint_state()
        msg = JointState(
            name=joints.names,
            position=joints.position.tolist(),
            velocity=joints.velocity.tolist(),
            effort=joints.effort.tolist(),
        )
        msg.header.stamp = to_stamp(self.sim_time)
        self._own_pubs["joints"].publish(msg)

    def _step(self, action: np.ndarray) -> None:
        """One env step. Mid-episode the next observation goes out first, so the controller
        computes while the bridge publishes what the recorder and monitors need."""
        assert self.session is not None
        start = time.perf_counter()
        out: StepOutcome = self.session.step(action)
        self.sim_time += self.session.dt
        if not out.done:
            self._publish_state(out.observation)
            self.waiting_since = time.monotonic()
        if "clock" in self._own_pubs:
            self._own_pubs["clock"].publish(Clock(clock=to_stamp(self.sim_time)))
        self._own_pubs["applied"].publish(array_msg(action, "applied_command"))
        self._own_pubs["reward"].publish(Float64(data=out.reward))
        if out.done:
            summary = self.session.episode_summary(out.success)
            self._own_pubs["episode"].publish(
                array_msg(
                    summary + out.observation.tolist(),
                    ",".join(topics.EPISODE_FIELDS) + ",terminal_observation",
                )
            )
            self.get_logger().info(
                f"episode {summary[0]:.0f}: return {summary[1]:.2f}, length {summary[2]:.0f}"
            )
            if self.specs is not None and self.session.config.reset_s > 0:
                self._publish_state(out.observation)  # a driver shows where the episode ended
            if self.session.config.auto_reset and not self.session.finished:
                if self.session.config.reset_s > 0:  # the robot resets: nothing until then
                    self.session.observation = None
                    self._reset_timer = self.create_timer(
                        self.session.config.reset_s, self._end_reset
                    )
                    self._own_timers.append(self._reset_timer)
                else:
                    self._start_episode()
        self.steps.add(time.perf_counter() - start, time.monotonic())

    def _end_reset(self) -> None:
        """One-shot timer after ``reset_s``: start the next episode."""
        self._own_timers.remove(self._reset_timer)
        self.destroy_timer(self._reset_timer)
        if self.active:
            self._start_episode()

    def _on_command(self, msg: Float64MultiArray | JointTrajectory) -> None:
        if (
            not self.active
            or self.session is None
            or self.session.finished
            or self.session.observation is None
        ):  # stopped, or before the first episode
            self.ignored += 1
            return
        if self.specs is None:
            values = msg.data
        else:  # controller joint order (or named joints) -> policy order
            try:
                values = command_to_action(
                    self.specs.command, *command_values(msg, self.specs.command.interface)
                )
            except SpecError as err:
                self.session.gate.rejected_size += 1
                self.get_logger().warn(str(err), throttle_duration_sec=1.0)
                return
        action, reason = self.session.gate.check(values)
        if action is None:
            self.get_logger().warn(reason, throttle_duration_sec=1.0)
            return
        if self.session.config.mode == "realtime":
            self.latest = (action, time.monotonic())
        elif self.paused:
            self.pending = action
        else:
            self._step(action)

    def _on_goal(self, msg: PointStamped) -> None:
        """A goal in ``goal_frame`` becomes the env's goal from the next observation on (the one
        the controller is answering keeps the old goal: lockstep never answers twice)."""
        assert self.session is not None
        frame = self.session.config.goal_frame
        if msg.header.frame_id != frame:
            self.rejected_goals += 1
            self.get_logger().warn(
                f"goal in frame {msg.header.frame_id!r} rejected: goals are "
                f"taken in {frame!r} (there is no tf here)",
                throttle_duration_sec=1.0,
            )
            return
        point = (msg.point.x, msg.point.y, msg.point.z)
        try:
            self.session.set_goal(point[: self.session.task.goal_dim])
        except ConfigError as err:
            self.rejected_goals += 1
            self.get_logger().warn(str(err), throttle_duration_sec=1.0)
            return
        self.goals += 1
        self.get_logger().info(f"goal {np.round(point, 4).tolist()} in {frame!r}")

    def _on_tick(self) -> None:
        """Realtime: one step with the newest command, or the timeout policy when it is stale
        (nothing before the first episode, which may wait for a recorder)."""
        assert self.session is not None
        if self.paused or self.session.finished or self.session.observation is None:
            return
        if self.latest is not None and (
            time.monotonic() - self.latest[1] <= self.session.config.command_timeout
        ):
            self._step(self.latest[0])
            return
        self.timeouts += 1
        self.get_logger().warn(
            f"no command for {self.session.config.command_timeout} s: "
            f"applying on_timeout={self.session.config.on_timeout}",
            throttle_duration_sec=2.0,
        )
        self._step(self.session.timeout_action())

    def _check_lockstep_wait(self) -> None:
        """Lockstep never steps without a command: report the wait instead. A command writer that
        appears during the wait (a respawned controller) reads live observations only, so the one
        the bridge is waiting on is sent to it again once the observation writer has matched it
        (the controllers that were there had it already)."""
        assert self.session is not None
        waiting = (
            self.active
            and self.session.observation is not None  # started
            and not self.paused
            and not self.session.finished
        )
        waited = time.monotonic() - self.waiting_since
        if self.specs is None:
            writers = self._command_writer_ids()
            obs = self._own_pubs["obs"]
            matched = obs.get_subscription_count() >= len(
                self.get_subscriptions_info_by_topic(obs.topic_name)
            )
            stalled = waiting and waited > self.session.config.command_timeout
            if stalled and writers - self._command_writers and matched:
                assert self.session.observation is not None  # waiting: started
                self._publish_state(self.session.observation)
                self.resent += 1
                self.get_logger().info(
                    "a new controller joined: the observation it must answer sent again"
                )
            if not stalled or matched:
                self._command_writers = writers
        if waiting and waited > self.session.config.command_timeout:
            self.lockstep_waits += 1
            self.get_logger().warn(
                f"lockstep: waiting {waited:.1f} s for a command", throttle_duration_sec=5.0
            )
            if self.specs is not None:  # a driver keeps publishing its (held) state
                assert self.session.observation is not None  # waiting: started
                self._publish_state(self.session.observation)

    # ---- services --------------------------------------------------------------------------
    def _on_reset(self, request, response):
        if not self.active:
            response.success, response.message = False, "bridge is not active"
            return response
        self._start_episode()
        response.success = True
        response.message = f"episode {self.session.episode_index} started"
        return response

    def _on_pause(self, request, response):
        self.paused = True
        response.success, response.message = True, "paused"
        return response

    def _on_resume(self, request, response):
        self.paused = False
        if self.pending is not None:
            action, self.pending = self.pending, None
            self._step(action)
        self.waiting_since = time.monotonic()
        response.success, response.message = True, "resumed"
        return response

    # ---- diagnostics -----------------------------------------------------------------------
    def _fault_counts(self) -> dict[str, int]:
        """The counts that warn while they rise: rejected commands (and goals), command
        timeouts and lockstep waits."""
        assert self.session is not None
        counters = self.session.gate.counters()
        faults = {
            "rejected_size": counters["rejected_size"],
            "rejected_nonfinite": counters["rejected_nonfinite"],
            "rejected_overflow": counters["rejected_overflow"],
            "timeouts": self.timeouts,
            "lockstep_waits": self.lockstep_waits,
        }
        if self.session.task.goal_dim:
            faults["rejected_goals"] = self.rejected_goals
        return faults

    def diagnostics(self) -> dict[str, Status]:
        """The ``bridge`` status: lifecycle state, episode, step rate and counters; WARN while
        commands are rejected, time out or are waited for, while nothing publishes the command
        topic (a dead controller), and in realtime while the newest command is older than
        ``command_timeout`` (naming its age and the ``on_timeout`` applied)."""
        status = self.state_status()
        if self.session is None:
            return {self.status_name: status}
        if self.session.finished:
            status.message = "finished"
        elif self.active:
            status.message = "stepping"
        status.update(
            {
                "mode": self.session.config.mode,
                "active": self.active,
                "paused": self.paused,
                "episode": self.session.episode_index,
                "episodes_done": self.session.episodes_done,
                "step_rate_hz": self.steps.rate_hz(),
                "steps": self.steps.count,
                "step_p99_ms": self.steps.percentile_ms(99),
                **self.session.gate.counters(),
                "timeouts": self.timeouts,
                "lockstep_waits": self.lockstep_waits,
                "observations_resent": self.resent,
                "ignored_commands": self.ignored,
            }
        )
        if self.session.task.goal_dim:
            goal = self.session.goal
            status.update(
                {
                    "goal": "env's own" if goal is None else ",".join(f"{g:.4f}" for g in goal),
                    "goals": self.goals,
                    "rejected_goals": self.rejected_goals,
                }
            )
        command = self._own_subs[0] if self._own_subs else None
        if self.active and not self.session.finished and command is not None:
            if command.get_publisher_count() == 0:
                status.summary(WARN, f"no controller: nothing publishes {command.topic_name}")
            config = self.session.config
            age = math.inf if self.latest is None else time.monotonic() - self.latest[1]
            if config.mode == "realtime" and self.timeouts and age > config.command_timeout:
                status.summary(
                    WARN,
                    f"no command for {age:.1f} s (command_timeout {config.command_timeout:g} s): "
                    f"applying on_timeout={config.on_timeout}",
                )
        for check in self.checks:
            check.run(status)
        return {self.status_name: status}


def main(args: list[str] | None = None) -> int:
    return run_node(SimBridge, args)


if __name__ == "__main__":
    raise SystemExit(main())
