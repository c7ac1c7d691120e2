"""Run the node graph in lockstep for seeded episodes and watch it: what ``demo`` and
``bench/bridge.py`` do through ROS.

``sim_bridge``, ``controller`` and (with a bag) ``recorder`` run as separate processes, as
``learned-control up`` starts them. The bridge starts inactive and is activated through its
standard ``change_state`` service only once the recorder reports (on ``/diagnostics``) that it has
matched the bridge's publishers, so the bag holds every episode from its first step. An observer
node in this process collects the ``episode`` summaries and the controller's diagnostics.
:class:`LockstepGraph` keeps nodes (a controller, a learner) running across several such runs,
each with a fresh bridge and recorder: the model-based loop (:mod:`.mbrl_loop`) is built on it.
:meth:`LockstepGraph.run_robot_episodes` runs the same on a robot's own topics (a
:class:`RobotLink`: the bridge as a ros2_control driver, the controller in robot mode, lockstep or
realtime, the recorder recording only the spec's topics).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from rclpy.client import Client
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from .. import topics
from ..errors import ConfigError, LearnedControlError, SpecError
from ..evaluation import EvalResult
from ..params import ros_arg, ros_string
from ..runtime.supervisor import die_with_parent, stop_processes
from ..specs import RobotSpecs, specs_for
from ..tasks import Task
from . import qos, services

__all__ = [
    "GraphRun",
    "LockstepGraph",
    "RobotLink",
    "robot_link",
    "run_lockstep_graph",
    "new_loop_dir",
    "task_parameters",
]

BRIDGE_TOPICS = ("observation", "applied_command", "reward", "episode")

ROBOT_RESET_S = 1.0
"""Robot runs: seconds the driver pauses between episodes (a robot's reset), longer than the
pause that ends an episode in its bag (:data:`~learned_control.data.robot_bags.DEFAULT_GAP_S`)."""


@dataclass
class GraphRun:
    """What a lockstep run through the graph measured.

    Attributes:
        result: returns, lengths, successes and seeds from the bridge's ``episode`` summaries.
        seconds_per_step: wall time per env step from the first summary to the last (the first
            episode is warm-up); ``nan`` for a single episode.
        control: the controller's last ``control`` diagnostics (``p50_ms``, ``p99_ms``, ...).
        bag: the recorded bag, when one was asked for.
    """

    result: EvalResult
    seconds_per_step: float
    control: dict[str, str] = field(default_factory=dict)
    bag: Path | None = None


def task_parameters(task: str | Task) -> dict[str, str]:
    """The ``task`` and ``env_kwargs`` node parameters (``-p`` values) of ``task``; a name has no
    env kwargs."""
    if isinstance(task, str):
        return {"task": task}
    kwargs = task.env_kwargs_json
    return {"task": task.name, **({"env_kwargs": ros_string(kwargs)} if kwargs else {})}


def new_loop_dir(
    out_dir: str | os.PathLike, iterations: int, episodes_per_iteration: int
) -> tuple[Path, Path]:
    """``(out, out/bags)`` for a learning loop through the graph (mbrl-loop, dagger-loop), with
    ``bags/`` created. ConfigError, before any node starts, for counts below 1 or an ``out_dir``
    already holding bags (the learner trains on every bag in it)."""
    if iterations < 1 or episodes_per_iteration < 1:
        raise ConfigError(
            f"iterations={iterations}, episodes_per_iteration="
            f"{episodes_per_iteration}: both must be >= 1"
        )
    out = Path(out_dir).absolute()
    bags = out / "bags"
    if bags.exists() and any(bags.iterdir()):
        raise ConfigError(
            f"{bags} already holds bags; give a new out_dir (the learner trains on every bag in it)"
        )
    bags.mkdir(parents=True, exist_ok=True)
    return out, bags


@dataclass(frozen=True)
class RobotLink:
    """A loop through a robot's own topics: the spec file, its specs and the mode.

    Attributes:
        spec_file: the robot spec YAML (absolute path).
        specs: its specs, checked for the task.
        mode: ``lockstep`` or ``realtime``.
    """

    spec_file: str
    specs: RobotSpecs
    mode: str

    @classmethod
    def load(cls, task: Task, spec_file: str | os.PathLike, mode: str) -> RobotLink:
        """The link for ``task``; ConfigError in one line for a bad spec or mode."""
        if mode not in ("lockstep", "realtime"):
            raise ConfigError(f"mode {mode!r}; expected lockstep or realtime")
        try:
            specs = specs_for(task.name, str(spec_file), task.env_kwargs_json)
        except SpecError as err:
            raise ConfigError(str(err)) from None
        return cls(str(Path(spec_file).absolute()), specs, mode)

    def controller(self, timeout: float) -> dict[str, str | bool | float]:
        """Robot-mode controller parameters: started unconfigured (the first run configures it
        once the driver publishes), on the robot's clock in realtime."""
        return {
            "spec_file": self.spec_file,
            "mode": self.mode,
            "autostart": False,
            "configure_timeout": float(timeout),
            "use_sim_time": self.mode == "realtime",
        }

    def learner(self) -> dict[str, str | bool]:
        """Learner parameters that convert the robot's bags with the spec."""
        return {"spec_file": self.spec_file, "lockstep": self.mode == "lockstep"}


def robot_link(task: Task, spec_file: str | os.PathLike | None, mode: str) -> RobotLink | None:
    """The :class:`RobotLink` of a loop given a ``spec_file``, else ``None`` (the bridge's
    observation topic, lockstep only). ConfigError in one line for a bad spec or mode, or
    realtime without a spec."""
    if spec_file:
        return RobotLink.load(task, spec_file, mode)
    if mode != "lockstep":
        raise ConfigError(
            f"mode {mode!r} runs on a robot's topics only; give a spec file "
            f"(learned-control export-spec {task.name} > robot.yaml)"
        )
    return None


class _Observer:
    """An rclpy node in a private context: episode summaries and diagnostics, by node."""

    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("graph_run_observer", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.summaries: list[tuple[float, list[float]]] = []
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.node.create_subscription(
            Float64MultiArray, topics.EPISODE, self._on_summary, qos.SUMMARY
        )
        self.node.create_subscription(
            DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, qos.RELIABLE
        )

    def _on_summary(self, msg: Float64MultiArray) -> None:
        self.summaries.append((time.perf_counter(), list(msg.data)))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def status(self, name: str) -> dict[str, str]:
        return self.diagnostics.get(name, {})

    def spin_until(self, condition, timeout: float, what: str, procs) -> None:
        """Spin until ``condition()``; fail naming ``what`` on timeout or when a node died."""
        deadline = time.monotonic() + timeout
        while not condition():
            dead = [name for name, p in procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                reason = f"{', '.join(dead)} exited" if dead else f"timed out after {timeout} s"
                raise LearnedControlError(f"graph run: {reason} while waiting for {what}")
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


class LockstepGraph:
    """Node processes in one ROS domain plus the observer; episodes run through it in lockstep.

    Nodes started with :meth:`start` (a controller, a learner) keep running across
    :meth:`run_episodes` calls, each of which starts a fresh bridge (and recorder) for its
    episodes. :meth:`close` (or leaving the ``with`` block) stops every node.

    Args:
        log_dir: each node's output goes to ``<log_dir>/<node>.log``.
        timeout: seconds allowed for start-up and for each wait.
        domain_id: ROS domain of the graph; default ``$ROS_DOMAIN_ID`` (else 0).
    """

    def __init__(
        self, log_dir: str | os.PathLike, timeout: float = 600.0, domain_id: int | None = None
    ) -> None:
        domain = domain_id if domain_id is not None else int(os.environ.get("ROS_DOMAIN_ID", "0"))
        self.env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "PYTHONUNBUFFERED": "1"}
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.observer = _Observer(domain)
        self.node = self.observer.node
        self.procs: dict[str, subprocess.Popen] = {}
        self.model_updates: list[str] = []  # checkpoint paths announced on model_updated
        self.node.create_subscription(
            String, topics.MODEL_UPDATED, self._on_model_updated, qos.LATCHED
        )
        self._train: Client | None = None
        self._robot_controller_configured = False  # by run_robot_episodes, since started

    def _on_model_updated(self, msg: String) -> None:
        self.model_updates.append(msg.data)

    def __enter__(self) -> LockstepGraph:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(
        self,
        name: str,
        params: dict,
        module: str | None = None,
        params_file: str | os.PathLike | None = None,
    ) -> None:
        """Start ``learned_control.ros.<module>`` (default ``name``) as node ``name``; ``-p``
        ``params`` override those of ``params_file``."""
        module = module or name
        if name == "controller":
            self._robot_controller_configured = False
        argv = [sys.executable, "-m", f"learned_control.ros.{module}", "--ros-args"]
        if name != module:
            argv += ["-r", f"__node:={name}"]
        if params_file is not None:
            argv += ["--params-file", str(params_file)]
        for key, value in params.items():
            argv += ["-p", f"{key}:={str(value).lower() if isinstance(value, bool) else value}"]
        with open(self.log_dir / f"{name}.log", "w") as log:
            self.procs[name] = subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
            )

    def stop(self, *names: str) -> None:
        """Stop the named nodes (SIGINT, then harder after 10 s)."""
        stop_processes({n: self.procs.pop(n) for n in names if n in self.procs}, grace_s=10.0)

    def spin_until(self, condition, timeout: float, what: str) -> None:
        """Spin the observer until ``condition()``; LearnedControlError naming ``what`` on
        timeout or when a node died."""
        self.observer.spin_until(condition, timeout, what, self.procs)

    def status(self, name: str) -> dict[str, str]:
        """The latest diagnostics values of status ``name`` (``"<node>: <status>"``)."""
        return self.observer.status(name)

    def train(self) -> str:
        """Have the running ``learner`` node train (``~/train``) on its sources as they are now;
        the new checkpoint's path once announced on ``model_updated`` (the controller swaps it in
        from the same message). LearnedControlError when the learner refuses or the job fails."""
        if self._train is None:
            self._train = self.node.create_client(Trigger, "/learner/train")
        known = len(self.model_updates)
        training = "learner: training"

        def failed() -> bool:
            return self.status(training).get("state") == "failed"

        # train is not safe to repeat, and its answer can be dropped (.services): the new
        # checkpoint or the failure on /diagnostics settle it as well
        self.spin_until(self._train.service_is_ready, self.timeout, "the learner's train service")
        answer = self._train.call_async(Trigger.Request())
        self.spin_until(
            lambda: answer.done() or len(self.model_updates) > known or failed(),
            self.timeout,
            "the learner's answer to train",
        )
        if answer.done() and not answer.result().success:
            raise LearnedControlError(f"the learner refused to train: {answer.result().message}")
        self.spin_until(
            lambda: len(self.model_updates) > known or failed(),
            self.timeout,
            "the learner's new checkpoint",
        )
        if len(self.model_updates) == known:
            raise LearnedControlError(f"training failed: {self.status(training).get('last_error')}")
        return self.model_updates[-1]

    def wait_for_model(self, checkpoint: str | os.PathLike) -> str:
        """Wait until the controller's diagnostics show it running ``checkpoint``; the model's
        name there (``<class>@<file name>``)."""
        suffix = f"@{Path(checkpoint).name}"
        control = "controller: control"
        self.spin_until(
            lambda: self.status(control).get("model", "").endswith(suffix),
            self.timeout,
            f"the controller to run {Path(checkpoint).name}",
        )
        return self.status(control)["model"]

    def run_episodes(
        self,
        task: str | Task,
        episodes: int,
        seed: int,
        bag: str | os.PathLike | None = None,
        suffix: str = "",
        recorded: tuple[str, ...] = BRIDGE_TOPICS,
    ) -> GraphRun:
        """``episodes`` lockstep episodes (reset seeds ``seed``, ``seed + 1``, ...) with the running
        controller: a new ``sim_bridge<suffix>`` (and ``recorder<suffix>`` writing ``bag``, an
        mcap bag) is started, activated once the recorder matched the publishers of every topic
        in ``recorded``, and stopped afterwards. With a bag the bridge also waits for its own
        writers to match the recorder (``wait_for_recorder``): discovery runs per endpoint, and a
        reader that matched a writer says nothing of the writer's side, whose first samples
        would not reach the bag. Give each call in one graph its own ``suffix``,
        so no earlier node's services or diagnostics are mistaken for the new one's. ``task``: a
        name, or a :class:`Task` whose env kwargs the bridge gets too."""
        bridge, recorder = f"sim_bridge{suffix}", f"recorder{suffix}"
        observer = self.observer
        first = len(observer.summaries)
        if bag is not None:
            self.start(
                recorder,
                {"bag": str(bag), "storage": "mcap", "mode": "lockstep"},
                module="recorder",
            )
        self.start(
            bridge,
            {
                **task_parameters(task),
                "seed": seed,
                "mode": "lockstep",
                "max_episodes": episodes,
                "publish_clock": False,
                "wait_for_recorder": bag is not None,
                "autostart": False,
            },
            module="sim_bridge",
        )
        try:
            self._transition(bridge, Transition.TRANSITION_CONFIGURE)
            if bag is not None:
                recording = f"{recorder}: recording"
                self.spin_until(
                    lambda: all(
                        int(self.status(recording).get(f"publishers//{t}", 0)) >= 1
                        for t in recorded
                    ),
                    self.timeout,
                    "the recorder to match the bridge",
                )
            control = "controller: control"
            self.spin_until(
                lambda: self.status(control).get("state") == "active",
                self.timeout,
                "the controller to become active",
            )
            # the controller's recorded writers (expert labels) matched every reader of theirs,
            # the new recorder's among them: its reader matching them (above) says nothing of
            # their side, and a label sent before would not reach the bag
            written = [t for t in recorded if t == topics.EXPERT_COMMAND] if bag is not None else []
            self.spin_until(
                lambda: all(
                    int(self.status(control).get(f"subscribers//{t}", 0))
                    >= max(1, self.observer.node.count_subscribers("/" + t))
                    for t in written
                ),
                self.timeout,
                "the controller's writers to match the recorder",
            )
            done_before = int(self.status(control).get("count", 0))
            self._transition(bridge, Transition.TRANSITION_ACTIVATE)
            self.spin_until(
                lambda: len(observer.summaries) >= first + episodes,
                self.timeout,
                f"{episodes} episodes",
            )
            stamped = observer.summaries[first : first + episodes]
            steps = int(sum(s[2] for _, s in stamped))
            self.spin_until(
                lambda: int(self.status(control).get("count", 0)) >= done_before + steps,
                10,
                "the controller's final diagnostics",
            )
            if bag is not None:  # the last summary, and the controller's last label (its own
                # writer: it may come after the bridge's summary)
                recording = f"{recorder}: recording"
                self.spin_until(
                    lambda: (
                        int(self.status(recording).get("written//episode", 0)) >= episodes
                        and all(
                            int(self.status(recording).get(f"written//{t}", 0)) >= steps
                            for t in written
                        )
                    ),
                    self.timeout,
                    "the recorder's last episode",
                )
        finally:
            self.stop(bridge, recorder)
        return self._graph_run(stamped, Path(bag) if bag is not None else None)

    def run_robot_episodes(
        self,
        task: str | Task,
        robot: RobotLink,
        episodes: int,
        seed: int,
        bag: str | os.PathLike,
        suffix: str = "",
        reset_s: float = ROBOT_RESET_S,
    ) -> GraphRun:
        """``episodes`` episodes (reset seeds ``seed``, ``seed + 1``, ...) on a robot: a new
        ``sim_bridge<suffix>`` as its ros2_control driver (``reset_s`` s between episodes, as a
        robot's reset takes), the running ``controller`` in robot mode, and a new
        ``recorder<suffix>`` writing only the robot's topics (the spec's sources and command
        topic) into ``bag``. The controller is activated for the run and deactivated after it
        (a new driver's clock starts again); an unconfigured one is configured first against a
        driver of its own. The bridge's ``episode`` summaries give the returns, nothing else."""
        bridge, recorder = f"sim_bridge{suffix}", f"recorder{suffix}"
        observer, control = self.observer, "controller: control"
        if not self._robot_controller_configured:
            self._configure_robot_controller(task, robot, f"{suffix}_configure")
        first = len(observer.summaries)
        robot_topics = [s.topic for s in robot.specs.observation.sources if s.topic]
        command = robot.specs.command.topic
        mode = robot.mode
        readers = f"subscribers/{command}"  # the controller's writer side of discovery
        self.spin_until(
            lambda: int(self.status(control).get(readers, -1)) == 0,
            self.timeout,
            "the controller to report the last run's readers gone",
        )
        self.start(
            recorder,
            {
                "bag": str(bag),
                "storage": "mcap",
                "mode": mode,
                "spec_file": robot.spec_file,
                "topics": ros_arg([*robot_topics, command]),
            },
            module="recorder",
        )
        self.start(
            bridge,
            {
                **task_parameters(task),
                "seed": seed,
                "mode": mode,
                "interface": "ros2_control",
                "spec_file": robot.spec_file,
                "max_episodes": episodes,
                "reset_s": reset_s,
                "publish_clock": mode == "realtime",  # the robot's clock for a realtime controller
                "wait_for_recorder": True,  # its writers matched the recorder: the bag from step 0
                "autostart": False,
            },
            module="sim_bridge",
        )
        try:
            self._transition(bridge, Transition.TRANSITION_CONFIGURE)
            recording = f"{recorder}: recording"
            self.spin_until(
                lambda: all(
                    int(self.status(recording).get(f"publishers/{t}", 0)) >= 1 for t in robot_topics
                ),
                self.timeout,
                "the recorder to match the robot's driver",
            )
            self.spin_until(
                lambda: int(self.status(control).get(readers, 0)) >= 2,
                self.timeout,
                "the controller's command writer to match the driver and the recorder",
            )
            commands_before = int(self.status(control).get("commands", 0))
            self._transition("controller", Transition.TRANSITION_ACTIVATE)
            self._transition(bridge, Transition.TRANSITION_ACTIVATE)
            self.spin_until(
                lambda: len(observer.summaries) >= first + episodes,
                self.timeout,
                f"{episodes} episodes",
            )
            self._transition("controller", Transition.TRANSITION_DEACTIVATE)
            self.spin_until(
                lambda: self.status(control).get("state") == "inactive",
                self.timeout,
                "the controller's diagnostics after deactivation",
            )
            sent = int(self.status(control).get("commands", 0)) - commands_before
            self.spin_until(
                lambda: int(self.status(recording).get(f"written/{command}", 0)) >= sent,
                self.timeout,
                "the recorder's last command",
            )
        finally:
            self.stop(bridge, recorder)
        return self._graph_run(observer.summaries[first : first + episodes], Path(bag))

    def _configure_robot_controller(self, task: str | Task, robot: RobotLink, suffix: str) -> None:
        """Configure the robot-mode controller against a driver ``sim_bridge<suffix>`` started
        for it alone (configure checks the robot's joints and topics), then stop that driver.
        The driver runs in lockstep: nothing commands it, so it ends no episode."""
        bridge = f"sim_bridge{suffix}"
        self.start(
            bridge,
            {
                **task_parameters(task),
                # lockstep: it holds its first state (republished) and ends no episode
                "mode": "lockstep",
                "interface": "ros2_control",
                "spec_file": robot.spec_file,
                "publish_clock": False,
            },
            module="sim_bridge",
        )
        try:
            self._transition("controller", Transition.TRANSITION_CONFIGURE)
            self._robot_controller_configured = True
        finally:
            self.stop(bridge)

    def _transition(self, node: str, transition_id: int) -> None:
        """Have lifecycle node ``node`` take ``transition_id``; LearnedControlError naming its
        log when it refuses."""
        if not services.change_state(
            self.spin_until, self.node, f"/{node}", transition_id, self.timeout
        ):
            raise LearnedControlError(
                f"graph run: {node} refused transition {transition_id}; see "
                f"{self.log_dir / node}.log"
            )

    def _graph_run(self, stamped: list[tuple[float, list[float]]], bag: Path | None) -> GraphRun:
        """What a run measured, from its ``(receive time, summary)`` pairs."""
        summaries = [s for _, s in stamped]
        result = EvalResult(
            returns=[s[1] for s in summaries],
            lengths=[int(s[2]) for s in summaries],
            successes=[None if s[3] != s[3] else bool(s[3]) for s in summaries],
            seeds=[int(s[4]) for s in summaries],
        )
        timed = sum(result.lengths[1:])
        span = stamped[-1][0] - stamped[0][0]
        return GraphRun(
            result,
            span / timed if timed else float("nan"),
            self.status("controller: control"),
            bag,
        )

    def close(self) -> None:
        """Stop every node and the observer."""
        try:
            stop_processes(self.procs, grace_s=10.0)
        finally:
            self.procs.clear()
            self.observer.close()


def run_lockstep_graph(
    task: str | Task,
    checkpoint: str | os.PathLike,
    episodes: int,
    seed: int,
    log_dir: str | os.PathLike,
    bag: str | os.PathLike | None = None,
    torch_threads: int = 1,
    timeout: float = 600.0,
    domain_id: int | None = None,
) -> GraphRun:
    """``episodes`` lockstep episodes (reset seeds ``seed``, ``seed + 1``, ...) through the graph.

    Args:
        task: a task name, or a :class:`Task` (its env kwargs go to the nodes too).
        checkpoint: the controller's policy checkpoint.
        episodes: episodes to run; the bridge stops stepping after them.
        seed: reset seed of the first episode.
        log_dir: each node's output goes to ``<log_dir>/<node>.log``.
        bag: record into this new bag (mcap) when given.
        torch_threads: the controller's torch threads.
        timeout: seconds allowed for start-up and for the episodes.
        domain_id: ROS domain of the graph; default ``$ROS_DOMAIN_ID`` (else 0).

    Raises:
        LearnedControlError: a node exited or the run timed out (node logs name why).
    """
    with LockstepGraph(log_dir, timeout, domain_id) as graph:
        graph.start(
            "controller",
            {
                **task_parameters(task),
                "checkpoint": str(checkpoint),
                "mode": "lockstep",
                "torch_threads": torch_threads,
            },
        )
        return graph.run_episodes(task, episodes, seed, bag)
