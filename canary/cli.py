"""The ``canary`` command (also ``kubectl canary``) and the composition root that wires the
adapters into the runtime. Only this module knows every concrete class.

It is longer than 400 lines because it is both the argument parser of every subcommand and
the one place the controller is assembled; each function in it is a thin binding of parsed
arguments to the console, the lint core or the runtime, and holds no logic of its own."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import secrets
import signal
import sys
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
import yaml

from canary import __version__, loadtest
from canary.adapters.hooks.http import HTTPHooks
from canary.adapters.kube import client as kube
from canary.adapters.kube import kubeconfig
from canary.adapters.kube.access import KubeAccessReview, KubeSelfReview
from canary.adapters.kube.cached import SYNC_SECONDS, CachedLookup, KubeCache
from canary.adapters.kube.events import WRITERS, KubeEventRecorder, QueuedEventRecorder
from canary.adapters.kube.lease import KubeLease
from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.adapters.kube.secrets import KubeSecrets
from canary.adapters.kube.workloads import KubeWorkloads
from canary.adapters.metrics.prometheus import TIMEOUT_SECONDS, PrometheusMetrics
from canary.adapters.notifiers.policy import PolicyNotifier
from canary.adapters.notifiers.slack import SlackWebApi
from canary.adapters.routers.httproute import HTTPRouteRouter
from canary.adapters.routers.trafficsplit import TrafficSplitRouter
from canary.api import app as api_app
from canary.api import server as api_server
from canary.api.metrics import ControllerMetrics, InstrumentedMetrics
from canary.api.slack import Slack
from canary.console import Console
from canary.core import chat, commands, lint, outbound, release
from canary.core.vocabulary import CommandKind
from canary.errors import CanaryError
from canary.model.base import format_duration, parse_duration
from canary.model.policy import Notification
from canary.model.rollout import Rollout, merge_policy
from canary.ports import MetricProvider, Ref, RolloutStore, TrafficRouter, Workloads
from canary.runtime import heap, leader
from canary.runtime.clock import SystemClock
from canary.runtime.controller import ASKERS, Controller, start_thread
from canary.runtime.guard import GuardedReconciler
from canary.runtime.messages import MessageLedger
from canary.runtime.outbox import OutboxWorker
from canary.runtime.recording import (
    RecordingMetrics,
    RecordingReconciler,
    RecordingRouter,
    RecordingStore,
    RecordingWorkloads,
    Tape,
)
from canary.runtime.retention import Retention
from canary.runtime.scheduler import Scheduler


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
            if file == "-":
                data = sys.stdin.buffer.read(lint.MAX_BYTES + 1)
            else:
                with Path(file).open("rb") as stream:
                    data = stream.read(lint.MAX_BYTES + 1)
            found = lint.read(data)
        except OSError as error:
            print(f"{file}: cannot read: {error.strerror}", file=sys.stderr)
            unreadable += 1
            continue
        except lint.Unreadable as error:
            print(f"{file}: {error}", file=sys.stderr)
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


def _console(args: argparse.Namespace) -> Console:
    """A Console on the chosen cluster, in the chosen (or the kubeconfig's) namespace."""
    store = KubeRolloutStore(kube.connect(args.kubeconfig, args.context))
    namespace = args.namespace or kubeconfig.namespace(args.kubeconfig, args.context)
    return Console(store=store, annotator=store, create=store.create, namespace=namespace)


def _release(args: argparse.Namespace) -> int:
    env: dict[str, dict[str, str]] = {}
    for container, key, value in args.set_env:
        env.setdefault(container, {})[key] = value
    return _console(args).release(
        args.target,
        dict(args.image),
        env,
        name=args.name,
        policy=args.policy,
        step_weight=args.step_weight,
        max_weight=args.max_weight,
    )


def _undo(args: argparse.Namespace) -> int:
    return _console(args).undo(
        args.target, actor=_actor(args), comment=args.comment or "", name=args.name
    )


def _get(args: argparse.Namespace) -> int:
    return _console(args).get(args.name, all_namespaces=args.all_namespaces, output=args.output)


def _history(args: argparse.Namespace) -> int:
    return _console(args).get(
        None, all_namespaces=args.all_namespaces, output=args.output, target=args.target
    )


def _watch(args: argparse.Namespace) -> int:
    return _console(args).watch(
        args.name, timeout=args.timeout, interval=args.interval, tty=sys.stdout.isatty()
    )


def _actor(args: argparse.Namespace) -> str:
    """Who gives a command: --as-actor, else the identity the API server authenticates (where
    the chart's commands policy is installed, the API server admits no other actor)."""
    if args.as_actor:
        return str(args.as_actor)
    return kube.whoami(kube.connect(args.kubeconfig, args.context))


def _command(kind: CommandKind) -> Callable[[argparse.Namespace], int]:
    def give(args: argparse.Namespace) -> int:
        return _console(args).command(
            kind, args.name, actor=_actor(args), comment=args.comment or ""
        )

    return give


def _seconds(text: str) -> float:
    """A timeout written as Go-style duration (15m) or as seconds (900)."""
    try:
        return float(text)
    except ValueError:
        return parse_duration(text).total_seconds()


def _namespaces(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"not a comma-separated list of namespaces: {text!r}")
    return names


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
    "pause": "hold a rollout at its current weight (analysis goes on; its deadlines stop)",
    "resume": "let a paused rollout go on",
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

    cmd = sub.add_parser(
        "undo",
        parents=[cluster],
        help="release a Deployment's previous template again",
        description="Create a Rollout back to the template of the Deployment's previous "
        "Succeeded release, with the policy's undo.steps (else its steps), its approvals and its "
        "analysis, like any release. Example: canary undo deploy/podinfo",
    )
    cmd.add_argument("target", type=_argument_type(release.parse_target), metavar="deploy/NAME")
    cmd.add_argument("--name", help="Rollout name (default: <deployment>-undo-<time>)")
    cmd.add_argument("--comment", help="why (kept in the kubernetes.io/change-cause annotation)")
    cmd.add_argument(
        "--as-actor",
        metavar="WHO",
        help="who asks (default: the user the API server authenticates)",
    )
    cmd.set_defaults(func=_undo)

    cmd = sub.add_parser("get", parents=[cluster], help="list rollouts (oldest first) or show one")
    cmd.add_argument("name", nargs="?", metavar="ROLLOUT")
    cmd.add_argument("-A", "--all-namespaces", action="store_true", help="in every namespace")
    cmd.add_argument("-o", "--output", choices=("wide", "yaml", "json"), help="output format")
    cmd.set_defaults(func=_get)

    cmd = sub.add_parser(
        "history",
        parents=[cluster],
        help="list the releases of one Deployment, oldest first",
        description="The Rollouts whose target is the Deployment, by creation time. "
        "Example: canary history deploy/podinfo",
    )
    cmd.add_argument("target", type=_argument_type(release.parse_target), metavar="deploy/NAME")
    cmd.add_argument("-A", "--all-namespaces", action="store_true", help="in every namespace")
    cmd.add_argument("-o", "--output", choices=("wide", "yaml", "json"), help="output format")
    cmd.set_defaults(func=_history)

    cmd = sub.add_parser(
        "watch",
        parents=[cluster],
        help="follow a rollout until it finishes",
        description="Show a rollout's progress live. Exits 0 when it succeeds, 1 when it ends "
        "otherwise (RolledBack, Aborted, Failed, Superseded), 2 on --timeout.",
    )
    cmd.add_argument("name", metavar="ROLLOUT")
    cmd.add_argument(
        "--timeout",
        type=_argument_type(_seconds),
        metavar="DURATION",
        help="give up after this long (exit 2): 90s, 15m, 1h30m, or plain seconds",
    )
    cmd.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    cmd.set_defaults(func=_watch)

    for kind in commands.KINDS:
        cmd = sub.add_parser(kind, parents=[cluster], help=_COMMAND_HELP[kind])
        cmd.add_argument("name", metavar="ROLLOUT")
        cmd.add_argument("--comment", help="why (kept in status.approvals)")
        cmd.add_argument(
            "--as-actor",
            metavar="WHO",
            help="who gives the command (default: the user the API server authenticates; "
            "with the approvals policy installed no other name is admitted)",
        )
        cmd.set_defaults(func=_command(kind))


# --- the controller ----------------------------------------------------------------------


def _configure_logging(level: str) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def _notifications(store: RolloutStore, rollout: Rollout) -> tuple[Notification, ...]:
    """The notifications of a Rollout's policy as it is now (a delivery may come long after
    the reconcile that recorded it, from a controller that has built no plan of it)."""
    policy_ref = rollout.spec.policy_ref
    policy = (
        store.policy(Ref(rollout.metadata.namespace, policy_ref.name))
        if policy_ref is not None
        else None
    )
    merged = merge_policy(rollout.spec, policy.spec if policy is not None else None)
    return tuple(merged.notifications or ())


def _secret(variable: str, path: str | None) -> str | None:
    """A secret from an environment variable, else from a file (a mounted Secret key)."""
    return os.environ.get(variable) or (Path(path).read_text().strip() if path else None)


class _Identities:
    """The platform team's Slack mapping, read again whenever its file (a mounted ConfigMap)
    changes; a file that no longer parses keeps the last good mapping and is logged."""

    def __init__(self, path: str | None) -> None:
        self._path = Path(path) if path else None
        self._stamp: float | None = None
        self._value = chat.SlackIdentities()
        self._lock = threading.Lock()
        self()

    def __call__(self) -> chat.SlackIdentities:
        if self._path is None:
            return self._value
        with self._lock:
            try:
                stamp = self._path.stat().st_mtime
                if stamp != self._stamp:
                    loaded = yaml.safe_load(self._path.read_text()) or {}
                    self._value, self._stamp = chat.SlackIdentities.model_validate(loaded), stamp
            except (OSError, yaml.YAMLError, ValueError) as error:
                structlog.get_logger("canary").error(
                    "slack_identities_unread", path=str(self._path), error=str(error)[:300]
                )
            return self._value


def _slack(args: argparse.Namespace) -> tuple[Slack | None, SlackWebApi]:
    """The Slack app: its Web API (with the bot token, if any), and its endpoints when the
    signing secret is configured."""
    origins: tuple[str, ...] = ("https://hooks.slack.com",)
    if args.slack_api_url != "https://slack.com/api/":  # a Slack stand-in answers too
        parts = urllib.parse.urlsplit(args.slack_api_url)
        origins += (f"{parts.scheme}://{parts.netloc}",)
    web = SlackWebApi(
        _secret("CANARY_SLACK_BOT_TOKEN", args.slack_bot_token_file),
        base_url=args.slack_api_url,
        response_origins=origins,
    )
    signing = _secret("CANARY_SLACK_SIGNING_SECRET", args.slack_signing_secret_file)
    if not signing:
        return None, web
    return Slack(signing, _Identities(args.slack_identities), web.members, web.respond), web


def _run_arguments_refused(args: argparse.Namespace) -> str | None:
    """Check (and parse in place; open the --record tape) `canary run`'s arguments; the
    problem, or None."""
    try:
        args.outbound_allow = outbound.Policy.parse(args.outbound_allow)
    except ValueError as error:
        return f"--outbound-allow: {error}"
    if not args.prometheus_url:
        return "--prometheus-url (or PROMETHEUS_URL) is required"
    if args.prometheus_timeout <= timedelta(0):
        return (
            f"--prometheus-timeout must be above 0 (got {format_duration(args.prometheus_timeout)})"
        )
    if args.workers < 1:
        return f"--workers must be at least 1 (got {args.workers})"
    if args.custom_query_workers < 1:
        return f"--custom-query-workers must be at least 1 (got {args.custom_query_workers})"
    try:
        args.tape = Tape.to_file(args.record, SystemClock()) if args.record else None
    except OSError as error:
        return f"--record {args.record}: {error.strerror}"
    if args.tape is not None:  # the settings a replay must use
        args.tape.note(
            "started", tick=args.tick.total_seconds(), settle=args.settle.total_seconds()
        )
    if args.malloc_arenas < 0:
        return f"--malloc-arenas must be 0 or more (got {args.malloc_arenas})"
    if args.kube_qps <= 0 or args.kube_burst < 1:
        return (
            f"--kube-qps must be above 0 and --kube-burst at least 1 "
            f"(got {args.kube_qps} and {args.kube_burst})"
        )
    return None


def _controller_client(args: argparse.Namespace) -> tuple[str, Any]:
    """This replica's name and its API client: rate limited by --kube-qps/--kube-burst, and
    named after the replica, so that the API server's audit log tells replicas apart."""
    me = leader.identity()
    return me, kube.connect(
        args.kubeconfig,
        args.context,
        limiter=kube.RateLimiter(args.kube_qps, args.kube_burst),
        user_agent=f"canary/{me}",
    )


@dataclass(frozen=True)
class _Ports:
    """The ports the reconciler and the measuring tick decide from."""

    store: RolloutStore
    workloads: Workloads
    routers: dict[str, TrafficRouter]
    metrics: MetricProvider


def _controller_ports(
    args: argparse.Namespace, api: Any, cache: KubeCache, store: RolloutStore, tape: Tape | None
) -> _Ports:
    """The cluster's and Prometheus' adapters; with ``--record``, each wrapped to note every
    answer and decision on ``tape``."""
    workloads: Workloads = KubeWorkloads(
        api,
        deployments=CachedLookup(cache.deployments),
        services=CachedLookup(cache.services),
        autoscalers=cache.autoscalers_of,
        owners=cache.rollout_uid,
    )
    routers: dict[str, TrafficRouter] = {
        "HTTPRoute": HTTPRouteRouter(cache.route_objects),
        "TrafficSplit": TrafficSplitRouter(cache.route_objects),
    }
    metrics: MetricProvider = PrometheusMetrics(
        args.prometheus_url,
        timeout=args.prometheus_timeout.total_seconds(),
        connections=args.custom_query_workers + 1,  # the askers and the tick
    )
    if tape is None:
        return _Ports(store, workloads, routers, metrics)
    return _Ports(
        RecordingStore(store, tape),
        RecordingWorkloads(workloads, tape),
        {kind: RecordingRouter(router, tape) for kind, router in routers.items()},
        RecordingMetrics(metrics, tape),
    )


def _limit_arenas(most: int) -> None:
    """``--malloc-arenas``, unless 0 or $MALLOC_ARENA_MAX (which glibc has read) is set."""
    if most and "MALLOC_ARENA_MAX" not in os.environ:
        heap.limit_arenas(most)


def _stopped_by_signals() -> threading.Event:
    """An event set on SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _trim_heap() -> None:
    """Give the C heap's free pages back to the kernel, and say how much went."""
    before = heap.resident_bytes()
    if heap.trim():
        released = (before - heap.resident_bytes()) / 2**20
        structlog.get_logger("canary").debug("heap_trimmed", released_mb=round(released, 1))


def _controller_metrics(
    api: kube.LimitedApiClient,
    store: RolloutStore,
    cache: KubeCache,
    backlog: Callable[[], int],
    asking: Callable[[], int],
) -> ControllerMetrics:
    """The controller's metrics: the store's Rollouts, the caches' sizes, the queue's
    ``backlog`` and the windows ``asking`` for custom queries read at each scrape, and every
    request ``api`` sends (``canary_kube_*``)."""
    registry = ControllerMetrics(store, caches=cache.sizes, queue=backlog, asking=asking)

    def heard(request: kube.Request, code: str, seconds: float, waited: float) -> None:
        labels = (request.verb, request.resource, request.subresource)
        registry.observe_kube_request(labels, code, seconds, waited)

    api.observer = heard
    return registry


def _queued_events(api: kube.LimitedApiClient, registry: ControllerMetrics) -> QueuedEventRecorder:
    """The controller's Events, written outside the reconciles by threads of their own
    (``QueuedEventRecorder.run``), with their backlog and drops in ``registry``."""
    events = QueuedEventRecorder(
        KubeEventRecorder(api),
        dropped=lambda why: registry.events_dropped.labels(why=why).inc(),
        inline=registry.events_inline.inc,
    )
    registry.event_queue.set_function(events.depth)
    return events


def _run(args: argparse.Namespace) -> int:
    """`canary run`: the controller."""
    _configure_logging(args.log_level)
    log = structlog.get_logger("canary")
    if refused := _run_arguments_refused(args):
        print(f"error: {refused}", file=sys.stderr)
        return 2
    _limit_arenas(args.malloc_arenas)  # before any thread starts
    me, api = _controller_client(args)
    clock = SystemClock()
    namespaces: list[str] = args.watch_namespace
    direct = KubeRolloutStore(api, namespaces)
    cache = KubeCache(api, namespaces)
    store = cache.store(direct)

    link_secret = _secret("CANARY_LINK_SECRET", args.link_secret_file)
    slack, slack_web = _slack(args)
    # The queue's backlog and the windows waiting for custom queries, read at each scrape
    # (late-bound: the controller comes below).
    registry = _controller_metrics(
        api,
        store,
        cache,
        lambda: controller.queue.backlog(),  # noqa: PLW0108
        lambda: len(controller.asking),
    )
    deliveries = OutboxWorker(
        store,
        PolicyNotifier(
            functools.partial(_notifications, store),
            KubeSecrets(api).value,
            api_url=args.api_url,
            link_secret=link_secret,
            interactive=slack is not None,
            delivered=registry.observe_delivery,
            policy=args.outbound_allow,
            web=slack_web,
            remember=MessageLedger(store).remember,
        ),
        clock,
    )
    events = _queued_events(api, registry)
    ports = _controller_ports(args, api, cache, store, args.tape)
    reconciler = GuardedReconciler(
        store=ports.store,
        workloads=ports.workloads,
        routers=ports.routers,
        events=events,
        clock=clock,
        # A hook answered: reconcile its Rollout now (late-bound: the controller comes below).
        hooks=HTTPHooks(args.outbound_allow, done=lambda ref: controller.queue.add(ref)),  # noqa: PLW0108
    )
    controller = Controller(
        reconciler if args.tape is None else RecordingReconciler(reconciler, args.tape),
        store,
        InstrumentedMetrics(ports.metrics, registry),
        clock,
        namespace=namespaces[0] if len(namespaces) == 1 else None,
        settle=args.settle,
        tick=args.tick,
        on_result=lambda result, seconds: registry.observe_reconcile(
            seconds, result.error, result.finished
        ),
        on_notify=deliveries.wake,
        on_wait=registry.observe_wait,
    )
    stop = _stopped_by_signals()
    scheduler = Scheduler()
    leading = threading.Event()
    workers: list[threading.Thread] = []
    server = api_server.start(
        api_app.build(
            api_app.Api(
                store=direct,
                annotator=direct,
                create=direct.create,
                access=KubeAccessReview(api),
                ready=lambda: leading.is_set() and cache.ready.is_set(),
                metrics=registry,
                alive=lambda: all(worker.is_alive() for worker in workers),
                link_secret=link_secret,
                slack=slack,
            )
        ),
        host=args.http_address,
        port=args.http_port,
    )

    def start() -> None:
        for every, job, name in (
            (args.tick, controller.measure, "measure"),
            (timedelta(seconds=60), controller.resync, "resync"),
            (timedelta(seconds=60), _trim_heap, "heap"),
        ):
            scheduler.every(every, job, name)
        retention = Retention(
            store,
            direct,
            keep=args.keep_finished,
            namespace=namespaces[0] if len(namespaces) == 1 else None,  # else: the store's scope
            on_deleted=registry.deleted.inc,
        )
        scheduler.every(timedelta(seconds=60), retention.run, "retention")
        scheduler.start()
        start_thread(lambda: cache.run(controller.on_change, stop), "informers")
        cache.wait_synced(SYNC_SECONDS)  # an unsynced cache would say Rollouts do not exist
        for i in range(args.workers):
            workers.append(start_thread(lambda: controller.run_worker(stop), f"worker-{i}"))
        workers.extend(
            start_thread(lambda: controller.run_asker(stop), f"asker-{i}")
            for i in range(args.custom_query_workers)
        )
        workers.append(start_thread(lambda: deliveries.run(stop), "outbox"))
        workers.extend(
            start_thread(lambda: events.run(stop), f"events-{i}") for i in range(WRITERS)
        )
        controller.resync()
        leading.set()
        log.info("controller_started", tick=str(args.tick), namespace=",".join(namespaces) or "*")

    try:
        if args.leader_elect:
            lost = leader.lead(
                lock=KubeLease(api, args.lease_namespace),
                me=me,
                clock=clock,
                stop=stop,
                on_started=start,
                ttl=args.lease_duration,
                renew=args.lease_duration / 3,
            )
            return 1 if lost else 0
        start()
        stop.wait()
        return 0
    finally:
        stop.set()
        scheduler.stop()
        server.stop()
        log.info("controller_stopped", reconciles=controller.reconciles)


def _dashboard(args: argparse.Namespace) -> int:
    """`canary dashboard`: the dashboard on this machine, as the kubeconfig's user."""
    _configure_logging("warning")
    api = kube.connect(args.kubeconfig, args.context)
    store = KubeRolloutStore(api)
    secret = secrets.token_urlsafe(24)
    server = api_server.start(
        api_app.build(
            api_app.Api(
                store=store,
                annotator=store,
                create=store.create,
                access=KubeSelfReview(api, secret),
                ready=lambda: True,
                metrics=ControllerMetrics(),
            )
        ),
        host=args.address,
        port=args.port,
    )
    stop = _stopped_by_signals()
    # The secret rides in the fragment, which browsers never send; the page keeps it in the
    # tab's session storage.
    print(f"dashboard: {server.url}/#token={secret}  (Ctrl-C stops it)", flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


def _add_dashboard_command(sub: Any) -> None:
    cmd = sub.add_parser(
        "dashboard",
        help="serve the dashboard locally, as the kubeconfig's user",
        description="Serve the web dashboard on this machine, reading and acting with the "
        "kubeconfig's own credentials and RBAC rights. Prints a URL with a one-time secret: "
        "only a browser that opens it may use the dashboard.",
    )
    _cluster_options(cmd, top=False)
    cmd.add_argument("--address", default="127.0.0.1", help="address to listen on")
    cmd.add_argument("--port", type=int, default=8081, help="port to listen on (0: any)")
    cmd.set_defaults(func=_dashboard)


def _add_run_command(sub: Any) -> None:
    cmd = sub.add_parser(
        "run",
        help="run the controller",
        description="Run the canary controller: watch Rollouts, shift traffic, judge each step "
        "on Prometheus, promote or roll back. Logs are JSON lines on stderr.",
    )
    cmd.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="path to the kubeconfig")
    cmd.add_argument("--context", default=argparse.SUPPRESS, help="kubeconfig context")
    cmd.add_argument(
        "--prometheus-url",
        default=os.environ.get("PROMETHEUS_URL"),
        help="Prometheus that scrapes the Linkerd proxies (default: $PROMETHEUS_URL)",
    )
    cmd.add_argument(
        "--prometheus-timeout",
        type=_argument_type(parse_duration),
        default=timedelta(seconds=TIMEOUT_SECONDS),
        metavar="DURATION",
        help=f"how long a Prometheus query may take (default {TIMEOUT_SECONDS:.0f}s). A query "
        "that times out is not sent again: its tick is lost. Raise it when "
        'canary_prometheus_query_duration_seconds{query="snapshot"} nears it',
    )
    cmd.add_argument(
        "--watch-namespace",
        action="extend",
        default=[],
        type=_namespaces,
        metavar="NS[,NS...]",
        help="act only on Rollouts in these namespaces (repeatable or comma-separated; "
        "default: every namespace). A namespaced install's RBAC covers only these.",
    )
    cmd.add_argument(
        "--tick",
        type=_argument_type(parse_duration),
        default=timedelta(seconds=2),
        help="how often to query Prometheus for every Rollout being judged (default 2s: a "
        "failing canary is rolled back soon after a scrape shows it)",
    )
    cmd.add_argument(
        "--settle",
        type=_argument_type(parse_duration),
        default=timedelta(seconds=12),
        help="after a weight change, ignore counts for this long: Prometheus must scrape "
        "traffic at the new weight first (default 12s; at least the scrape interval)",
    )
    cmd.add_argument(
        "--no-leader-elect",
        dest="leader_elect",
        action="store_false",
        help="act without taking the Lease (only when a single replica runs)",
    )
    cmd.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE", "canary-system"),
        help="namespace of the leader-election Lease (default: $POD_NAMESPACE or canary-system)",
    )
    cmd.add_argument(
        "--lease-duration",
        type=_argument_type(parse_duration),
        default=timedelta(seconds=15),
        help="how long the Lease holds without renewal; the leader renews every third of it "
        "and stops leading once it could not renew for this long (default 15s)",
    )
    cmd.add_argument(
        "--keep-finished",
        type=int,
        default=20,
        metavar="N",
        help="keep the newest N finished Rollouts per target, and always the last Succeeded "
        "one; delete older ones (default 20; 0 deletes nothing, e.g. when GitOps owns them)",
    )
    cmd.add_argument(
        "--workers",
        type=int,
        default=4,
        metavar="N",
        help="Rollouts reconciled at once (default 4; never the same Rollout twice at once)",
    )
    cmd.add_argument(
        "--custom-query-workers",
        type=int,
        default=ASKERS,
        metavar="N",
        help=f"threads asking Rollouts' custom metric queries, apart from the workers (default "
        f"{ASKERS}): a slow query holds one of them, never the measuring tick nor a worker",
    )
    cmd.add_argument(
        "--malloc-arenas",
        type=int,
        default=2,
        metavar="N",
        help="most glibc malloc arenas the controller's threads share (default 2; 0 keeps "
        "glibc's 8 a core; $MALLOC_ARENA_MAX, when set, wins). Fewer arenas hold fewer "
        "free pages; free pages go back to the kernel every minute either way",
    )
    cmd.add_argument(
        "--kube-qps",
        type=float,
        default=20.0,
        help="requests a second to the Kubernetes API server, on average (default 20)",
    )
    cmd.add_argument(
        "--kube-burst",
        type=int,
        default=30,
        help="requests to the Kubernetes API server allowed in a burst (default 30)",
    )
    cmd.add_argument("--http-address", default="0.0.0.0", help="address of the HTTP API")
    cmd.add_argument("--http-port", type=int, default=8080, help="port of the HTTP API (0: any)")
    cmd.add_argument(
        "--link-secret-file",
        help="key that signs the links of chat buttons (or $CANARY_LINK_SECRET)",
    )
    cmd.add_argument("--api-url", help="public URL of the HTTP API, for links in chat messages")
    cmd.add_argument(
        "--slack-signing-secret-file",
        help="the Slack app's signing secret (or $CANARY_SLACK_SIGNING_SECRET): serves "
        "/slack/actions and /slack/commands and makes message buttons interactive",
    )
    cmd.add_argument(
        "--slack-identities",
        metavar="FILE",
        help="YAML mapping Slack users and user groups to Kubernetes users and groups "
        "(re-read when it changes; see docs/chatops.md)",
    )
    cmd.add_argument(
        "--slack-bot-token-file",
        help="the Slack app's bot token (or $CANARY_SLACK_BOT_TOKEN): posts messages to the "
        "channels policies name and updates them in place; reads user groups",
    )
    cmd.add_argument(
        "--slack-api-url", default="https://slack.com/api/", help=argparse.SUPPRESS
    )  # tests point it at a Slack stand-in
    cmd.add_argument(
        "--outbound-allow",
        action="append",
        default=[],
        metavar="HOST|.DOMAIN|CIDR",
        help="non-public receivers notifications may call (repeat or comma-separate; "
        "loopback, link-local and metadata addresses are never called)",
    )
    cmd.add_argument(
        "--record",
        metavar="FILE",
        help="append what the controller saw (Prometheus answers, Deployments, routes) and "
        "decided to FILE, one JSON line each, for replay on the digital twin (bench.replay)",
    )
    cmd.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    cmd.set_defaults(func=_run)


