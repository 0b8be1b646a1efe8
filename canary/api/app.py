"""canary's HTTP API as an ASGI app (Starlette): health, readiness, the controller's metrics,
the Rollouts for a dashboard, and the commands the CLI's approve/promote/abort/retry mirror.

    GET  /                             the dashboard's page (no data: its script asks for the
                                       fragments below with the person's token)
    GET  /ui/history                   HTML: releases per target, newest first (?namespace=NS)
    GET  /ui/namespaces/NS/rollouts/NAME   HTML: one release, its charts and the buttons the
                                       caller may use (``canary.api.pages``)
    GET  /healthz                      200 while the process serves and its worker runs, else 503
    GET  /readyz                       200 when ``ready()`` (leader elected, watches up), else 503
    GET  /metrics                      Prometheus text (``canary.api.metrics``)
    GET  /api/v1/rollouts              {"items": [summary, ...]}   (?namespace=NS to filter)
    GET  /api/v1/namespaces/NS/rollouts/NAME          the Rollout as stored
    POST /slack/actions, /slack/commands   Slack's buttons and slash command, signed by Slack
                                       (``canary.api.slack``); only when Slack is configured
    POST /api/v1/namespaces/NS/rollouts/NAME/KIND     KIND in approve|promote|abort|retry|
                                       pause|resume, body {"comment": "..."} → 202, 403, 404, 409
    POST /api/v1/namespaces/NS/deployments/NAME/undo  a Rollout back to the Deployment's previous
                                       Succeeded release (``canary.core.undo``); needs ``create``
                                       on rollouts, like any release → 201, 403, 409, 422
    GET  /api/v1/namespaces/NS/rollouts/NAME/KIND?t=TICKET   the page a signed chat link
                                       (``canary.core.links``) opens: it asks for a token, and
                                       POSTs to the same URL; a link's ticket acts at most once

Every ``/api/`` and ``/ui/`` request needs ``Authorization: Bearer <Kubernetes token>`` (or the
``X-Forwarded-Access-Token`` an OAuth2 proxy adds): the cluster says who holds it (TokenReview)
and whether RBAC lets them act (SubjectAccessReview, ``canary.core.access``). Lists show only
the namespaces the caller may list; the actor of a command is the reviewed identity. Every error
is a JSON problem (``canary.api.problems``).

Built by ``build``; served by ``canary.api.server``. Talks to the cluster only through ports;
blocking port calls run on a bounded pool of worker threads. Must not import adapters.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, get_args

import anyio
import anyio.to_thread
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from canary.api import pages, problems
from canary.api.access import Gate
from canary.api.metrics import CONTENT_TYPE, ControllerMetrics
from canary.api.problems import Problem
from canary.api.slack import Slack, SlackEndpoints
from canary.core import access, chat, commands, links, undo
from canary.core.vocabulary import Command, CommandKind
from canary.errors import Conflict, InvalidSpec
from canary.model.policy import Analysis
from canary.model.rollout import Rollout
from canary.ports import AccessReview, Annotator, Identity, Ref, RolloutStore

log = structlog.get_logger("canary.api")

KINDS: frozenset[str] = frozenset(get_args(CommandKind))
T = TypeVar("T")


class CommandBody(BaseModel):
    """The body of a command: why. Who gives it is the caller's reviewed identity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: str = Field(default="", max_length=1024)


@dataclass
class Limits:
    """What one request may cost."""

    max_body: int = 64 * 1024
    """Bytes a request body may have."""
    body_timeout: float = 10.0
    """Seconds a client has to send the whole body."""
    workers: int = 8
    """Threads that run blocking calls (store, reviews) at once; more requests wait."""


@dataclass
class Api:
    """What the handlers need: the ports, the settings and the clock."""

    store: RolloutStore
    annotator: Annotator
    access: AccessReview
    ready: Callable[[], bool]
    metrics: ControllerMetrics
    create: Callable[[Rollout], Rollout] | None = None
    """Creates a Rollout (an undo); None: this server creates none (undo answers 501)."""
    alive: Callable[[], bool] = lambda: True
    """Whether the controller's worker thread still runs (liveness: a dead worker restarts)."""
    link_secret: str | None = None
    """The chat key: signs the tickets of chat buttons and links (``canary.core.chat``)."""
    slack: Slack | None = None
    """The Slack app (its endpoints are served only when it is configured)."""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    limits: Limits = field(default_factory=Limits)


