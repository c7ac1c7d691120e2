"""``learned-control bag-reindex``: make a bag whose recorder was killed readable again."""

from __future__ import annotations

import argparse

from ..data.bags import reindex

__all__ = ["add_arguments", "run"]


HELP = "recover a bag without metadata.yaml (a killed recorder), like ros2 bag reindex"

DESCRIPTION = """Finish the storage file of a bag whose recorder was killed (mcap: keep every
complete chunk, drop the unfinished tail, write the index and footer; sqlite3: roll back the
uncommitted transaction) and write its metadata.yaml. bag2minari does this by itself; a bag that
has its metadata.yaml is left as it is."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="bag folder")


def run(args: argparse.Namespace) -> int:
    print(reindex(args.bag) or f"bag {args.bag} has its metadata.yaml: nothing to do")
    return 0
