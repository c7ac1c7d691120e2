"""The node graph's parameter files: ``<task>.yaml`` per task, shipped inside the package.

Each file holds one ``<node>: ros__parameters:`` section per node (``sim_bridge``, ``controller``,
``recorder``); the launch file, ``learned-control up`` and the loops through ROS pass it to the
nodes, and the controller section is where a task's default planner settings are written. The
files are package data (``learned_control/config/``), so an installed package finds them without
the source checkout. This module reads YAML only (no torch), so launch files may import it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["PARAMETER_DIR", "parameter_file", "node_parameters"]

PARAMETER_DIR = Path(str(files("learned_control") / "config"))
"""The folder of the ``<task>.yaml`` parameter files (the installed package's ``config/``)."""


def parameter_file(task: str) -> Path:
    """``<task>.yaml``, the node graph's parameter file for ``task``.

    Raises:
        ConfigError: no such file in :data:`PARAMETER_DIR`.
    """
    path = PARAMETER_DIR / f"{task}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PARAMETER_DIR.glob("*.yaml"))
        raise ConfigError(f"no parameter file {task}.yaml in {PARAMETER_DIR} (have: {known})")
    return path


def node_parameters(task: str, node: str) -> dict[str, Any]:
    """The ``ros__parameters`` of ``node``'s section in ``task``'s parameter file (``{}`` when
    the file has no such section)."""
    data = yaml.safe_load(parameter_file(task).read_text()) or {}
    return dict((data.get(node) or {}).get("ros__parameters") or {})
