"""The ``canary`` command (also ``kubectl canary``) and the composition root that wires the
adapters into the runtime. Only this module knows every concrete class."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from canary import __version__


def _version(_: argparse.Namespace) -> int:
    print(f"canary {__version__}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar of every subcommand."""
    parser = argparse.ArgumentParser(prog="canary", description="Canary releases for Kubernetes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("version", help="print the version").set_defaults(func=_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console scripts; returns the process exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
