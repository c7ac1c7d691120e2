"""``learned-control``: the core from the shell.

Each subcommand lives in its own module of this package, which defines
``register(subparsers)``: add a parser with a useful ``--help``, every hyperparameter a flag,
and ``set_defaults(func=run)`` where ``run(args) -> int``. Add the module name to
``COMMAND_MODULES`` to expose it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import LearnedControlError

__all__ = ["main", "build_parser"]

COMMAND_MODULES: tuple[str, ...] = (
    "expert",
    "collect",
    "train_bc",
    "evaluate",
    "demo",
    "export_spec",
    "bag2minari",
    "up",
    "train_dynamics",
    "dagger",
    "world_model",
    "mbrl_loop",
    "dagger_loop",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learned-control",
        description="Learn to act from data, then act in real time through ROS 2.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LearnedControlError as err:
        print(f"learned-control {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"learned-control {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
