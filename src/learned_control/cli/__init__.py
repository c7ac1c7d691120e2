"""``learned-control``: the core from the shell.

Each subcommand lives in its own module of this package, named as the command with ``_`` for
``-``. The module defines ``HELP`` (its line in the command list), ``DESCRIPTION`` (its
``--help`` text), ``add_arguments(parser)`` (every hyperparameter a flag) and
``run(args) -> int``. Add the module name to ``COMMAND_MODULES`` to expose it.
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
    "minari2bag",
    "bag_reindex",
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
        module = importlib.import_module(f"{__name__}.{name}")
        command = sub.add_parser(
            name.replace("_", "-"), help=module.HELP, description=module.DESCRIPTION
        )
        module.add_arguments(command)
        command.set_defaults(func=module.run)
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
