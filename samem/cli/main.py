"""Entry point of the ``samem`` command.

Every subcommand lives in its own module ``samem.cli.<name>`` exposing
``add_parser(subparsers)`` (registers its options) and ``run(args) -> int``.
User mistakes raise :class:`samem.errors.SamemError`; they are printed as one line and
the process exits with status 2, never with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Before torch is imported: OpenMP threads that spin while waiting make every parallel region
# wait for a descheduled thread when another program holds a core (30x slower measured on 2
# shared cores, BENCHMARKS.md). A microscope PC always runs other programs, so idle threads
# sleep unless the user chose otherwise (OMP_WAIT_POLICY=ACTIVE on a dedicated machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from samem import __version__
from samem.errors import SamemError

#: subcommand modules, in the order ``samem --help`` lists them
COMMANDS = [
    "synth",
    "analyze",
    "serve",
    "replay",
    "batch",
    "plot",
    "movie",
    "eval",
    "train",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="samem",
        description="Track nanoparticles in liquid-phase TEM videos with SAM 2: live, offline and at scale.",
    )
    parser.add_argument("--version", action="version", version=f"samem {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"samem.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except SamemError as exc:
        print(f"samem: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("samem: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
