"""``learned-control export-spec``: print a task's observation and command specs as YAML."""

from __future__ import annotations

import argparse
import sys

from ..specs import default_specs, dump_specs
from .common import env_kwargs_arg

__all__ = ["add_arguments", "run"]


HELP = "write a task's robot observation/command specs as editable YAML"

DESCRIPTION = """Print the default observation spec (which robot topics and joints make up the
policy observation) and command spec (controller topic, message type, joint order, limits, rate
limit) of TASK. For a MuJoCo env the spec is generated from the model and kept only if it
reproduces the env's observation over a random rollout; otherwise one line names the
observation elements no robot topic carries (and the --env-kwargs that leave them out). Edit
the file for your robot and give it to the controller's spec_file parameter:
learned-control export-spec Hopper-v5 > my_robot.yaml"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="a registered task or any Gymnasium MuJoCo id, e.g. Hopper-v5")
    parser.add_argument(
        "--env-kwargs",
        type=env_kwargs_arg,
        default=None,
        metavar="JSON",
        help="keyword arguments for gym.make as a JSON object (they can change the "
        "observation), e.g. '{\"include_cfrc_ext_in_observation\": false}'",
    )
    parser.add_argument(
        "--output", "-o", default=None, help="write to this file instead of standard output"
    )


def run(args: argparse.Namespace) -> int:
    text = dump_specs(default_specs(args.task, args.env_kwargs))
    if args.output is None:
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
