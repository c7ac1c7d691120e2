"""What ``learned-control up`` and ``launch/sim.launch.py`` share: which nodes a graph runs, with
which parameters and remappings, and the one-line refusals of contradictory choices.

A graph is the simulation bridge (``interface`` ``sim``: the observation vector, or ``driver``:
the topics of a ros2_control robot with mocap, as the bridge's ``ros2_control`` interface
publishes them), the controller, the recorder and the learner, each optional: ``bridge=False``
runs against the robot's own drivers (the controller in robot mode, through a spec file), and
``controller=False`` is the bridge for a controller of one's own. Under a ``namespace`` every node
and its relative topics go there; where the bridge runs, the graph is one simulated robot, so
the absolute topics it shares with the controller and the recorder (``/joint_states``,
``/clock``, the spec's topics) are remapped under the namespace too (``/diagnostics`` stays global,
for the aggregator). Without the bridge a spec's topic names are taken as written: a relative
name resolves under the namespace, an absolute one stays. ROS-free: the launch file imports it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import topics
from .errors import ConfigError, SpecError

__all__ = ["Bringup", "INTERFACES", "NODES", "normalize_namespace"]

INTERFACES = {"sim": "observation", "driver": "ros2_control"}
"""``interface`` choice -> the bridge's ``interface`` parameter."""

NODES = ("recorder", "learner", "controller", "sim_bridge")
"""Every node a graph may run, in start order (the bridge last: it waits for the others)."""

_NAME_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def normalize_namespace(namespace: str) -> str:
    """``robot1`` or ``/lab/robot1/`` -> ``/robot1``, ``/lab/robot1``; ``""`` stays ``""`` (no
    namespace). ConfigError for a name ROS refuses."""
    tokens = namespace.strip("/").split("/") if namespace.strip("/") else []
    bad = [t for t in tokens if not _NAME_TOKEN.fullmatch(t)]
    if bad:
        raise ConfigError(
            f"namespace {namespace!r}: {bad[0]!r} is not a ROS name (letters, digits and _, "
            "not starting with a digit, tokens joined by /)"
        )
    return "/" + "/".join(tokens) if tokens else ""