def _time(value: datetime | None) -> str | None:
    """A timestamp as Kubernetes writes it (RFC 3339, UTC, Z)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def summary(rollout: Rollout) -> dict[str, Any]:
    """What a dashboard lists about a Rollout."""
    meta, status = rollout.metadata, rollout.status
    return {
        "namespace": meta.namespace,
        "name": meta.name,
        "target": rollout.spec.target_ref.name,
        "phase": status.phase,
        "canaryWeight": status.canary_weight,
        "currentStepIndex": status.current_step_index,
        "message": status.message,
        "createdAt": _time(meta.creation_timestamp),
        "startedAt": _time(status.started_at),
        "finishedAt": _time(status.finished_at),
    }


_BUTTONS: tuple[CommandKind, ...] = ("approve", "promote", "abort", "retry")
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'sha256-{pages.SCRIPT_HASH}'; "
        "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


def _namespace(text: str) -> str:
    if not access.is_namespace(text):
        raise Problem(400, f"{text!r} is not a valid namespace name (RFC 1123 label)")
    return text


def _ref(request: Request) -> Ref:
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    if not access.is_name(name):
        raise Problem(400, f"{name!r} is not a valid Rollout name (RFC 1123 subdomain)")
    return Ref(_namespace(namespace), name)


def _kind(request: Request) -> CommandKind:
    kind = request.path_params["kind"]
    if kind not in KINDS:
        raise Problem(404, f"no such command: {kind} (one of {', '.join(sorted(KINDS))})")
    return kind  # type: ignore[no-any-return]


def _not_found(ref: Ref) -> Problem:
    return Problem(404, f'rollouts.canary.dev "{ref.name}" not found in namespace {ref.namespace}')


_CONFIRM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>canary: {kind} {namespace}/{name}</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em">
<h1>{kind} rollout {namespace}/{name}?</h1>
<p>Nothing happens until you confirm as yourself. Behind the cluster's sign-in proxy, leave the
token empty; otherwise paste a Kubernetes token (<code>kubectl create token …</code>).</p>
<form id="confirm">
<p><label>Token <input id="token" type="password" autocomplete="off" size="40"></label></p>
<p><label>Comment <input id="comment" maxlength="1024" size="40"></label></p>
<p><button type="submit">{kind}</button></p>
</form>
<p id="result" role="status"></p>
<script>
const form = document.getElementById("confirm");
const token = document.getElementById("token");
token.value = sessionStorage.getItem("canary-token") || "";
form.addEventListener("submit", async (event) => {{
  event.preventDefault();
  const headers = {{"Content-Type": "application/json"}};
  if (token.value) {{
    sessionStorage.setItem("canary-token", token.value);
    headers["Authorization"] = "Bearer " + token.value;
  }}
  const comment = document.getElementById("comment").value;
  const reply = await fetch(location.pathname + location.search, {{
    method: "POST", headers, body: JSON.stringify({{comment}})}});
  const answer = await reply.json();
  document.getElementById("result").textContent =
    reply.ok ? `${{answer.command}} given by ${{answer.actor}}` : answer.detail;
}});
</script>
</body></html>
"""


