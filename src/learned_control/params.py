"""The node graph's parameter files: ``<task>.yaml`` per registered task and ``default.yaml`` for
any other task, shipped inside the package.

Each file holds one ``<node>: ros__parameters:`` section per node (``sim_bridge``, ``controller``,
``recorder``); the launch file, ``learned-control up`` and the loops through ROS pass it to the
nodes (with ``task`` and ``env_kwargs`` as overrides, which ``default.yaml`` leaves out), and the
controller section is where a task's default planner settings are written. The files are package
data (``learned_control/config/``), so an installed package finds them without the source
checkout. This module reads YAML only (no torch), so launch files may import it.
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
    "ros_string",
]

PARAMETER_DIR = Path(str(files("learned_control") / "config"))
"""The folder of the ``<task>.yaml`` parameter files (the installed package's ``config/``)."""
DEFAULT_PARAMETER_FILE = PARAMETER_DIR / "default.yaml"
"""The parameter file of tasks without their own: no ``task``, the planner's generic defaults."""


def parameter_file(task: str) -> Path:
    """``<task>.yaml``, the node graph's parameter file for ``task``, else
    :data:`DEFAULT_PARAMETER_FILE` (any Gymnasium id or ``module:EnvId``).

    Raises:
        ConfigError: neither file exists (a broken install).
    """
    own = PARAMETER_DIR / f"{task}.yaml"
    if not any(sep in task for sep in "/\\:") and own.is_file():
        return own
    if not DEFAULT_PARAMETER_FILE.is_file():
        raise ConfigError(f"no parameter file {own.name} nor default.yaml in {PARAMETER_DIR}")
    return DEFAULT_PARAMETER_FILE


def node_parameters(task: str, node: str) -> dict[str, Any]:
    """The ``ros__parameters`` of ``node``'s section in ``task``'s parameter file (``{}`` when
    the file has no such section)."""
    data = yaml.safe_load(parameter_file(task).read_text()) or {}
    return dict((data.get(node) or {}).get("ros__parameters") or {})


def ros_string(value: str) -> str:
    """``value`` as the right-hand side of a ``--ros-args -p name:=value`` that stays a string
    (YAML single-quoted: a JSON object such as ``env_kwargs`` is not parsed as a mapping)."""
    return "'" + value.replace("'", "''") + "'"
