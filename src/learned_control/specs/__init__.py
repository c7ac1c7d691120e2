"""Observation and command specs: how a policy's vectors map onto standard robot topics.

A robot does not publish our ``observation`` vector. An :class:`ObservationSpec` says how to
assemble it from the latest samples of a robot's sources (``/joint_states``, PoseStamped or
Odometry topics, goals given by parameter or topic); a :class:`CommandSpec` says how an action
becomes a ros2_control command (joint order, limits, rate limit, message type). Both live in one
editable YAML file (:func:`dump_specs`, :func:`load_specs`); each registry task has a default one
(``specs/<task>.yaml``, :func:`default_specs`).

Modules: :mod:`.observation` (the observation spec and its feature expressions),
:mod:`.assembly` (samples and :class:`ObservationAssembler`), :mod:`.command` (the command spec
and :class:`CommandShaper`), :mod:`.files` (YAML spec files and the packaged defaults),
:mod:`.simulator` (:func:`driver_samples`).

The ROS nodes only convert messages into :class:`JointSample`/:class:`PoseSample`/
:class:`GoalSample`; :func:`driver_samples` produces the same samples from a MuJoCo env.
"""

from .assembly import Assembly, GoalSample, JointSample, ObservationAssembler, PoseSample
from .command import Command, CommandShaper, CommandSpec, command_to_action
from .files import RobotSpecs, default_specs, dump_specs, load_specs, specs_for, specs_from_dict
from .observation import Feature, ObservationSpec, SourceSpec
from .simulator import driver_samples

__all__ = [
    "SourceSpec",
    "Feature",
    "ObservationSpec",
    "CommandSpec",
    "RobotSpecs",
    "JointSample",
    "PoseSample",
    "GoalSample",
    "Assembly",
    "ObservationAssembler",
    "Command",
    "CommandShaper",
    "command_to_action",
    "load_specs",
    "dump_specs",
    "specs_from_dict",
    "default_specs",
    "specs_for",
    "driver_samples",
]
