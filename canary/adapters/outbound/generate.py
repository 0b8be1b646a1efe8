"""Generate the Python messages of Linkerd's proxy API from its protobufs (``grpcio-tools``).

Run by ``make venv`` (``python -m canary.adapters.outbound.generate [PROTO_DIR]``); the default
directory is ``$CANARY_LINKERD_DIR/proto``, else ``../shared/linkerd/proto`` beside the clone.
The protobufs import each other by bare file name, which would make the generated modules import
each other as top-level modules; they are copied into a tree mirroring this package with their
imports rewritten, so the modules land in ``_generated/`` and import each other from there.
Nothing generated is committed (``.gitignore``).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc  # a build-time tool (dev extra): only this script needs it

PACKAGE = "canary/adapters/outbound/_generated"
OUT = Path(__file__).resolve().parent / "_generated"
# outbound.proto and everything it imports (google/protobuf comes with grpcio-tools).
PROTOS = (
    "outbound.proto",
    "net.proto",
    "destination.proto",
    "meta.proto",
    "grpc_route.proto",
    "opaque_route.proto",
    "tls_route.proto",
    "http_route.proto",
    "http_types.proto",
)
_LOCAL_IMPORT = re.compile(r'^import "(?!google/)([^"]+)";', re.MULTILINE)


def default_proto_dir() -> Path:
    """``$CANARY_LINKERD_DIR/proto``, else ``../shared/linkerd/proto`` beside the clone."""
    explicit = os.environ.get("CANARY_LINKERD_DIR")
    if explicit:
        return Path(explicit) / "proto"
    return Path(__file__).resolve().parents[4] / "shared" / "linkerd" / "proto"


def generate(proto_dir: Path, out: Path = OUT) -> list[Path]:
    """Write ``*_pb2.py`` for :data:`PROTOS` into ``out``; returns the files written."""
    missing = [name for name in PROTOS if not (proto_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"Linkerd protobufs missing in {proto_dir}: {', '.join(missing)}")
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / PACKAGE
        tree.mkdir(parents=True)
        for name in PROTOS:
            text = (proto_dir / name).read_text()
            (tree / name).write_text(_LOCAL_IMPORT.sub(rf'import "{PACKAGE}/\1";', text))
        include = resources.files("grpc_tools") / "_proto"
        code = protoc.main(
            [
                "protoc",
                f"-I{tmp}",
                f"-I{include}",
                f"--python_out={tmp}",
                *(f"{PACKAGE}/{name}" for name in PROTOS),
            ]
        )
        if code != 0:
            raise RuntimeError(f"protoc failed with exit code {code}")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        written = []
        for module in sorted(tree.glob("*_pb2.py")):
            written.append(Path(shutil.copy(module, out / module.name)))
        (out / "__init__.py").write_text(
            '"""Generated from Linkerd\'s protobufs; not committed."""\n'
        )
        return written


def main(argv: list[str] | None = None) -> int:
    """Entry point: generate from the directory given, or the default one."""
    args = sys.argv[1:] if argv is None else argv
    proto_dir = Path(args[0]) if args else default_proto_dir()
    try:
        written = generate(proto_dir)
    except (FileNotFoundError, RuntimeError) as error:
        print(f"canary.adapters.outbound.generate: {error}", file=sys.stderr)
        return 1
    print(f"generated {len(written)} modules from {proto_dir} into {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
