"""`python -m devenv up|down|status|tools|stop|start|revive|helm|deploy`: the dev environment's
command line.

Run by the Makefile (`dev-up`, `dev-down`, `dev-status`, `dev-tools`, `deploy`) and by the
integration tests' session fixture. Exits 1 with an explanation (and the log to read) when
something fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from devenv import cluster, layout, manifests, tools
from devenv.errors import DevEnvError


def _say(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv", description=__doc__)
    parser.add_argument(
        "--dir",
        type=Path,
        default=layout.default_dev_dir(),
        help="dev directory (default: $CANARY_DEV_DIR or .dev/ in the clone)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start everything and wait until it is ready (no-op if up)")
    commands.add_parser("down", help="stop everything that `up` started")
    commands.add_parser("status", help="show what runs; exit 0 only if the environment is up")
    commands.add_parser("tools", help="build or fetch every binary into the cache")
    commands.add_parser("helm", help="print the path of the cached helm (built if missing)")
    deploy = commands.add_parser("deploy", help="render charts/canary into deploy/")
    deploy.add_argument("--check", action="store_true", help="only report whether it is stale")
    for verb in ("stop", "start"):
        sub = commands.add_parser(verb, help=f"{verb} one component (keeps its port and data)")
        sub.add_argument("component", choices=cluster.COMPONENTS)
    commands.add_parser("revive", help="start again every component that exited")
    args = parser.parse_args(argv)

    env = cluster.DevEnv(args.dir, report=_say)
    try:
        if args.command == "up":
            env.up()
        elif args.command == "down":
            env.down()
        elif args.command == "status":
            return _status(env)
        elif args.command == "tools":
            started = time.monotonic()
            toolset = tools.ensure(lambda line: _say(f"  {line}"))
            _say(f"tools ready in {time.monotonic() - started:.1f}s (cache: {layout.cache_root()})")
            _say(f"  Kubernetes {toolset.kubernetes_version}")
        elif args.command == "helm":
            print(tools.helm(lambda line: print(line, file=sys.stderr)))
        elif args.command == "deploy":
            return _deploy(args.check)
        elif args.command == "stop":
            env.stop(args.component)
        elif args.command == "revive":
            env.revive()
        else:
            env.start(args.component)
    except DevEnvError as error:
        print(f"devenv {args.command}: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _deploy(check: bool) -> int:
    helm = tools.helm(lambda line: print(line, file=sys.stderr))
    if not check:
        _say(f"wrote {manifests.write(helm)}")
        return 0
    problems = manifests.stale(helm)
    for problem in problems:
        print(f"{problem}: run `make deploy`", file=sys.stderr)
    return 1 if problems else 0


def _status(env: cluster.DevEnv) -> int:
    for name, status in env.status().items():
        _say(f"  {name:<24} {status}")
    if env.is_up():
        _say(f"dev environment up ({env.dir.env_file})")
        return 0
    _say("dev environment not up")
    return 1


if __name__ == "__main__":
    sys.exit(main())