def _loadtest(args: argparse.Namespace) -> int:
    """`canary loadtest`: send a bounded load, print a summary; 1 when too many failed."""
    load = loadtest.Load(
        url=args.url,
        rate=args.rate,
        duration=args.duration.total_seconds(),
        concurrency=args.concurrency,
        timeout=args.timeout.total_seconds(),
    )
    problems = load.problems()
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    tally = loadtest.run(load)
    print(loadtest.summary(load, tally))
    failed = 100 * tally.failed / max(1, tally.requests)
    if failed > args.max_failures:
        print(f"error: {failed:.1f}% failed, above --max-failures {args.max_failures:g}%")
        return 1
    return 0


def _add_loadtest_command(sub: Any) -> None:
    cmd = sub.add_parser(
        "loadtest",
        help="send a steady HTTP load to a URL (a pre-rollout Job for quiet services)",
        description="Send RATE requests a second to URL for DURATION from CONCURRENCY "
        "connections and print a summary. Exits 1 when more than --max-failures percent "
        "failed (5xx or no answer), 2 on bad arguments. See docs/hooks.md.",
    )
    cmd.add_argument("url", metavar="URL", help="e.g. http://podinfo-canary.test:9898/")
    cmd.add_argument("--rate", type=float, default=10.0, help="requests a second (max 1000)")
    cmd.add_argument(
        "--duration", type=parse_duration, default=parse_duration("1m"), help="e.g. 2m (max 1h)"
    )
    cmd.add_argument("--concurrency", type=int, default=4, help="connections (1-64)")
    cmd.add_argument(
        "--timeout", type=parse_duration, default=parse_duration("5s"), help="per request"
    )
    cmd.add_argument(
        "--max-failures", type=float, default=100.0, help="percent failed before exit 1"
    )
    cmd.set_defaults(func=_loadtest)


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
    _add_loadtest_command(sub)
    _add_cluster_commands(sub)
    _add_run_command(sub)
    _add_dashboard_command(sub)
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