class _Handlers:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.gate = Gate(api.access)
        self.limiter: anyio.CapacityLimiter | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call on the bounded worker pool."""
        assert self.limiter is not None
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    async def identity(self, request: Request) -> Identity:
        header = request.headers.get("authorization")
        forwarded = request.headers.get("x-forwarded-access-token")
        if header is None and forwarded is not None:
            header = f"Bearer {forwarded}"
        return await self.call(self.gate.identify, header)

    async def body(self, request: Request) -> bytes:
        limit = self.api.limits.max_body
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdecimal() and int(declared) > limit:
            raise Problem(413, f"the body may have at most {limit} bytes")
        chunks, size = [], 0
        try:
            with anyio.fail_after(self.api.limits.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise Problem(413, f"the body may have at most {limit} bytes")
                    chunks.append(chunk)
        except TimeoutError as error:
            raise Problem(
                408,
                f"the body did not arrive within {self.api.limits.body_timeout:g}s",
                headers={"Connection": "close"},
            ) from error
        return b"".join(chunks)

    # -- endpoints -------------------------------------------------------------------------

    async def healthz(self, _: Request) -> Response:
        if not self.api.alive():
            raise Problem(503, "worker stopped: the reconcile worker thread is gone")
        return PlainTextResponse("ok\n")

    async def readyz(self, _: Request) -> Response:
        if not await self.call(self.api.ready):
            raise Problem(503, "not ready: not the leader yet, or the watches are not up")
        return PlainTextResponse("ok\n")

    async def metrics(self, _: Request) -> Response:
        text = await self.call(self.api.metrics.exposition)
        return Response(text, media_type=CONTENT_TYPE)

    async def _listed(self, request: Request) -> tuple[Identity, list[Rollout]]:
        who = await self.identity(request)
        wanted = request.query_params.get("namespace")
        if wanted is not None:
            namespace = _namespace(wanted)
            await self.call(self.gate.require, who, access.LIST, namespace)
            return who, list(await self.call(self.api.store.list, namespace))
        return who, await self.call(self._readable, who)

    async def rollouts(self, request: Request) -> Response:
        _, found = await self._listed(request)
        return JSONResponse({"items": [summary(r) for r in found]})

    async def dashboard(self, _: Request) -> Response:
        return HTMLResponse(pages.SHELL, headers=_PAGE_HEADERS)

    async def history(self, request: Request) -> Response:
        who, found = await self._listed(request)
        page = pages.history_page(found, self.api.clock(), who.username)
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    async def release(self, request: Request) -> Response:
        ref = _ref(request)
        who = await self.identity(request)
        await self.call(self.gate.require, who, access.READ, ref.namespace)
        found = await self.call(self.api.store.get, ref)
        if found is None:
            raise _not_found(ref)
        analysis, allowed = await self.call(self._release_context, found, who)
        page = pages.release_page(found, analysis, self.api.clock(), who.username, allowed)
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    def _release_context(
        self, rollout: Rollout, who: Identity
    ) -> tuple[Analysis | None, list[CommandKind]]:
        """The analysis whose limits the charts draw (the Rollout's own, else its policy's),
        and the commands that make sense now and that RBAC lets ``who`` give (blocking)."""
        analysis = rollout.spec.analysis
        if analysis is None and rollout.spec.policy_ref is not None:
            policy_ref = Ref(rollout.metadata.namespace, rollout.spec.policy_ref.name)
            policy = self.api.store.policy(policy_ref)
            analysis = policy.spec.analysis if policy is not None else None
        namespace = rollout.metadata.namespace
        allowed: list[CommandKind] = [
            kind
            for kind in _BUTTONS
            if commands.refusal(kind, rollout.status.phase) is None
            and self.gate.allowed(who, access.command_permission(kind), namespace)
        ]
        return analysis, allowed

    def _readable(self, who: Identity) -> list[Rollout]:
        """Every Rollout in the namespaces ``who`` may list (blocking)."""
        every = self.api.store.list()
        if self.gate.allowed(who, access.LIST, None):
            return list(every)
        namespaces = {r.metadata.namespace for r in every}
        readable = {ns for ns in namespaces if self.gate.allowed(who, access.LIST, ns)}
        return [r for r in every if r.metadata.namespace in readable]

    async def rollout(self, request: Request) -> Response:
        ref = _ref(request)
        who = await self.identity(request)
        await self.call(self.gate.require, who, access.READ, ref.namespace)
        found = await self.call(self.api.store.get, ref)
        if found is None:
            raise _not_found(ref)
        return JSONResponse(found.wire())

    def _link(self, request: Request, ref: Ref, kind: CommandKind) -> chat.Ticket | None:
        """The ticket of a signed link (query ``t``), None without one; Problem 403 when it
        is not valid here."""
        text = request.query_params.get("t")
        if text is None:
            return None
        found = links.ticket(
            self.api.link_secret or "", text, namespace=ref.namespace, name=ref.name, kind=kind
        )
        if found is None:
            raise Problem(403, "this link is not valid, or it has expired")
        return found

    async def confirm(self, request: Request) -> Response:
        ref, kind = _ref(request), _kind(request)
        ticket = self._link(request, ref, kind)
        if ticket is None:
            raise Problem(405, f"give a command with POST {request.url.path}")
        rollout = await self.call(self.api.store.get, ref)
        why = chat.refusal(ticket, rollout, self.api.clock())
        if why is not None:
            raise Problem(403, f"this link cannot be used: {why}")
        page = _CONFIRM.format(
            kind=html.escape(kind), namespace=html.escape(ref.namespace), name=html.escape(ref.name)
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def _comment(self, request: Request) -> str:
        raw = await self.body(request)
        try:
            return CommandBody.model_validate_json(raw.strip() or b"{}").comment
        except ValidationError as error:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
                for e in error.errors(include_url=False, include_context=False, include_input=False)
            ]
            raise Problem(400, 'send a JSON object: {"comment": "..."}', errors=errors) from error

    async def undo(self, request: Request) -> Response:
        namespace = _namespace(request.path_params["namespace"])
        target = request.path_params["name"]
        if not access.is_name(target):
            raise Problem(400, f"{target!r} is not a valid Deployment name (RFC 1123 subdomain)")
        who = await self.identity(request)
        await self.call(self.gate.require, who, access.CREATE, namespace)
        comment = await self._comment(request)
        document = await self.call(self._undo, namespace, target, who.username, comment)
        return JSONResponse(document, 201)

    def _undo(self, namespace: str, target: str, actor: str, comment: str) -> dict[str, Any]:
        """Create the Rollout that goes back to the previous release (blocking)."""
        if self.api.create is None:
            raise Problem(501, "this server does not create Rollouts: use canary undo")
        try:
            undoing = undo.choose(self.api.store.list(namespace), target)
            rollout = undo.build(undoing, now=self.api.clock(), actor=actor, comment=comment)
            made = self.api.create(rollout)
        except ValueError as error:
            raise Problem(409, f"cannot undo deploy/{target}: {error}") from error
        except Conflict as error:
            raise Problem(409, f"cannot undo deploy/{target} now: {error}; try again") from error
        except InvalidSpec as error:
            raise Problem(422, f"cannot undo deploy/{target}: {error}") from error
        earlier = undoing.earlier.metadata.name
        log.info("undo_created", rollout=made.metadata.name, undo_of=earlier, actor=actor)
        return {
            "rollout": f"{namespace}/{made.metadata.name}",
            "undoOf": earlier,
            "actor": actor,
        }

    async def command(self, request: Request) -> Response:
        ref, kind = _ref(request), _kind(request)
        who = await self.identity(request)
        await self.call(self.gate.require, who, access.command_permission(kind), ref.namespace)
        comment = await self._comment(request)
        ticket = self._link(request, ref, kind)
        if ticket is not None:
            await self.call(self._use_link, ref, ticket, who.username)
        status, document = await self.call(self._give, ref, kind, who.username, comment)
        return JSONResponse(document, status)

    def _use_link(self, ref: Ref, ticket: chat.Ticket, actor: str) -> None:
        """Record a link's ticket as used, once (blocking); Problem 409 when it cannot act."""
        for _ in range(3):
            rollout = self.api.store.get(ref)
            why = chat.refusal(ticket, rollout, self.api.clock())
            if why is not None:
                raise Problem(409, f"this link cannot be used: {why}")
            assert rollout is not None
            try:
                status = chat.with_used(rollout.status, ticket, actor, self.api.clock())
                self.api.store.write_status(rollout, status)
            except Conflict:
                continue
            return
        raise Problem(409, f"rollout {ref} is changing too fast; try again")

    def _give(
        self, ref: Ref, kind: CommandKind, actor: str, comment: str
    ) -> tuple[int, dict[str, Any]]:
        """Write a command on a Rollout, refusing what makes no sense now (blocking)."""
        rollout = self.api.store.get(ref)
        if rollout is None:
            raise _not_found(ref)
        reason = commands.refusal(kind, rollout.status.phase)
        if reason is not None:
            raise Problem(409, f"cannot {kind} rollout {ref}: {reason}")
        command = Command(kind, self.api.clock(), actor, comment)
        for key, value in commands.encode(command).items():
            self.api.annotator.annotate(ref, key, value)
        self.api.metrics.commands.labels(kind=kind).inc()
        log.info("command_given", rollout=str(ref), kind=kind, actor=actor)
        return 202, {
            "rollout": str(ref),
            "command": kind,
            "actor": actor,
            "at": commands.timestamp(command.at),
        }


