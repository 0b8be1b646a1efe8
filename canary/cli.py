"""The ``canary`` command (also ``kubectl canary``) and the composition root that wires the
adapters into the runtime. Only this module knows every concrete class."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from canary import __version__
from canary.core import lint


def _version(_: argparse.Namespace) -> int:
    print(f"canary {__version__}")
    return 0


def _lint(args: argparse.Namespace) -> int:
    """Validate files offline; print each problem as FILE: KIND/NAME: PATH: MESSAGE (HINT).
    All files are checked together, so a Rollout's policy may live in another file."""
    documents: list[object] = []
    origin: list[str] = []
    unreadable = 0
    for file in args.files:
        try:
            text = Path(file).read_text() if file != "-" else sys.stdin.read()
            found = [d for d in yaml.safe_load_all(text) if d is not None]
        except OSError as error:
            print(f"{file}: cannot read: {error.strerror}", file=sys.stderr)
            unreadable += 1
            continue
        except yaml.YAMLError as error:
            print(f"{file}: not valid YAML: {error}", file=sys.stderr)
            unreadable += 1
            continue
        documents.extend(found)
        origin.extend([file] * len(found))
    findings = lint.check(documents)
    for finding in findings:
        where = finding.kind and f"{finding.kind}/{finding.name}"
        print(
            f"{origin[finding.document]}: {where or f'document {finding.document + 1}'}: "
            f"{finding.problem}"
        )
    total = len(findings) + unreadable
    noun = "problem" if total == 1 else "problems"
    print(f"{len(documents)} object(s) checked, {total} {noun}", file=sys.stderr)
    return 1 if total else 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar of every subcommand."""
    parser = argparse.ArgumentParser(prog="canary", description="Canary releases for Kubernetes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("version", help="print the version").set_defaults(func=_version)
    lint_cmd = sub.add_parser(
        "lint",
        help="validate Rollout and RolloutPolicy files offline",
        description="Check Rollouts and RolloutPolicies against the schema and the semantic "
        "rules; a Rollout's referenced policy is merged in when it is among the files. "
        "Exits 1 when anything is wrong.",
    )
    lint_cmd.add_argument("files", nargs="+", metavar="FILE", help="YAML files ('-' for stdin)")
    lint_cmd.set_defaults(func=_lint)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console scripts; returns the process exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
