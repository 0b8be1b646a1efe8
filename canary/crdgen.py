"""Write or check ``crds/`` from the models: ``python -m canary.crdgen --write|--check DIR``.

Run by ``make crds`` (write) and ``make lint`` (check). The only module that writes CRD files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from canary.model import schema

HEADER = "# Generated from canary/model by `make crds`. Do not edit by hand.\n"


def render() -> dict[str, str]:
    """The text of every CRD file, by file name."""
    return {
        name: HEADER + yaml.safe_dump(crd, sort_keys=False, width=100)
        for name, crd in schema.crds().items()
    }


def main(argv: list[str] | None = None) -> int:
    """Write the files, or report (exit 1) which ones differ from the models."""
    parser = argparse.ArgumentParser(prog="python -m canary.crdgen")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the CRDs")
    mode.add_argument("--check", action="store_true", help="fail if the CRDs are stale")
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = args.directory / name
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(str(path))
    if stale:
        print(f"stale CRDs (run `make crds`): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
