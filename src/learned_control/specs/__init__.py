"""Observation and command specs: how a policy's vectors map onto standard robot topics.

A robot does not publish our ``observation`` vector. An :class:`ObservationSpec` says how to
assemble it from the latest samples of a robot's sources (``/joint_states``, PoseStamped or
Odometry topics, goals given by parameter or topic); a :class:`CommandSpec` says how an action
becomes a ros2_control command (joint order, limits, rate limit, message type). Both live in one
editable YAML file (:func:`dump_specs`, :func:`load_specs`). A task's default one
(:func:`default_specs`) is generated from its MuJoCo model and verified against the env's
observation (:func:`generate_specs`), or packaged (``specs/<task>.yaml``) where it differs on
purpose.

Modules: :mod:`.observation` (the observation spec and its feature expressions),
:mod:`.assembly` (samples and :class:`ObservationAssembler`), :mod:`.command` (the command spec
and :class:`CommandShaper`), :mod:`.files` (YAML spec files and the packaged defaults),
:mod:`.simulator` (:func:`driver_samples`), :mod:`.generate` (:func:`generate_specs`).

The ROS nodes only convert messages into :class:`JointSample`/:class:`PoseSample`/
:class:`GoalSample`; :func:`driver_samples` produces the same samples from a MuJoCo env.
"""

from .assembly import (
    Assembly,
    GoalSample,
    JointSample,
    ObservationAssembler,
    PoseSample,
    sample_from_msg,
    stamp_seconds,
)
from .command import (
    TRAJECTORY_POINT_FIELDS,
    Command,
    CommandShaper,
    CommandSpec,
    command_to_action,
)
from .files import (
    PACKAGED,
    RobotSpecs,
    default_specs,
    dump_specs,
    load_specs,
    specs_for,
    specs_from_dict,
)
from .generate import generate_specs
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
    "sample_from_msg",
    "stamp_seconds",
    "Command",
    "CommandShaper",
    "TRAJECTORY_POINT_FIELDS",
    "command_to_action",
    "load_specs",
    "dump_specs",
    "specs_from_dict",
    "default_specs",
    "specs_for",
    "driver_samples",
    "generate_specs",
    "PACKAGED",
]
