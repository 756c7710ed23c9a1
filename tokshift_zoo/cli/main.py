"""The ``tokshift-zoo`` parser and entry point: every command's parser, and its errors as one line and an exit code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import ConfigError, DeviceError, TokShiftZooError
from . import benchmark, demo, export, inference, models, publish, train
from .options import _HelpFormatter, _Parser

_DESCRIPTION = """\
TokShift video transformers (Zhang, Hao, Ngo, ACM MM 2021): the paper's models with their preprocessing and
verified weights; classify, evaluate and fine-tune on your own videos.

Start here:
  tokshift-zoo demo                         write a synthetic clip and classify it (no network needed)
  tokshift-zoo predict clip.mp4 --views 1x3 classify your own videos (default: the bundled demo model)
  tokshift-zoo models                       the zoo's models, their cost and the weights each tag has
  tokshift-zoo COMMAND --help               a command's options, with their defaults
"""


class _TopHelpFormatter(_HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The top-level help: its description is laid out by hand."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``tokshift-zoo`` command."""
    parser = _Parser(prog="tokshift-zoo", description=_DESCRIPTION, formatter_class=_TopHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (models, publish, train, inference, export, demo, benchmark):  # the order of the commands in --help
        group.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tokshift-zoo`` console script; returns the exit code (0, 1 failure, 2 usage)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except (ConfigError, DeviceError) as err:  # a usage error: bad names, settings, lists or devices
        print(f"tokshift-zoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (TokShiftZooError, OSError) as err:  # weights that cannot be had or verified, files that cannot be read
        print(f"tokshift-zoo {args.command}: error: {err}", file=sys.stderr)
        return 1
