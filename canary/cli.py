"""The ``canary`` command (also ``kubectl canary``) and the composition root that wires the
adapters into the runtime. Only this module knows every concrete class."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from canary import __version__
from canary.adapters.kube import client as kube
from canary.adapters.kube import kubeconfig
from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.core import commands, lint, present, release
from canary.core import plan as plan_mod
from canary.core.machine import Command, CommandKind
from canary.errors import CanaryError, Conflict, InvalidSpec, TransientError
from canary.model.rollout import Rollout
from canary.ports import Ref


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


# --- commands that talk to the cluster ----------------------------------------------------

RESOURCE = "rollouts.canary.dev"


def _store(args: argparse.Namespace) -> tuple[KubeRolloutStore, str]:
    """The Rollout store of the chosen cluster and the namespace to work in."""
    api = kube.connect(args.kubeconfig, args.context)
    namespace = args.namespace or kubeconfig.namespace(args.kubeconfig, args.context)
    return KubeRolloutStore(api), namespace


def _not_found(name: str) -> int:
    print(f'Error from server (NotFound): {RESOURCE} "{name}" not found', file=sys.stderr)
    return 1


def _invalid(name: str, error: InvalidSpec) -> int:
    print(f'The Rollout "{name}" is invalid:', file=sys.stderr)
    for problem in error.problems:
        print(f"* {problem}", file=sys.stderr)
    return 1


def _release(args: argparse.Namespace) -> int:
    """Create the Rollout of one release of a Deployment."""
    store, namespace = _store(args)
    env: dict[str, dict[str, str]] = {}
    for container, key, value in args.set_env:
        env.setdefault(container, {})[key] = value
    try:
        rollout = release.build(
            namespace=namespace,
            deployment=args.target,
            images=dict(args.image),
            env=env,
            now=datetime.now(UTC),
            name=args.name,
            policy=args.policy,
            step_weight=args.step_weight,
            max_weight=args.max_weight,
        )
    except InvalidSpec as error:
        return _invalid(args.name or args.target, error)
    name = rollout.metadata.name
    try:
        store.create(rollout)
    except Conflict:
        print(
            f'Error from server (AlreadyExists): {RESOURCE} "{name}" already exists; '
            "pass --name to choose another",
            file=sys.stderr,
        )
        return 1
    except InvalidSpec as error:
        return _invalid(name, error)
    print(f"rollout.canary.dev/{name} created")
    return 0


class _Plans:
    """Step counts and latency percentiles of rollouts, from their policies (read once)."""

    def __init__(self, store: KubeRolloutStore) -> None:
        self._store = store
        self._policies: dict[Ref, Any] = {}

    def plan(self, rollout: Rollout) -> plan_mod.Plan | None:
        ref = rollout.spec.policy_ref
        policy = None
        if ref is not None:
            key = Ref(rollout.metadata.namespace, ref.name)
            if key not in self._policies:
                try:
                    self._policies[key] = self._store.policy(key)
                except InvalidSpec:
                    self._policies[key] = None
            policy = self._policies[key]
        try:
            return plan_mod.build(rollout, policy)
        except InvalidSpec:
            return None

    def total(self, rollout: Rollout) -> int | None:
        found = self.plan(rollout)
        return len(found.steps) if found is not None else None

    def percentile(self, rollout: Rollout) -> float:
        found = self.plan(rollout)
        return found.thresholds.latency_percentile if found is not None else 99.0


def _dump(document: Any, output: str) -> None:
    if output == "json":
        print(json.dumps(document, indent=2))
    else:
        print(yaml.safe_dump(document, sort_keys=False), end="")


def _get(args: argparse.Namespace) -> int:
    """List Rollouts as a table, or print them as YAML or JSON."""
    store, namespace = _store(args)
    if args.name:
        found = store.get(Ref(namespace, args.name))
        if found is None:
            return _not_found(args.name)
        rollouts = [found]
    else:
        rollouts = store.list(None if args.all_namespaces else namespace)
    if args.output in ("yaml", "json"):
        items = [r.wire() for r in rollouts]
        _dump(
            items[0] if args.name else {"apiVersion": "v1", "kind": "List", "items": items},
            args.output,
        )
        return 0
    if not rollouts:
        where = "" if args.all_namespaces else f" in {namespace} namespace"
        print(f"No resources found{where}.", file=sys.stderr)
        return 0
    plans, now, wide = _Plans(store), datetime.now(UTC), args.output == "wide"
    rows = [
        present.row(r, now, plans.total(r), wide=wide, all_namespaces=args.all_namespaces)
        for r in rollouts
    ]
    print(present.table(present.headers(wide=wide, all_namespaces=args.all_namespaces), rows))
    return 0


def _watch(args: argparse.Namespace) -> int:
    """Follow a Rollout until it finishes: 0 Succeeded, 1 another end, 2 timed out."""
    store, namespace = _store(args)
    ref = Ref(namespace, args.name)
    plans = _Plans(store)
    tty = sys.stdout.isatty()
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    last = ""
    while True:
        try:
            rollout = store.get(ref)
        except TransientError as error:
            rollout, text = None, f"(retrying) {error}"
        else:
            if rollout is None:
                return _not_found(args.name)
            total, percentile = plans.total(rollout), plans.percentile(rollout)
            if tty:
                text = "\n".join(present.frame(rollout, total, percentile, datetime.now(UTC)))
            else:
                text = present.line(rollout, total, percentile)
        if tty:
            print("\x1b[H\x1b[J" + text, flush=True)
        elif text != last:
            print(f"{datetime.now(UTC):%H:%M:%S}  {text}", flush=True)
        last = text
        code = present.exit_code(rollout.status.phase) if rollout is not None else None
        if code is not None:
            return code
        if deadline is not None and time.monotonic() >= deadline:
            print(
                f"error: timed out after {args.timeout:g}s waiting for rollout.canary.dev/"
                f"{args.name} to finish",
                file=sys.stderr,
            )
            return 2
        left = None if deadline is None else deadline - time.monotonic()
        time.sleep(args.interval if left is None else min(args.interval, left))


def _actor(args: argparse.Namespace) -> str:
    if args.as_actor:
        return str(args.as_actor)
    person = os.environ.get("USER") or os.environ.get("LOGNAME")
    if person:
        return f"{person}@{socket.gethostname()}"
    return kubeconfig.user(args.kubeconfig, args.context) or "unknown"


def _command(kind: CommandKind) -> Callable[[argparse.Namespace], int]:
    def give(args: argparse.Namespace) -> int:
        store, namespace = _store(args)
        ref = Ref(namespace, args.name)
        rollout = store.get(ref)
        if rollout is None:
            return _not_found(args.name)
        reason = commands.refusal(kind, rollout.status.phase)
        if reason is not None:
            print(f"error: cannot {kind} rollout.canary.dev/{args.name}: {reason}", file=sys.stderr)
            return 1
        command = Command(kind, datetime.now(UTC), _actor(args), args.comment or "")
        for key, value in commands.encode(command).items():
            store.annotate(ref, key, value)
        print(f"rollout.canary.dev/{args.name} {commands.PAST_TENSE[kind]}")
        return 0

    give.__doc__ = f"Write the {kind} command on a Rollout."
    return give


def _argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    return convert


_COMMAND_HELP: dict[CommandKind, str] = {
    "approve": "approve a rollout waiting for approval",
    "promote": "skip the remaining steps and promote the release now",
    "abort": "stop a rollout and send all traffic back to stable",
    "retry": "start a rolled-back, aborted or failed rollout again",
}


def _cluster_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """-n/--kubeconfig/--context, accepted before or after the subcommand (like kubectl)."""
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "-n",
        "--namespace",
        default=default,
        help="namespace (default: the kubeconfig context's, else 'default')",
    )
    parser.add_argument("--kubeconfig", default=default, help="path to the kubeconfig file")
    parser.add_argument("--context", default=default, help="kubeconfig context to use")


def _add_cluster_commands(sub: Any) -> None:
    cluster = argparse.ArgumentParser(add_help=False)
    _cluster_options(cluster, top=False)

    cmd = sub.add_parser(
        "release",
        parents=[cluster],
        help="release a new version of a Deployment",
        description="Create a Rollout that releases new images (and env) of a Deployment. "
        "Example: canary release deploy/podinfo --image podinfo=ghcr.io/stefanprodan/podinfo:6.1.0",
    )
    cmd.add_argument("target", type=_argument_type(release.parse_target), metavar="deploy/NAME")
    cmd.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="CONTAINER=IMAGE",
        type=_argument_type(release.parse_image),
        help="new image (repeatable)",
    )
    cmd.add_argument(
        "--set-env",
        action="append",
        default=[],
        metavar="CONTAINER:NAME=VALUE",
        type=_argument_type(release.parse_env),
        help="set an env var (repeatable)",
    )
    cmd.add_argument("--policy", help="RolloutPolicy to follow (default: the Deployment's name)")
    cmd.add_argument("--name", help="Rollout name (default: <deployment>-<image tag>)")
    cmd.add_argument("--step-weight", type=int, help="raise the weight by this much each step")
    cmd.add_argument("--max-weight", type=int, help="with --step-weight: the last weight")
    cmd.set_defaults(func=_release)

    cmd = sub.add_parser("get", parents=[cluster], help="list rollouts or show one")
    cmd.add_argument("name", nargs="?", metavar="ROLLOUT")
    cmd.add_argument("-A", "--all-namespaces", action="store_true", help="in every namespace")
    cmd.add_argument("-o", "--output", choices=("wide", "yaml", "json"), help="output format")
    cmd.set_defaults(func=_get)

    cmd = sub.add_parser(
        "watch",
        parents=[cluster],
        help="follow a rollout until it finishes",
        description="Show a rollout's progress live. Exits 0 when it succeeds, 1 when it ends "
        "otherwise (RolledBack, Aborted, Failed, Superseded), 2 on --timeout.",
    )
    cmd.add_argument("name", metavar="ROLLOUT")
    cmd.add_argument("--timeout", type=float, help="give up after this many seconds (exit 2)")
    cmd.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    cmd.set_defaults(func=_watch)

    for kind in commands.KINDS:
        cmd = sub.add_parser(kind, parents=[cluster], help=_COMMAND_HELP[kind])
        cmd.add_argument("name", metavar="ROLLOUT")
        cmd.add_argument("--comment", help="why (kept in status.approvals)")
        cmd.add_argument(
            "--as-actor",
            metavar="WHO",
            help="who gives the command (default: $USER@host, else the kubeconfig user)",
        )
        cmd.set_defaults(func=_command(kind))


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar of every subcommand."""
    parser = argparse.ArgumentParser(prog="canary", description="Canary releases for Kubernetes.")
    _cluster_options(parser, top=True)
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
    _add_cluster_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console scripts; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except CanaryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