@dataclass
class Bringup:
    """One graph to bring up; checked at construction.

    Attributes:
        task: a registered task or any Gymnasium id.
        env_kwargs: keyword arguments for ``gym.make`` as a JSON object string; empty: none.
        mode: ``lockstep`` or ``realtime`` (bridge, controller and recorder).
        interface: the bridge's: ``sim`` or ``driver``; empty: ``sim`` (where a bridge runs).
        spec_file: robot spec YAML, for the driver interface or a graph without the bridge (the
            controller in robot mode, the recorder recording the spec's topics).
        namespace: ROS namespace of every node (``robot1``); empty: none.
        bridge: run ``sim_bridge``.
        controller: run ``controller``.
        learner: run ``learner``.
        checkpoint: the controller's checkpoint (needed exactly when it runs).
        actor: ``policy`` or ``cem``.
        expert: DAgger labeller of the controller (sim interface only); empty: none.
        record: path of a new bag; empty: no recorder.
        record_topics: what the recorder records (``NAME`` or ``NAME:pkg/msg/Type``); empty:
            the bridge's topics on the sim interface, else the spec's topics plus the bridge's
            side topics where it runs.
        learner_sources: the learner's ``sources`` (bags, folders of bags, Minari ids); empty:
            those of the parameter file.
    """

    task: str
    env_kwargs: str = ""
    mode: str = "lockstep"
    interface: str = ""
    spec_file: str = ""
    namespace: str = ""
    bridge: bool = True
    controller: bool = True
    learner: bool = False
    checkpoint: str = ""
    actor: str = "policy"
    expert: str = ""
    record: str = ""
    record_topics: Sequence[str] = ()
    learner_sources: Sequence[str] = ()
    _spec_topics: tuple[tuple[str, ...], str] = field(default=((), ""), init=False, repr=False)

    def __post_init__(self) -> None:
        self.namespace = normalize_namespace(self.namespace)
        for name, value, allowed in (
            ("mode", self.mode, ("lockstep", "realtime")),
            ("actor", self.actor, ("policy", "cem")),
            ("interface", self.interface, ("", *INTERFACES)),
        ):
            if value not in allowed:
                raise ConfigError(f"{name} {value!r}; expected one of {[a for a in allowed if a]}")
        refusal = self._contradiction()
        if refusal:
            raise ConfigError(refusal)
        if self.spec_file:
            self._spec_topics = self._read_spec()

    def _contradiction(self) -> str:
        """Why these choices contradict each other (one line), or ``""``."""
        if not self.bridge and not self.controller:
            return "--bridge-only and --no-bridge together leave nothing to run"
        if not self.bridge and self.interface == "sim":
            return "--interface sim is the simulated bridge's, and --no-bridge runs none"
        if self.robot and not self.spec_file:
            graph = "--interface driver" if self.bridge else "--no-bridge"
            return (
                f"{graph} needs --spec-file (the robot's topics; `learned-control export-spec "
                f"{self.task} > robot.yaml` writes the task's)"
            )
        if self.spec_file and not self.robot:
            return (
                "--spec-file is for --interface driver or --no-bridge (the sim interface "
                "publishes the observation vector itself)"
            )
        if not self.controller:
            given = [
                flag
                for flag, value in (
                    ("--checkpoint", self.checkpoint),
                    ("--expert", self.expert),
                    ("--actor cem", self.actor == "cem"),
                )
                if value
            ]
            if given:
                return f"--bridge-only runs no controller; drop {', '.join(given)}"
        elif not self.checkpoint:
            return "--checkpoint is needed to run the controller (--bridge-only runs none)"
        if self.expert and self.robot:
            return "--expert labels the observation topic, which robot mode has none of"
        if self.record_topics and not self.record:
            return "--record-topics needs --record"
        if self.learner_sources and not self.learner:
            return "--learner-sources needs --learner"
        return ""

    def _read_spec(self) -> tuple[tuple[str, ...], str]:
        """``(source topics, command topic)`` of the spec file, checked for this task."""
        from .specs import specs_for  # mujoco and the spec generator: only with a spec file

        try:
            specs = specs_for(self.task, self.spec_file, self.env_kwargs)
        except SpecError as err:
            raise ConfigError(str(err)) from None
        sources = tuple(src.topic for src in specs.observation.sources if src.topic)
        return sources, specs.command.topic

    @property
    def robot(self) -> bool:
        """Whether the controller and the recorder work on robot topics through the spec."""
        return not self.bridge or self.interface == "driver"

    @property
    def nodes(self) -> list[str]:
        """The nodes to run, in start order."""
        runs = {
            "recorder": bool(self.record),
            "learner": self.learner,
            "controller": self.controller,
            "sim_bridge": self.bridge,
        }
        return [name for name in NODES if runs[name]]

    def _command_topics(self) -> list[str]:
        """The topics a controller writes that the recorder records."""
        if self.robot:
            return [self._spec_topics[1]]
        return [topics.COMMAND] + ([topics.EXPERT_COMMAND] if self.expert else [])

    def _recorded(self) -> list[str]:
        """The recorder's ``topics``: as given, the default set on the sim interface (empty),
        else the spec's topics, ``assembled_observation`` and the bridge's side topics."""
        if self.record_topics or not self.robot:
            return list(self.record_topics)
        sides = [topics.APPLIED_COMMAND, topics.REWARD, topics.EPISODE] if self.bridge else []
        mine = [topics.ASSEMBLED_OBSERVATION] if self.controller else []
        return sides + list(self._spec_topics[0]) + self._command_topics() + mine

    def parameters(self, node: str) -> dict[str, Any]:
        """The parameters of ``node`` given on top of the parameter file, typed (str, bool,
        list of str)."""
        task = {"task": self.task, **({"env_kwargs": self.env_kwargs} if self.env_kwargs else {})}
        spec = {"spec_file": self.spec_file} if self.spec_file else {}
        if node == "sim_bridge":
            bridge = {"mode": self.mode, "interface": INTERFACES[self.interface or "sim"]}
            waits = {"wait_for_recorder": True} if self.record else {}  # the bag from step 0
            return {**task, **bridge, **spec, **waits}
        if node == "controller":
            labeller = {"expert": self.expert} if self.expert else {}
            run = {"checkpoint": self.checkpoint, "mode": self.mode, "actor": self.actor}
            return {**task, **run, **labeller, **spec}
        if node == "learner":
            learner: dict[str, Any] = {
                **task,
                "what": "dynamics" if self.actor == "cem" else "bc",
                "labels": "expert" if self.expert else "applied",
            }
            if self.learner_sources:
                learner["sources"] = list(self.learner_sources)
            return learner
        if node == "recorder":
            recorder: dict[str, Any] = {"bag": self.record, "mode": self.mode, **spec}
            recorded = self._recorded()
            if recorded:
                recorder["topics"] = recorded
            names = [t.partition(":")[0] for t in recorded]
            # on the sim interface the bridge's topics once the controller's writers matched:
            # all start at step 0. A robot-mode controller makes its writer only once configure
            # saw the robot's topics, which the bridge holds back until the recorder matched.
            awaited = [t for t in self._command_topics() if not names or t in names]
            if self.bridge and not self.robot and awaited:
                recorder["wait_for"] = awaited
            return recorder
        raise ConfigError(f"no node {node!r}; one of {list(NODES)}")

    def remappings(self) -> list[tuple[str, str]]:
        """``(from, to)`` remappings of every node: under a namespace, with the bridge, each
        absolute topic the graph shares (``/joint_states``, ``/clock``, the spec's) moves under
        it."""
        if not self.namespace or not self.bridge:
            return []
        shared = [topics.JOINT_STATES, topics.CLOCK, *self._spec_topics[0]]
        if self._spec_topics[1]:
            shared.append(self._spec_topics[1])
        absolute = dict.fromkeys(t for t in shared if t.startswith("/"))
        return [(t, self.namespace + t) for t in absolute]

    def check_parameter_file(self, path: Path) -> None:
        """ConfigError when ``path`` is no readable YAML mapping, or when, under a namespace, it
        has a plain ``<node>:`` section for a node of the graph (ROS applies such a section only
        outside a namespace; ``/**/<node>:`` applies in any)."""
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"parameter file {path}: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"parameter file {path}: not a mapping of node sections")
        if self.namespace:
            plain = [n for n in self.nodes if n in data and f"/**/{n}" not in data]
            if plain:
                raise ConfigError(
                    f"parameter file {path}: section {plain[0]!r} applies only outside a "
                    f"namespace; name it '/**/{plain[0]}' for {self.namespace}"
                )
