"""canary's HTTP API: health, readiness, Prometheus metrics, the Rollout list for a dashboard,
and the command endpoints that the CLI's approve/promote/abort/retry mirror.

    GET  /healthz                      200 while the process serves and its worker runs, else 503
    GET  /readyz                       200 when ``ready()`` (leader elected, watches up), else 503
    GET  /metrics                      Prometheus text: canary_rollouts{namespace,phase}, counters
    GET  /api/v1/rollouts              {"items": [summary, ...]}   (?namespace=NS to filter)
    GET  /api/v1/namespaces/NS/rollouts/NAME          the Rollout as stored
    POST /api/v1/namespaces/NS/rollouts/NAME/KIND     KIND in approve|promote|abort|retry,
                                       body {"actor": "...", "comment": "..."} → 202, 404, 409
    GET  /api/v1/namespaces/NS/rollouts/NAME/KIND?expires=…&sig=…   a confirmation page for a
                                       signed chat link (``canary.core.links``); its form POSTs

Authentication: when a token is configured (``canary run --api-token-file`` or the
``CANARY_API_TOKEN`` environment variable, wired by the composition root), every ``/api/``
request needs ``Authorization: Bearer <token>``, except a POST carrying a valid signed link.
Without a token the API is open: bind it to a trusted network only.

Started by the composition root in a daemon thread (``start``). Talks to the cluster only
through ``ports.RolloutStore`` and ``ports.Annotator``; must not import adapters.
"""

from __future__ import annotations

import hmac
import html
import json
import re
import threading
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast, get_args
from urllib.parse import parse_qs, urlsplit

import structlog

from canary.api.metrics import Family, Registry, render
from canary.core import commands, links
from canary.core.vocabulary import Command, CommandKind
from canary.errors import CanaryError, TransientError
from canary.model.rollout import Rollout
from canary.ports import Annotator, Ref, RolloutStore

log = structlog.get_logger("canary.api")

MAX_BODY = 64 * 1024
_ROLLOUT = re.compile(r"^/api/v1/namespaces/([^/]+)/rollouts/([^/]+)$")
_COMMAND = re.compile(r"^/api/v1/namespaces/([^/]+)/rollouts/([^/]+)/([a-z]+)$")
_KINDS = frozenset(get_args(CommandKind))


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


@dataclass
class Api:
    """What the handlers need: the ports, the settings and the clock."""

    store: RolloutStore
    annotator: Annotator
    ready: Callable[[], bool]
    registry: Registry
    alive: Callable[[], bool] = lambda: True
    """Whether the controller's worker thread still runs (liveness: a dead worker restarts)."""
    token: str | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def rollout_gauge(self) -> Family:
        """canary_rollouts{namespace,phase}, counted now from the store."""
        tally = Tally((r.metadata.namespace, r.status.phase) for r in self.store.list())
        samples = tuple(
            ({"namespace": ns, "phase": phase}, float(n))
            for (ns, phase), n in sorted(tally.items())
        )
        return Family("canary_rollouts", "gauge", "Rollouts by namespace and phase.", samples)

    def authorized(self, header: str | None) -> bool:
        """Whether a request with this Authorization header may use /api/."""
        if not self.token:
            return True
        scheme, _, given = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), self.token)

    def give(
        self, ref: Ref, kind: CommandKind, actor: str, comment: str
    ) -> tuple[int, dict[str, Any]]:
        """Write a command on a Rollout, refusing what makes no sense now. (status, body)"""
        rollout = self.store.get(ref)
        if rollout is None:
            return 404, {"error": f'rollouts.canary.dev "{ref.name}" not found'}
        reason = commands.refusal(kind, rollout.status.phase)
        if reason is not None:
            return 409, {"error": f"cannot {kind} rollout {ref}: {reason}"}
        command = Command(kind, self.clock(), actor, comment)
        for key, value in commands.encode(command).items():
            self.annotator.annotate(ref, key, value)
        self.registry.commands.inc(kind=kind)
        log.info("command_given", rollout=str(ref), kind=kind, actor=actor)
        return 202, {
            "rollout": str(ref),
            "command": kind,
            "actor": actor,
            "at": commands.timestamp(command.at),
        }


