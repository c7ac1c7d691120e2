"""controller: publishes actions from a learned policy or a CEM-MPC planner, per observation or at
a fixed rate.

Parameters: the fields of :class:`learned_control.runtime.controller.ControllerConfig` (task,
checkpoint, expert, mode, rate_hz, max_obs_age, device, spec_file, configure_timeout, actor and the
planner's horizon, samples, elites, iterations, alpha, init_std, std_floor, warm_start, optimizer,
noise_beta, keep_elites, population_decay, temperature, particles, propagation, sample, reward,
seed, goal) plus ``autostart`` and ``torch_threads``. Subscribes
``observation``, ``episode`` (an episode summary resets the actor: a planner forgets its warm start,
as offline evaluation does) and ``model_updated``; publishes ``command`` and ``/diagnostics``;
service ``reload``. With an ``expert`` (DAgger) the expert also acts on every observation and its
action is published on ``expert_command`` (the recorder keeps it beside the applied one; the
learner's ``labels:=expert`` trains on it): in lockstep before the command, so that a bag logs
each label before the step it labels ends; in realtime after it, so labelling never delays the
robot.

``actor:=cem`` plans through a dynamics checkpoint. Diagnostics then carry a second status,
``planner``: plan time p50/p99, ``truncated_plans`` and ``plan_misses``. In realtime the planner
runs by default in a thread of its own (``plan_in_background``,
:class:`~learned_control.runtime.background_planner.BackgroundPlanner`): each observation starts the
next plan, a plan that lands sends its step for that moment at once, and every tick sends the
current plan's step for its moment (the sequence shifted by the periods since its observation; each
step of a plan once) without waiting, so a plan longer than the period delays no tick and one
shorter than it adds no period of delay; a plan older than ``max_plan_age`` means no command (a
``plan_miss``), and ``plan_age_ms`` says how old the one in use is. With
``plan_in_background:=false`` each tick plans, the control period as its deadline: CEM stops
refitting before an iteration that would overrun it and the mean refitted so far is published (at
least one iteration always runs, so a single iteration longer than the period is still late, and
counted). In lockstep plans always run
every iteration, which keeps the loop equal to the offline rollout, and the last observation that
came while the node was inactive is answered at activation (the bridge waits for exactly that one);
the first command after activation and after each episode goes out once the observation's publisher
has matched ``command`` (a volatile command sent before that would never arrive). A planner
parameter set while running rebuilds the planner from the running checkpoint (refused, old planner
kept, when it fails). Robot mode (parameter ``spec_file``): subscribes
``/joint_states`` and the spec's pose/odometry/goal topics (best-effort) instead of
``observation``, assembles the observation with the core
:class:`~learned_control.specs.ObservationAssembler` (also published on ``assembled_observation``
for checks and recording), and publishes the shaped command on the spec's controller topic; a
stale source stops commanding and is named on ``/diagnostics``. The goal comes from the spec's goal
topic (PointStamped, frame checked) or the ``goal`` parameter, settable while running (the newer
stands); with neither there is no command, said on ``/diagnostics``. Activation starts a new run:
samples and answered stamps from before are forgotten (a new driver's clock starts again).
Diagnostics also carry, per writer, the readers it has matched (``subscribers/<topic>``):
discovery runs per endpoint, so only the writer's own count says that a reader will receive what
it sends. Setting the ``checkpoint``
parameter swaps the model between ticks; a file that fails to load is refused and the old model
keeps running (the on-set validator only loads, a post-set callback runs what it loaded).
Loading never holds up control: in realtime the node spins a two-thread executor, and every path
that loads (parameter sets, ``reload``, ``model_updated``) runs in a callback group of its own
beside the control callbacks; the slot takes the new model between two actions
(:class:`~learned_control.runtime.controller.ModelSlot`). In lockstep the bridge waits for each
command anyway, and one thread (rclpy's EventsExecutor) answers faster.

Bad input (checked in :mod:`learned_control.runtime.inputs`): an observation, robot sample or
action of the wrong size, with NaN or inf, or beyond float32, a pose or goal in another frame,
means no command that tick, counted on ``/diagnostics``; ``max_rejected_in_a_row`` rejections
with no command between them deactivate the controller, the reason on ``/diagnostics``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import Executor
from rclpy.experimental import EventsExecutor
from rclpy.guard_condition import GuardCondition
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.timer import Timer
from rclpy.wait_for_message import wait_for_message
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from .. import topics
from ..actors import Actor, load_actor
from ..errors import ConfigError, LearnedControlError, SpecError
from ..planning.mpc import PLANNER_PARAMETERS
from ..runtime.background_planner import BackgroundPlanner
from ..runtime.controller import ControllerConfig, LoadedActor, ModelSlot
from ..runtime.diagnostics import (
    ERROR,
    WARN,
    CounterCheck,
    LatencyCheck,
    ModelCheck,
    RateCheck,
    Status,
)
from ..runtime.inputs import InputGuard, check_sample, check_vector
from ..runtime.stats import LatencyStats
from ..specs import (
    CommandShaper,
    GoalSample,
    ObservationAssembler,
    RobotSpecs,
    SourceSpec,
    specs_for,
)
from ..tasks import get_task
from . import qos
from .node_utils import ManagedNode, PoolExecutor, array_msg, run_node
from .robot_msgs import MSG_TYPES, command_msg, sample_from_msg, stamp_seconds

ASSEMBLED_OBSERVATION = topics.ASSEMBLED_OBSERVATION
"""Robot mode: the observation the controller assembled and acted on (Float64MultiArray)."""

READER_WAIT_S = 10.0
"""Lockstep: the longest a first command waits for its bridge's reader to match (s)."""

