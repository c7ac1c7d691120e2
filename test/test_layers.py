"""Layering: the core (every module outside ``ros/`` and ``cli/``) imports no ROS package.

Parses each core module's source with :mod:`ast` (function-level imports included, plus
``importlib.import_module``/``__import__`` calls on a literal name), so it needs neither ROS nor
the imported packages. The sources checked are those of the ``learned_control`` that is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import learned_control

PACKAGE = "learned_control"
ROOT = Path(learned_control.__file__).resolve().parent
SHELLS = ("ros", "cli")
"""Subpackages allowed to use ROS: the node shell and the command line."""

ROS_PACKAGES = frozenset({
    "rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "nav_msgs", "trajectory_msgs",
    "diagnostic_msgs", "rosgraph_msgs", "lifecycle_msgs", "rcl_interfaces", "builtin_interfaces",
    "std_srvs", "launch", "launch_ros",
})
FORBIDDEN_OWN = f"{PACKAGE}.ros"


def _module_name(path: Path) -> str:
    """``.../learned_control/data/bags.py`` -> ``learned_control.data.bags``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def _core_modules() -> list[Path]:
    """Every ``.py`` under the package but outside the shells."""
    return sorted(p for p in ROOT.rglob("*.py")
                  if p.relative_to(ROOT).parts[0] not in SHELLS)


def _imported_names(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute dotted name)`` of everything the module imports, anywhere in it.

    ``from X import a`` yields ``X`` and ``X.a`` (``a`` may be a submodule); relative imports are
    resolved against the module's package.
    """
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.append((node.lineno, base))
            names += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args:
            func, arg = node.func, node.args[0]
            called = (func.attr if isinstance(func, ast.Attribute)
                      else func.id if isinstance(func, ast.Name) else "")
            if (called in ("import_module", "__import__") and isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)):
                names.append((node.lineno, arg.value))
    return names


def _is_forbidden(name: str) -> bool:
    """A ROS package (or a module of one), or the package's own ROS shell."""
    return (name.split(".")[0] in ROS_PACKAGES
            or name == FORBIDDEN_OWN or name.startswith(FORBIDDEN_OWN + "."))


def test_the_walk_sees_the_core():
    modules = {_module_name(p) for p in _core_modules()}
    assert {f"{PACKAGE}.data.bags", f"{PACKAGE}.runtime.diagnostics", PACKAGE} <= modules
    assert not any(m.startswith((f"{PACKAGE}.ros", f"{PACKAGE}.cli")) for m in modules)


def test_the_checker_catches_every_form_of_import(tmp_path, monkeypatch):
    fake = tmp_path / PACKAGE
    (fake / "data").mkdir(parents=True)
    source = fake / "data" / "x.py"
    source.write_text(
        "import os\n"
        "from ..ros import topics\n"
        "from .. import ros\n"
        "from learned_control.ros.qos import RELIABLE\n"
        "def f():\n"
        "    import rclpy.node\n"
        "    from std_msgs.msg import Float64\n"
        "    return importlib.import_module('sensor_msgs.msg')\n"
        "from .. import rosette\n"
        "from . import ros\n")
    monkeypatch.setattr(f"{__name__}.ROOT", fake)
    hits = sorted({line for line, name in _imported_names(source) if _is_forbidden(name)})
    assert hits == [2, 3, 4, 6, 7, 8]


def test_the_core_imports_no_ros():
    offenders = [f"{path.relative_to(ROOT.parent)}:{line}: imports {name}"
                 for path in _core_modules()
                 for line, name in _imported_names(path) if _is_forbidden(name)]
    assert not offenders, ("the core must not depend on ROS or on learned_control.ros:\n"
                           + "\n".join(offenders))
