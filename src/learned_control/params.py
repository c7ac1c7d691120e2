"""The node graph's parameter files: ``<task>.yaml`` per registered task and ``default.yaml`` for
any other task, shipped inside the package.

Each file holds one ``/**/<node>: ros__parameters:`` section per node (``sim_bridge``,
``controller``, ``recorder``, ``learner``): the ``/**/`` wildcard makes a section apply to the node
in any namespace (a plain ``<node>:`` key applies only outside one). The launch file,
``learned-control up`` and the loops through ROS pass it to the nodes (with ``task`` and
``env_kwargs`` as overrides, which ``default.yaml`` leaves out), and the controller section is
where a task's default planner settings are written. The files are package data
(``learned_control/config/``), so an installed package finds them without the source checkout; a
colcon install also copies them to ``share/learned_control/config/``. This module reads YAML only
(no torch), so launch files may import it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = [
    "PARAMETER_DIR",
    "DEFAULT_PARAMETER_FILE",
    "parameter_file",
    "node_parameters",
    "node_section",
    "ros_string",
    "ros_arg",
]

PARAMETER_DIR = Path(str(files("learned_control") / "config"))
"""The folder of the ``<task>.yaml`` parameter files (the installed package's ``config/``)."""
DEFAULT_PARAMETER_FILE = PARAMETER_DIR / "default.yaml"
"""The parameter file of tasks without their own: no ``task``, the planner's generic defaults."""


def parameter_file(task: str, directory: Path = PARAMETER_DIR) -> Path:
    """``<task>.yaml``, the node graph's parameter file for ``task``, else ``default.yaml`` (any
    Gymnasium id or ``module:EnvId``), in ``directory`` (default: the package's; the launch file
    passes the share folder of a colcon install).

    Raises:
        ConfigError: neither file exists (a broken install).
    """
    own = directory / f"{task}.yaml"
    if not any(sep in task for sep in "/\\:") and own.is_file():
        return own
    default = directory / DEFAULT_PARAMETER_FILE.name
    if not default.is_file():
        raise ConfigError(f"no parameter file {own.name} nor default.yaml in {directory}")
    return default


def node_section(data: Any, node: str) -> dict[str, Any] | None:
    """The ``ros__parameters`` of ``node`` in a parameter file's ``data`` (its YAML), under
    ``/**/<node>`` or ``<node>``; ``None`` when the file has no such section."""
    if not isinstance(data, dict):
        return None
    for key in (f"/**/{node}", node):
        if key in data:
            return dict((data[key] or {}).get("ros__parameters") or {})
    return None


def node_parameters(task: str, node: str) -> dict[str, Any]:
    """The ``ros__parameters`` of ``node``'s section in ``task``'s parameter file (``{}`` when
    the file has no such section)."""
    return node_section(yaml.safe_load(parameter_file(task).read_text()), node) or {}


def ros_string(value: str) -> str:
    """``value`` as the right-hand side of a ``--ros-args -p name:=value`` that stays a string
    (YAML single-quoted: a JSON object such as ``env_kwargs`` is not parsed as a mapping)."""
    return "'" + value.replace("'", "''") + "'"


def ros_arg(value: str | bool | int | float | list[str]) -> str:
    """``value`` as the right-hand side of ``-p name:=value`` that ROS reads back as ``value``: a
    bool as ``true``/``false``, a list of strings as a YAML list of quoted strings, a string
    quoted where YAML would read it as something else (``true``, ``1``, a JSON object, ``""``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(ros_string(v) for v in value) + "]"
    if isinstance(value, str):
        try:
            plain = yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain = False
        return value if plain else ros_string(value)
    return str(value)