FIXED_AFTER_CONFIGURE = (
    "task",
    "mode",
    "device",
    "spec_file",
    "actor",
    "expert",
    "plan_in_background",
)
"""Parameters a set refuses once the node is configured."""

__all__ = ["Controller", "main"]


@dataclasses.dataclass(frozen=True)
class _PendingSwap:
    """A parameter set the validator accepted: its ``(name, value)`` pairs, the actor loaded for
    it, the config that runs with it and who asked (for the log)."""

    values: list[tuple[str, Any]]
    loaded: LoadedActor
    config: ControllerConfig
    origin: str


class Controller(ManagedNode[ControllerConfig]):
    """Runs a policy checkpoint, or CEM-MPC through a dynamics checkpoint, against the
    ``observation`` topic."""

    status_name = "control"

    def __init__(self, node_name: str = "controller") -> None:
        super().__init__(node_name, ControllerConfig)
        self.config: ControllerConfig | None = None  # set from configure on
        self.slot: ModelSlot | None = None  # set from configure on
        self.expert: Actor | None = None  # DAgger labeller
        self.expert_labels = 0
        self.active = False
        self.latest: tuple[np.ndarray, float] | None = None
        self.pending: np.ndarray | None = None  # lockstep: the observation that came while inactive
        self.confirm_reader = True  # lockstep: the next command waits for its bridge to read it
        self.held: tuple[object, float] | None = None  # lockstep: (command, since when)
        self._hold_timer: Timer | None = None
        self._tick_timer: Timer | None = None  # realtime: created at the first activation
        self._retired: list[Timer] = []  # cancelled on deactivate, destroyed outside their calls
        self._observation_topic = ""  # resolved at configure (sim interface)
        self.stale = 0
        self.guard = InputGuard()
        self.deactivated = ""  # why the controller deactivated itself; cleared on activation
        self.specs: RobotSpecs | None = None  # robot mode
        self.assembler: ObservationAssembler | None = None
        self.shaper: CommandShaper | None = None
        self.stale_sources: tuple[str, ...] = ()
        self.answered_stamp = -math.inf
        self._parameter_goal: str | None = None  # robot mode: the goal source set by parameter
        self.stats = LatencyStats()
        self.plan_stats = LatencyStats()
        self.truncated_plans = 0
        self.background: BackgroundPlanner | None = None  # realtime planner, plan_in_background
        self.plan_misses = 0  # ticks without a fresh enough background plan
        self._plan_landed: GuardCondition | None = None  # triggered by the background planner
        self.checks: list = []
        self.planner_checks: list = []
        self.command_pub: Publisher | None = None  # these three: from configure until cleanup
        self.assembled_pub: Publisher | None = None  # robot mode
        self.expert_pub: Publisher | None = None  # with an expert
        self._own_subs: list = []
        self._own_services: list = []
        self._own_timers: list = []
        self._pending: _PendingSwap | None = None  # loaded by the validator, run after the set
        # everything that loads a model runs in this group, beside the control callbacks
        self.loading = MutuallyExclusiveCallbackGroup()
        for srv in self.services:
            if srv.srv_name.rsplit("/", 1)[-1] in ("set_parameters", "set_parameters_atomically"):
                srv.callback_group = self.loading
                self.loading.add_entity(srv)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

    # ---- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.config = self.load_config()
        except ConfigError as err:
            return self.configure_failed(str(err))
        task = get_task(self.config.task, self.config.env_kwargs)
        self.slot = ModelSlot(task, self.config.device, self.config.planner(), self.config.seed)
        error = self.slot.swap(self.config.checkpoint)
        if not error and self.config.expert:
            try:
                self.expert = load_actor(self.config.expert, task, self.config.device)
            except LearnedControlError as err:
                error = f"expert {self.config.expert!r}: {err}"
        if error:
            return self._configure_failed(error)
        self.guard = InputGuard(self.config.max_rejected_in_a_row)
        self.rate_hz = self.config.rate_hz or 1.0 / task.dt
        self.stats = LatencyStats(deadline=1.0 / self.rate_hz)
        self.plan_stats = LatencyStats(deadline=1.0 / self.rate_hz)
        lockstep = self.config.mode == "lockstep"
        period_ms = 1e3 / self.rate_hz
        plan_limit_ms = period_ms  # a plan must fit the tick, or (background) its age limit
        if self.slot.planner is not None and not lockstep and self.config.plan_in_background:
            # a landed plan wakes the executor, which sends its step in the control callbacks
            self._plan_landed = self.create_guard_condition(self._on_plan_landed)
            self.background = BackgroundPlanner(
                self.slot.plan,
                1.0 / self.rate_hz,
                self.config.max_plan_age,
                self._plan_landed.trigger,
            )
            self.plan_stats = self.background.plan_stats
            plan_limit_ms = 1e3 * self.config.max_plan_age
        self.planner_checks = (
            [
                LatencyCheck(
                    self.plan_stats, warn_p99_ms=0.5 * plan_limit_ms, error_p99_ms=plan_limit_ms
                ),
                CounterCheck(
                    lambda: {
                        "truncated_plans": self.truncated_plans,
                        "plan_misses": self.plan_misses,
                    }
                ),
            ]
            if self.slot.planner is not None
            else []
        )
        self.checks = [
            RateCheck(self.stats, 0.0 if lockstep else self.rate_hz),
            LatencyCheck(self.stats, warn_p99_ms=0.5 * period_ms, error_p99_ms=period_ms),
            ModelCheck(self.slot),
            CounterCheck(
                lambda: {
                    "stale_skips": self.stale,
                    "rejected_inputs": self.guard.rejected_inputs,
                    "rejected_actions": self.guard.rejected_actions,
                }
            ),
        ]
        # created before the observation subscription: when a summary and the next episode's
        # first observation are both waiting, the executor takes the summary first
        self._own_subs = [
            self.create_subscription(
                String,
                topics.MODEL_UPDATED,
                self._on_model_updated,
                qos.LATCHED,
                callback_group=self.loading,
            ),
            self.create_subscription(
                Float64MultiArray, topics.EPISODE, self._on_episode_end, qos.RELIABLE
            ),
        ]
        if self.config.spec_file:
            error = self._configure_robot()
            if error:
                return self._configure_failed(error)
        else:
            self.command_pub = self.create_publisher(
                Float64MultiArray, topics.COMMAND, qos.RECORDING
            )
            self._own_subs.append(
                self.create_subscription(
                    Float64MultiArray,
                    topics.OBSERVATION,
                    self._on_observation,
                    qos.LOCKSTEP_ANSWER if lockstep else qos.SENSOR,
                )
            )
            self._observation_topic = self._own_subs[-1].topic_name
            if self.expert is not None:
                self.expert_pub = self.create_publisher(
                    Float64MultiArray, topics.EXPERT_COMMAND, qos.RECORDING
                )
        self._own_services = [
            self.create_service(
                Trigger, topics.RELOAD, self._on_reload, callback_group=self.loading
            )
        ]
        self.get_logger().info(
            f"configured {self.slot.identity} for {task.name} ({self.config.mode})"
        )
        return TransitionCallbackReturn.SUCCESS

    def _configure_failed(self, error: str) -> TransitionCallbackReturn:
        """Release what configure made and stay unconfigured, saying why."""
        self.close()
        self.slot = self.config = self.specs = self.expert = None
        return self.configure_failed(error)

    def _configure_robot(self) -> str:
        """Robot mode: load and check the spec against the robot; ``""`` or the error."""
        assert self.config is not None
        try:
            self.specs = specs_for(self.config.task, self.config.spec_file, self.config.env_kwargs)
            self.assembler = ObservationAssembler(self.specs.observation)
        except SpecError as err:
            return str(err)
        deadline = time.monotonic() + self.config.configure_timeout
        joint_topic = next(
            (s.topic for s in self.specs.observation.sources if s.type == "JointState" and s.topic),
            None,
        )
        names: list[str] = []
        if joint_topic is not None:
            ok, msg = wait_for_message(
                MSG_TYPES["JointState"],
                self,
                joint_topic,
                qos_profile=qos.SENSOR,
                time_to_wait=self.config.configure_timeout,
            )
            if not ok:
                return (
                    f"no {joint_topic} message within configure_timeout="
                    f"{self.config.configure_timeout} s"
                )
            names = list(msg.name)
        wanted = {s.topic for s in self.specs.observation.sources if s.topic}
        # the graph shows names as resolved: the node's namespace and remappings applied
        resolved = {self.resolve_topic_name(topic): topic for topic in wanted}
        while True:  # wait (bounded) for the graph to show the spec's topics
            shown = {name for name, _ in self.get_topic_names_and_types()}
            present = {topic for name, topic in resolved.items() if name in shown}
            if wanted <= present or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        try:
            self.assembler.check(names, present)
        except SpecError as err:
            return str(err)
        if self.config.goal:
            error = self._goal_error(self.config.goal)
            if error:
                return error
            self._set_goal(self.config.goal)
        self.shaper = CommandShaper(self.specs.command)
        command_type = (
            JointTrajectory if self.specs.command.type == "JointTrajectory" else Float64MultiArray
        )
        self.command_pub = self.create_publisher(
            command_type, self.specs.command.topic, qos.RECORDING
        )
        self.assembled_pub = self.create_publisher(
            Float64MultiArray, ASSEMBLED_OBSERVATION, qos.RECORDING
        )
        self._synced = [s.name for s in self.specs.observation.sources if s.topic]
        for src in self.specs.observation.sources:
            if src.topic:
                self._own_subs.append(
                    self.create_subscription(
                        MSG_TYPES[src.type],
                        src.topic,
                        functools.partial(self._on_source, src),
                        qos.SENSOR,
                    )
                )
        return ""

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        assert self.config is not None
        self.active = True
        self.confirm_reader = True
        self.deactivated = ""
        self.guard.commanded()  # a fresh start: no run of rejections
        self.stats.restart()  # the rate of this run, not of the inactive gap before it
        if self.background is not None:  # no plan from before this run
            self.background.clear()
        for timer in self._retired:
            self.destroy_timer(timer)
        self._retired = []
        if self.specs is not None:  # robot mode: a new run (the robot's clock may have restarted)
            self.assembler = ObservationAssembler(self.specs.observation)
            self.answered_stamp = -math.inf
            if self.config.goal:
                self._set_goal(self.config.goal)
        if self.config.mode == "realtime":
            if self._tick_timer is None:
                self._tick_timer = self.create_timer(1.0 / self.rate_hz, self._on_tick)
            else:  # the timer deactivation cancelled
                self._tick_timer.reset()
        elif self.held is not None:  # held when deactivated: the bridge still waits for it
            self.held = (self.held[0], time.monotonic())
            self._send_held()
        elif self.pending is not None:  # a lockstep bridge waits for exactly this answer
            obs, self.pending = self.pending, None
            self._act_and_publish(obs)
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False  # stop commanding: the bridge / robot applies its timeout policy
        if self._tick_timer is not None:
            self._tick_timer.cancel()
        for timer in self._own_timers:  # cancelled, not destroyed: one may be the caller
            timer.cancel()
        self._retired += self._own_timers
        self._own_timers = []
        self._hold_timer = None  # a held command stays held until activation
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Release timers and interfaces (idempotent)."""
        self.active = False
        for timer in self._own_timers + self._retired + [self._tick_timer]:
            if timer is not None:
                self.destroy_timer(timer)
        self._tick_timer = None
        if self.background is not None:
            self.background.close()
            self.background = None
        if self._plan_landed is not None:
            self.destroy_guard_condition(self._plan_landed)
            self._plan_landed = None
        for pub in (self.command_pub, self.assembled_pub, self.expert_pub):
            if pub is not None:
                self.destroy_publisher(pub)
        for sub in self._own_subs:
            self.destroy_subscription(sub)
        for srv in self._own_services:
            self.destroy_service(srv)
        self._own_timers, self._retired, self._own_subs, self._own_services = [], [], [], []
        self.command_pub = self.assembled_pub = self.expert_pub = None

    # ---- control ---------------------------------------------------------------------------
    def _reject(self, source: str, kind: str, reason: str) -> None:
        """Count a rejected input (no command this tick); at ``max_rejected_in_a_row`` in a row
        an active controller deactivates itself, saying why."""
        self.get_logger().warn(f"{reason}: not commanding", throttle_duration_sec=1.0)
        if self.guard.reject(source, kind, reason) and self.active:
            self.deactivated = (
                f"deactivated after {self.guard.in_a_row} rejected inputs in a row (last: {reason})"
            )
            self.get_logger().error(self.deactivated)
            self.trigger_deactivate()

    def _act(self, obs: np.ndarray, landed: bool = False) -> np.ndarray | None:
        """The actor's checked action (``None``: rejected and counted); a planner in realtime
        gives the background plan's (:meth:`_act_from_background`), or, planning in the tick,
        gets one control period as its deadline."""
        assert self.config is not None and self.slot is not None
        if self.background is not None:
            return self._act_from_background(landed)
        start = time.perf_counter()
        realtime = self.config.mode == "realtime"
        action, kind, reason = self.slot.checked_act(
            obs, start + 1.0 / self.rate_hz if realtime else None
        )
        if self.slot.planner is not None and kind != "error":
            self.plan_stats.add(time.perf_counter() - start, time.monotonic())
            iterations = self.slot.iterations_done
            assert iterations is not None  # a planner counts them
            self.truncated_plans += iterations < self.slot.planner.cem.iterations
        if action is None:
            self._reject("action", kind, reason)
        return action

    def _act_from_background(self, landed: bool) -> np.ndarray | None:
        """Realtime, planning in the background: the current plan's checked action for now (the
        planner got each observation as it came: from the observation topic's callback, in robot
        mode assembled at each source sample)."""
        assert self.background is not None and self.slot is not None
        action, kind, reason = self.background.action(time.monotonic(), tick=not landed)
        if kind == "given":  # this step went out already, or a newer plan sends its own
            return None
        if kind in ("planning", "stale_plan"):
            self.plan_misses += kind == "stale_plan"
            self.get_logger().warn(f"{reason}: not commanding", throttle_duration_sec=1.0)
            return None
        if action is not None:
            action, kind, reason = check_vector(action, self.slot.task.act_dim, "action")
        if action is None:
            self._reject("action", kind, reason)
        return action

    def _act_and_publish(self, obs: np.ndarray, landed: bool = False) -> None:
        start = time.perf_counter()
        action = self._act(obs, landed)
        if action is None:
            return
        assert self.config is not None
        lockstep = self.config.mode == "lockstep"
        if lockstep:  # the label goes out before its command: a bag's step order stays causal
            self._label(obs)
        self._send(array_msg(action, "command"))
        self.guard.commanded()
        self.stats.add(time.perf_counter() - start, time.monotonic())
        if not lockstep:  # after the command: labelling never delays the robot
            self._label(obs)

    def _label(self, obs: np.ndarray) -> None:
        """With an expert (DAgger), publish its checked action for ``obs`` on
        ``expert_command``."""
        if self.expert is None:
            return
        assert self.expert_pub is not None and self.slot is not None
        label, _, reason = check_vector(self.expert.act(obs), self.slot.task.act_dim, "label")
        if label is None:
            self.get_logger().warn(f"expert: {reason}", throttle_duration_sec=1.0)
            return
        self.expert_pub.publish(array_msg(label, "expert_command"))
        self.expert_labels += 1

    def _send(self, command) -> None:
        """Publish ``command``. In lockstep the first command after activation and after each
        episode is held until its readers matched (:meth:`_readers_matched`): commands are
        volatile, so one sent before its bridge's reader matched is never delivered, and that
        bridge would wait for it forever."""
        assert self.config is not None and self.command_pub is not None
        if self.config.mode == "lockstep" and self.confirm_reader:
            self.held = (command, time.monotonic())
            self._send_held()
        else:
            self.command_pub.publish(command)

    def _send_held(self) -> None:
        """Send the held command once its reader matched (re-tried every 10 ms; after
        ``READER_WAIT_S`` it is sent anyway, with a warning)."""
        assert self.held is not None and self.command_pub is not None
        command, since = self.held
        waited = time.monotonic() - since
        if not self._readers_matched():
            if waited < READER_WAIT_S:
                if self._hold_timer is None:
                    self._hold_timer = self.create_timer(0.01, self._send_held)
                    self._own_timers.append(self._hold_timer)
                return
            self.get_logger().warn(
                f"the readers of {self.command_pub.topic_name} did not "
                f"match within {READER_WAIT_S} s: commanding anyway"
            )
        if self._hold_timer is not None:
            self._own_timers.remove(self._hold_timer)
            self.destroy_timer(self._hold_timer)
            self._hold_timer = None
        self.held, self.confirm_reader = None, False
        self.command_pub.publish(command)

    def _readers_matched(self) -> bool:
        """Whether the command writer matched every reader of it that the graph shows, the
        nodes publishing ``observation`` among them (robot mode: at least one reader; a
        ros2_control robot reads commands in another node than the one sending joint states)."""

        def nodes(infos) -> set[tuple[str, str]]:
            return {(info.node_namespace, info.node_name) for info in infos}

        assert self.command_pub is not None
        readers = self.get_subscriptions_info_by_topic(self.command_pub.topic_name)
        if self.specs is None:
            senders = self.get_publishers_info_by_topic(self._observation_topic)
            present = nodes(senders) <= nodes(readers)
        else:
            present = bool(readers)
        return present and self.command_pub.get_subscription_count() >= len(readers)

    def _on_episode_end(self, msg: Float64MultiArray) -> None:
        assert self.slot is not None
        self.slot.reset()
        if self.background is not None:
            self.background.clear()
        self.confirm_reader = True  # the next episode may come from a new bridge
        if self.expert is not None and hasattr(self.expert, "reset"):
            self.expert.reset()

    def _on_observation(self, msg: Float64MultiArray) -> None:
        assert self.config is not None and self.slot is not None
        obs, kind, reason = check_vector(msg.data, self.slot.task.obs_dim, "observation")
        if obs is None:
            self._reject(self._observation_topic, kind, reason)
            return
        if not self.active:
            self.pending = obs if self.config.mode == "lockstep" else None
            return
        if self.config.mode == "lockstep":
            self._act_and_publish(obs)
        else:
            self.latest = (obs, time.monotonic())
            if self.background is not None:
                self.background.submit(*self.latest)

    def _on_source(self, src: SourceSpec, msg: Any) -> None:
        """Robot mode: check and store the sample (a rejected one is counted and dropped: the
        source keeps its last good sample, which goes stale); in lockstep answer once per stamp,
        when every topic source carries it."""
        assert self.config is not None and self.assembler is not None
        sample = sample_from_msg(src, msg)
        kind, reason = check_sample(
            src,
            sample,
            self.assembler.spec.joint_fields,
            msg.header.frame_id if src.type == "goal" else None,
        )
        if kind:
            assert src.topic is not None  # only topic sources get messages
            self._reject(src.topic, kind, reason)
            return
        self.assembler.update(src.name, sample)
        if src.name == self._parameter_goal:  # a goal message is newer: it stands
            self._parameter_goal = None
        if self.active and self.background is not None:  # plan from the newest state at once
            now = stamp_seconds(self.get_clock().now().to_msg())
            assembled = self.assembler.assemble(now).observation
            obs = None if assembled is None else check_vector(assembled, None, "assembled")[0]
            if obs is not None:
                self.background.submit(obs, time.monotonic())
        if self.active and self.config.mode == "lockstep" and sample.stamp > self.answered_stamp:
            stamps = self.assembler.stamps()  # (a goal set by parameter carries no stamp)
            if all(
                stamps[name] == sample.stamp or name == self._parameter_goal
                for name in self._synced
            ):
                self.answered_stamp = sample.stamp
                self._act_on_robot(sample.stamp)

    def _act_on_robot(self, now: float, landed: bool = False) -> None:
        """Robot mode: assemble at ``now`` (s, the robot's clock), published on
        ``assembled_observation`` (not again when a plan ``landed``); command only when
        fresh."""
        assert self.assembler is not None and self.shaper is not None
        assert self.assembled_pub is not None
        start = time.perf_counter()
        assembly = self.assembler.assemble(now)
        if assembly.observation is None:
            self.stale += 1
            self.stale_sources = assembly.stale
            self.get_logger().warn(
                f"stale or missing source(s) {list(assembly.stale)}: not commanding",
                throttle_duration_sec=2.0,
            )
            return
        self.stale_sources = ()
        obs, kind, reason = check_vector(assembly.observation, None, "assembled observation")
        if obs is None:
            self._reject(ASSEMBLED_OBSERVATION, kind, reason)
            return
        if not landed:
            self.assembled_pub.publish(array_msg(obs, "assembled_observation"))
        action = self._act(obs, landed)
        if action is None:
            return
        self._send(command_msg(self.shaper.shape(action)))
        self.guard.commanded()
        self.stats.add(time.perf_counter() - start, time.monotonic())

    def _on_plan_landed(self) -> None:
        """Background planning: a plan landed; its step for now goes out at once instead of up to
        a period later at the next tick (in robot mode without a second
        ``assembled_observation``)."""
        if self.active:
            self._on_tick(landed=True)

    def _on_tick(self, landed: bool = False) -> None:
        """Command from the latest observation (realtime), at each tick and (background
        planning) when a plan ``landed``."""
        assert self.config is not None
        if self.specs is not None:
            self._act_on_robot(stamp_seconds(self.get_clock().now().to_msg()), landed)
            return
        if self.latest is None or time.monotonic() - self.latest[1] > self.config.max_obs_age:
            self.stale += 1
            self.get_logger().warn(
                "no fresh observation: not commanding", throttle_duration_sec=2.0
            )
            return
        self._act_and_publish(self.latest[0], landed)

    # ---- goal ------------------------------------------------------------------------------
    def _goal_error(self, goal: list[float]) -> str:
        """Why ``goal`` cannot be this robot's (no goal source, another size), or ``""``."""
        source = self._goal_source()
        if source is None:
            return "goal refused: the spec's observation has no goal source"
        size = len(source.value) if source.value is not None else 3
        if len(goal) != size:
            return f"goal of size {len(goal)} refused: goal {source.name!r} has size {size}"
        return ""

    def _goal_source(self) -> SourceSpec | None:
        assert self.specs is not None
        return next((s for s in self.specs.observation.sources if s.type == "goal"), None)

    def _set_goal(self, goal: list[float]) -> None:
        """The goal from the parameter: never stale, until a goal message replaces it."""
        source = self._goal_source()
        assert source is not None and self.assembler is not None  # checked by _goal_error
        self.assembler.update(source.name, GoalSample(tuple(goal), math.inf))
        self._parameter_goal = source.name
        self.get_logger().info(f"goal {goal} from the parameter")

    # ---- model swaps -----------------------------------------------------------------------
    def _swap(self, path: str, origin: str) -> str:
        assert self.slot is not None
        error = self.slot.swap(path)
        if error:
            self.get_logger().error(f"{origin}: keeping {self.slot.identity}: {error}")
        else:
            self.get_logger().info(f"{origin}: now running {self.slot.identity}")
        return error

    def _on_model_updated(self, msg: String) -> None:
        if self.slot is not None and msg.data:
            self._swap(msg.data, "model_updated")

    def _on_reload(self, request, response):
        error = self._swap(self.get_parameter("checkpoint").value, "reload")
        response.success = not error
        response.message = error or f"running {self.slot.identity}"
        return response

    def _validate_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Accept or refuse a set, changing nothing that runs. Once configured: a parameter of
        :data:`FIXED_AFTER_CONFIGURE` is refused; a ``checkpoint``, or planner settings (rebuilt
        from the running checkpoint), are refused with the reason unless the model loads with
        them (the old one keeps running). What loaded waits for :meth:`_apply_parameters`."""
        self._pending = None
        if self.slot is None:
            return SetParametersResult(successful=True)
        assert self.config is not None  # configured before the slot
        for param in params:
            if param.name in FIXED_AFTER_CONFIGURE:
                return SetParametersResult(
                    successful=False, reason=f"{param.name} is fixed after configure"
                )
        values = {p.name: p.value for p in params}
        if values.get("goal"):
            if self.specs is None:
                return SetParametersResult(
                    successful=False, reason="goal is for robot mode (spec_file)"
                )
            error = self._goal_error([float(v) for v in values["goal"]])
            if error:
                return SetParametersResult(successful=False, reason=error)
        planner = {n: v for n, v in values.items() if n in (*PLANNER_PARAMETERS, "seed")}
        rebuild = bool(planner) and self.slot.planner is not None
        if "checkpoint" not in values and not rebuild:
            return SetParametersResult(successful=True)
        config = self.config
        if rebuild:
            try:
                config = dataclasses.replace(self.config, **planner)
            except ConfigError as err:
                return SetParametersResult(successful=False, reason=str(err))
        origin = "checkpoint parameter" if "checkpoint" in values else f"planner settings {planner}"
        loaded = self.slot.load(
            values.get("checkpoint", self.slot.path),
            config.planner() if rebuild else None,
            config.seed if rebuild else None,
        )
        if isinstance(loaded, str):
            self.get_logger().error(f"{origin} refused, keeping {self.slot.identity}: {loaded}")
            return SetParametersResult(successful=False, reason=loaded)
        self._pending = _PendingSwap([(p.name, p.value) for p in params], loaded, config, origin)
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: list[Parameter]) -> None:
        """After a set every validator accepted: run what :meth:`_validate_parameters` loaded for
        it (between two actions: the slot's lock); a new ``max_rejected_in_a_row`` or
        ``max_plan_age`` applies at once."""
        pending, self._pending = self._pending, None
        if pending is not None and pending.values == [(p.name, p.value) for p in params]:
            assert self.slot is not None  # a swap is pending only once configured
            self.slot.install(pending.loaded)
            self.config = pending.config
            self.get_logger().info(f"{pending.origin}: now running {self.slot.identity}")
        goal = next((p.value for p in params if p.name == "goal"), None)
        if goal and self.config is not None and self.specs is not None:
            self.config = dataclasses.replace(self.config, goal=[float(v) for v in goal])
            self._set_goal(self.config.goal)
        limit = next((p.value for p in params if p.name == "max_rejected_in_a_row"), None)
        if limit is not None and self.config is not None:
            self.config = dataclasses.replace(self.config, max_rejected_in_a_row=limit)
            self.guard.limit = limit
        age = next((p.value for p in params if p.name == "max_plan_age"), None)
        if age is not None and self.config is not None:
            self.config = dataclasses.replace(self.config, max_plan_age=age)
            if self.background is not None:
                self.background.max_age = age

    # ---- diagnostics -----------------------------------------------------------------------
    def _waiting_for(self) -> list[str]:
        """Stale sources as said on ``/diagnostics``: a goal with no sample yet is named as
        missing (no goal, no command), the others as stale."""
        assert self.assembler is not None
        stamps = self.assembler.stamps()
        return [
            f"no {self.assembler.spec.source(name).type} yet on "
            f"{self.assembler.spec.source(name).topic}"
            + (" or parameter 'goal'" if self.assembler.spec.source(name).type == "goal" else "")
            if stamps[name] == -math.inf
            else f"stale: {name}"
            for name in self.stale_sources
        ]

    def diagnostics(self) -> dict[str, Status]:
        """The ``control`` status (and ``planner`` for a planner): lifecycle state, counters,
        rate, latency and model; WARN while inputs are being rejected, sources are stale or the
        observation has no publisher, ERROR once deactivated by rejected inputs."""
        status = self.state_status()
        if self.config is None or self.slot is None:
            return {self.status_name: status}
        if self.active:
            status.message = "commanding"
        status.add("mode", self.config.mode)
        status.add("commands", self.stats.count)
        if self.expert is not None:
            status.add("expert", self.config.expert)
            status.add("expert_labels", self.expert_labels)
        if self.specs is not None and self.shaper is not None:
            status.add("stale_sources", ",".join(self.stale_sources))
            status.add("clipped", int(self.shaper.clip_counts.sum()))
            if self.stale_sources and self.active:
                status.summary(WARN, f"{'; '.join(self._waiting_for())}; not commanding")
        elif self.active and self.count_publishers(self._observation_topic) == 0:
            status.summary(WARN, f"no publisher on {self._observation_topic}")
        status.update(self.guard.values())
        if self.deactivated and not self.active:
            status.summary(ERROR, self.deactivated)
        for pub in (self.command_pub, self.assembled_pub, self.expert_pub):
            if pub is not None:  # readers each writer matched: its own side of discovery
                status.add(f"subscribers/{pub.topic_name}", pub.get_subscription_count())
        for check in self.checks:
            check.run(status)
        statuses = {self.status_name: status}
        if self.planner_checks:
            assert self.slot.planner is not None  # planner checks exist only for a planner
            plan = Status(message="planning")
            plan.add("iterations", self.slot.planner.cem.iterations)
            if self.background is None:
                plan.add("last_iterations", self.slot.iterations_done)
            else:  # every iteration, no deadline: a plan may span periods
                plan.add("background", True)
                plan.add("plan_age_ms", 1e3 * self.background.plan_age(time.monotonic()))
            for check in self.planner_checks:
                check.run(plan)
            statuses["planner"] = plan
        return statuses

    def make_executor(self) -> Executor:
        """Realtime: two threads, so loading (the ``loading`` group) runs beside the control
        callbacks; lockstep: rclpy's single-threaded EventsExecutor."""
        if self.get_parameter("mode").value == "realtime":
            return PoolExecutor(num_threads=2)
        return EventsExecutor()


def main(args: list[str] | None = None) -> int:
    return run_node(Controller, args)


if __name__ == "__main__":
    raise SystemExit(main())
