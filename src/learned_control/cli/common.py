"""Argument groups shared by several subcommands, so each flag is defined once."""

from __future__ import annotations

import argparse

from ..tasks import TASKS

__all__ = ["add_task_arg", "add_runtime_args", "add_source_args", "source_from_args"]


def add_task_arg(parser: argparse.ArgumentParser, default: str | None = "InvertedPendulum-v5") -> None:
    parser.add_argument("--task", default=default, choices=sorted(TASKS), required=default is None,
                        help="registered task (default: %(default)s)")


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """``--seed``, ``--device``, ``--torch-threads``, ``--runs-dir``."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--device", default="auto",
                        help="torch device: auto, cpu, cuda (default: %(default)s)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--runs-dir", default="runs",
                        help="folder under which each run gets its own directory (default: %(default)s)")


def add_source_args(parser: argparse.ArgumentParser) -> None:
    """``--dataset MINARI_ID`` | ``--bag PATH`` (one required) and ``--download``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", metavar="MINARI_ID", help="Minari dataset id")
    source.add_argument("--bag", metavar="PATH", help="rosbag2 bag folder recorded by the recorder")
    parser.add_argument("--download", action="store_true",
                        help="fetch --dataset from the Minari server when it is not local")


def source_from_args(args: argparse.Namespace) -> tuple[str, str]:
    """``(source, kind)`` for :func:`learned_control.data.sources.load_transitions`."""
    return (args.dataset, "minari") if args.dataset else (args.bag, "bag")
