"""Spec files: both specs of a task (:class:`RobotSpecs`), their YAML form, the default specs
(a packaged ``specs/<task>.yaml``, else generated from the MuJoCo model) and the spec a node
runs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError
from ..tasks import get_task, parse_env_kwargs
from .command import CommandSpec
from .generate import generate_specs
from .observation import Feature, ObservationSpec, SourceSpec

__all__ = [
    "RobotSpecs",
    "specs_from_dict",
    "load_specs",
    "dump_specs",
    "default_specs",
    "specs_for",
]

PACKAGED = {"HalfCheetah-v5": "the root (rootz, rooty) from mocap odometry, as on a robot"}
"""Tasks whose default spec is a packaged file rather than the generated one, and why."""


@dataclass(frozen=True)
class RobotSpecs:
    """Both specs of one task, as in a ``spec_file``; ``env_kwargs``: the task's ``gym.make``
    keyword arguments (the observation layout depends on them)."""

    task: str
    observation: ObservationSpec
    command: CommandSpec
    env_kwargs: dict[str, Any] = field(default_factory=dict)


def _tuple(v: Any) -> tuple[float, ...] | None:
    return None if v is None else tuple(float(x) for x in v)


def specs_from_dict(data: Any, where: str = "spec") -> RobotSpecs:
    """Validate a parsed spec file; SpecError naming the bad entry and ``where``."""
    if not isinstance(data, Mapping) or not {"task", "observation", "command"} <= set(data):
        raise SpecError(f"{where}: expected a mapping with task, observation and command")
    try:
        obs, cmd = data["observation"], data["command"]
        sources = []
        for i, s in enumerate(obs["sources"]):
            unknown = set(s) - {f.name for f in SourceSpec.__dataclass_fields__.values()}
            if unknown:
                raise SpecError(f"observation.sources[{i}]: unknown key(s) {sorted(unknown)}")
            sources.append(
                SourceSpec(
                    **{
                        **s,
                        "value": _tuple(s.get("value")),
                        "sim_joints": tuple(s.get("sim_joints", ())),
                    }
                )
            )
        features = []
        for i, f in enumerate(obs["features"]):
            if not isinstance(f, Mapping) or set(f) != {"name", "expr"}:
                raise SpecError(
                    f"observation.features[{i}]: expected keys name and expr, got {f!r}"
                )
            features.append(Feature(str(f["name"]), f["expr"]))
        ospec = ObservationSpec(
            tuple(sources), tuple(features), obs.get("sim_kinematics", "stepped")
        )
        cspec = CommandSpec(
            **{
                **cmd,
                "joints": tuple(cmd["joints"]),
                "action_joints": tuple(cmd["action_joints"]),
                "low": _tuple(cmd["low"]),
                "high": _tuple(cmd["high"]),
                "max_delta": _tuple(cmd.get("max_delta")),
            }
        )
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise SpecError(f"{where}: malformed entry ({type(err).__name__}: {err})") from None
    task = str(data["task"])
    env_kwargs = parse_env_kwargs(data.get("env_kwargs"))
    expected = get_task(task, env_kwargs).obs_dim
    if ospec.dim != expected:
        raise SpecError(
            f"{where}: the observation features give {ospec.dim} values, task {task} "
            f"expects {expected}"
        )
    return RobotSpecs(task, ospec, cspec, env_kwargs)


def load_specs(path: str | Path) -> RobotSpecs:
    """Read and validate a spec file (YAML)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SpecError(f"{path}: cannot read a YAML spec file ({err})") from None
    return specs_from_dict(data, str(path))


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def dump_specs(specs: RobotSpecs) -> str:
    """The YAML text of ``specs`` (what ``learned-control export-spec`` prints)."""

    def source_dict(src: SourceSpec) -> dict[str, Any]:
        """The fields users edit, plus any other field off its default."""
        shown = {"name", "type", "topic", "max_age"} | (
            {"frame"} if src.type in ("PoseStamped", "Odometry") else set()
        )
        return {
            name: _plain(getattr(src, name))
            for name, f in SourceSpec.__dataclass_fields__.items()
            if name in shown or getattr(src, name) != f.default
        }

    o = specs.observation
    data: dict[str, Any] = {"task": specs.task}
    if specs.env_kwargs:
        data["env_kwargs"] = _plain(specs.env_kwargs)
    data |= {
        "observation": {
            "sim_kinematics": o.sim_kinematics,
            "sources": [source_dict(s) for s in o.sources],
            "features": [{"name": f.name, "expr": _plain(f.expr)} for f in o.features],
        },
        "command": _plain({k: getattr(specs.command, k) for k in CommandSpec.__dataclass_fields__}),
    }
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


_GENERATED: dict[tuple[str, str], RobotSpecs] = {}


def default_specs(task: str, env_kwargs: Mapping[str, Any] | str | None = None) -> RobotSpecs:
    """The default specs of ``task`` with ``env_kwargs``: the packaged file of a task in
    :data:`PACKAGED` (without env kwargs), else generated from its MuJoCo model and verified
    (:func:`~learned_control.specs.generate.generate_specs`, cached per process); SpecError
    saying in one line why none is expressible."""
    kwargs = parse_env_kwargs(env_kwargs)
    resolved = get_task(task, kwargs)
    if task in PACKAGED and not kwargs:
        ref = resources.files("learned_control.specs").joinpath(f"{task}.yaml")
        return specs_from_dict(yaml.safe_load(ref.read_text()), f"{task}.yaml")
    key = (task, json.dumps(kwargs, sort_keys=True, default=repr))
    if key not in _GENERATED:
        observation, command = generate_specs(resolved)
        _GENERATED[key] = RobotSpecs(task, observation, command, kwargs)
    return _GENERATED[key]


def specs_for(
    task: str, spec_file: str = "", env_kwargs: Mapping[str, Any] | str | None = None
) -> RobotSpecs:
    """The specs a node runs: ``spec_file`` when given (it must be for ``task`` and, where
    given, ``env_kwargs``), else the default of ``task`` with ``env_kwargs``."""
    specs = load_specs(spec_file) if spec_file else default_specs(task, env_kwargs)
    kwargs = specs.env_kwargs if env_kwargs is None else parse_env_kwargs(env_kwargs)
    if specs.task != task or specs.env_kwargs != kwargs:
        raise SpecError(
            f"{spec_file}: a spec for task {specs.task} with env_kwargs {specs.env_kwargs}, but "
            f"the node runs {task} with env_kwargs {kwargs}"
        )
    return specs