_CONFIRM = """<!doctype html>
<html><head><meta charset="utf-8"><title>canary: {kind} {name}</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>{kind} rollout {namespace}/{name}?</h1>
<p>The rollout is <b>{phase}</b>. {message}</p>
<form method="post">
<p><label>Your name <input name="actor" required></label></p>
<p><label>Comment <input name="comment" size="40"></label></p>
<p><button type="submit">{kind}</button></p>
</form></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    server_version = "canary"
    protocol_version = "HTTP/1.1"
    api: Api  # set on the subclass made by ``start``

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged one by one; commands and errors are."""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode() + b"\n", "application/json")

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _html(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8")

    def _handle(self, route: Callable[[], None]) -> None:
        try:
            route()
        except TransientError as error:
            log.warning("api_request_failed", path=self.path, error=str(error))
            self._json(503, {"error": str(error)})
        except CanaryError as error:
            log.error("api_request_failed", path=self.path, error=str(error))
            self._json(500, {"error": str(error)})

    def do_GET(self) -> None:
        """Health, readiness, metrics, the Rollout list, one Rollout, a confirmation page."""
        self._handle(self._get)

    def do_POST(self) -> None:
        """A command on a Rollout."""
        self._handle(self._post)

    def _get(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/healthz":
            alive = self.api.alive()
            self._text(200 if alive else 503, "ok\n" if alive else "worker stopped\n")
        elif url.path == "/readyz":
            ready = self.api.ready()
            self._text(200 if ready else 503, "ok\n" if ready else "not ready\n")
        elif url.path == "/metrics":
            families = [self.api.rollout_gauge(), *self.api.registry.collect()]
            self._send(200, render(families).encode(), "text/plain; version=0.0.4; charset=utf-8")
        elif (match := _COMMAND.match(url.path)) and "sig" in query:
            self._confirm(Ref(match[1], match[2]), match[3], query)
        elif not self.api.authorized(self.headers.get("Authorization")):
            self._json(401, {"error": "unauthorized: send Authorization: Bearer <token>"})
        elif url.path == "/api/v1/rollouts":
            rollouts = self.api.store.list(query.get("namespace"))
            self._json(200, {"items": [summary(r) for r in rollouts]})
        elif match := _ROLLOUT.match(url.path):
            found = self.api.store.get(Ref(match[1], match[2]))
            if found is None:
                self._json(404, {"error": f'rollouts.canary.dev "{match[2]}" not found'})
            else:
                self._json(200, found.wire())
        else:
            self._json(404, {"error": f"no such endpoint: GET {url.path}"})

    def _link_ok(self, ref: Ref, kind: str, query: dict[str, str]) -> bool:
        return links.valid(
            self.api.token or "",
            namespace=ref.namespace,
            name=ref.name,
            kind=kind,
            expires=query.get("expires", ""),
            sig=query.get("sig", ""),
            now=self.api.clock(),
        )

    def _confirm(self, ref: Ref, kind: str, query: dict[str, str]) -> None:
        if kind not in _KINDS or not self._link_ok(ref, kind, query):
            self._html(403, "<p>This link is not valid (or has expired).</p>\n")
            return
        rollout = self.api.store.get(ref)
        if rollout is None:
            self._html(404, f"<p>Rollout {html.escape(str(ref))} no longer exists.</p>\n")
            return
        page = _CONFIRM.format(
            kind=html.escape(kind),
            namespace=html.escape(ref.namespace),
            name=html.escape(ref.name),
            phase=html.escape(rollout.status.phase),
            message=html.escape(rollout.status.message),
        )
        self._html(200, page)

    def _body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        raw = self.rfile.read(length) if length else b""
        form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        # curl -d labels JSON as a form; only the confirmation page really sends one.
        if form and not raw.lstrip().startswith(b"{"):
            return {k: v[-1] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        try:
            document = json.loads(raw or b"{}")
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def _post(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        match = _COMMAND.match(url.path)
        if match is None or match[3] not in _KINDS:
            self._json(404, {"error": f"no such endpoint: POST {url.path}"})
            return
        ref, kind = Ref(match[1], match[2]), cast(CommandKind, match[3])
        signed = "sig" in query
        if signed and not self._link_ok(ref, kind, query):
            self._json(403, {"error": "the link is not valid or has expired"})
            return
        if not signed and not self.api.authorized(self.headers.get("Authorization")):
            self._json(401, {"error": "unauthorized: send Authorization: Bearer <token>"})
            return
        body = self._body()
        if body is None:
            self._json(400, {"error": 'send a JSON object: {"actor": "...", "comment": "..."}'})
            return
        actor, comment = body.get("actor") or "api", body.get("comment") or ""
        if not isinstance(actor, str) or not isinstance(comment, str):
            self._json(400, {"error": "actor and comment must be strings"})
            return
        status, document = self.api.give(ref, kind, actor, comment)
        if signed:
            text = document.get("error") or f"{kind} given to {ref} by {actor}."
            self._html(status, f"<p>{html.escape(str(text))}</p>\n")
        else:
            self._json(status, document)


class Running:
    """A serving API: its address, and how to stop it."""

    def __init__(self, httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._httpd, self._thread = httpd, thread
        host, port = httpd.server_address[:2]
        self.port = int(port)
        self.url = f"http://{host!s}:{self.port}"

    def stop(self) -> None:
        """Stop serving and wait for the serving thread."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def start(api: Api, host: str = "0.0.0.0", port: int = 8080) -> Running:
    """Serve ``api`` in a daemon thread; port 0 picks a free port."""
    handler = type("Handler", (_Handler,), {"api": api})
    httpd = ThreadingHTTPServer((host, port), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="canary-api", daemon=True
    )
    thread.start()
    log.info("api_started", url=f"http://{host}:{httpd.server_address[1]}")
    return Running(httpd, thread)