def build(api: Api) -> Starlette:
    """The ASGI app serving ``api``."""
    handlers = _Handlers(api)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        handlers.limiter = anyio.CapacityLimiter(api.limits.workers)
        yield

    one = "/api/v1/namespaces/{namespace}/rollouts/{name}"
    routes = [
        Route("/", handlers.dashboard, methods=["GET"]),
        Route("/ui/history", handlers.history, methods=["GET"]),
        Route("/ui/namespaces/{namespace}/rollouts/{name}", handlers.release, methods=["GET"]),
        Route("/healthz", handlers.healthz, methods=["GET"]),
        Route("/readyz", handlers.readyz, methods=["GET"]),
        Route("/metrics", handlers.metrics, methods=["GET"]),
        Route("/api/v1/rollouts", handlers.rollouts, methods=["GET"]),
        Route(one, handlers.rollout, methods=["GET"]),
        Route(one + "/{kind}", handlers.command, methods=["POST"]),
        Route(one + "/{kind}", handlers.confirm, methods=["GET"]),
        Route(
            "/api/v1/namespaces/{namespace}/deployments/{name}/undo",
            handlers.undo,
            methods=["POST"],
        ),
    ]
    if api.slack is not None:
        slack = SlackEndpoints(
            api.slack,
            api.store,
            handlers.gate,
            api.link_secret,
            api.clock,
            handlers.call,
            handlers.body,
            handlers._give,
        )
        routes.append(Route("/slack/actions", slack.actions, methods=["POST"]))
        routes.append(Route("/slack/commands", slack.commands, methods=["POST"]))
    return Starlette(
        routes=routes,
        exception_handlers=problems.handlers,
        lifespan=lifespan,
    )
