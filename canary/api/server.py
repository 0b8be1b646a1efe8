"""Serving the API app with uvicorn, in a thread of the controller process.

``start`` runs uvicorn's server with its own event loop in a daemon thread beside the reconcile
worker, and returns a ``Running`` handle to stop it. What a client may cost is bounded:
- headers must arrive within ``header_timeout`` of connecting (or of the previous response):
  uvicorn itself waits forever for the first request line, so ``_GuardedH11`` closes a connection
  that dawdles (a slow client cannot hold a connection slot);
- the body within ``Limits.body_timeout`` and at most ``Limits.max_body`` bytes (the app);
- at most ``max_requests`` requests at once (503 beyond), ``max_connections`` connections;
- requests uvicorn refuses before the app sees them (a malformed request line, a bad
  ``Content-Length``) are answered with a JSON problem too.
Used by the composition root (``canary run``) and the API tests.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from canary.api import problems

log = structlog.get_logger("canary.api")


@dataclass(frozen=True)
class ServerLimits:
    """Connection-level limits of the server."""

    header_timeout: float = 10.0
    keep_alive: int = 5
    max_requests: int = 64
    max_connections: int = 256
    max_header_bytes: int = 32 * 1024


class _GuardedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for the request head, and JSON problems
    for the requests it refuses."""

    header_timeout = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # the head has arrived; the app bounds the body

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may already start a pipelined request's cycle
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self._arm()

    def send_400_response(self, msg: str) -> None:
        body = problems.body(400, f"the request is not valid HTTP/1.1: {msg}")
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\n"
            b"content-type: " + problems.MEDIA_TYPE.encode() + b"\r\n"
            b"connection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        self.transport.close()


class _Inflight:
    """At most ``limit`` requests in the app at once; 503 (a JSON problem) beyond."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit, self.count = app, limit, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.count >= self.limit:
            body = problems.body(503, "too many requests at once; try again shortly")
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", problems.MEDIA_TYPE.encode()),
                        (b"retry-after", b"1"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1


class Running:
    """A serving API: its address, and how to stop it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str) -> None:
        self._server, self._thread = server, thread
        sockets = [s for srv in server.servers for s in srv.sockets]
        self.port = int(sockets[0].getsockname()[1])
        self.url = f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving and wait for the serving thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)


def start(
    app: ASGIApp, host: str = "0.0.0.0", port: int = 8080, limits: ServerLimits | None = None
) -> Running:
    """Serve ``app`` with uvicorn in a daemon thread; port 0 picks a free port. Returns once
    the server listens; raises RuntimeError if it could not start."""
    limits = limits or ServerLimits()
    protocol: Any = type("Protocol", (_GuardedH11,), {"header_timeout": limits.header_timeout})
    config = uvicorn.Config(
        _Inflight(app, limits.max_requests),
        host=host,
        port=port,
        http=protocol,
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=limits.keep_alive,
        timeout_graceful_shutdown=5,
        limit_concurrency=limits.max_connections,
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="canary-api", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the HTTP API could not listen on {host}:{port}")
        thread.join(timeout=0.01)
    running = Running(server, thread, host)
    log.info("api_started", url=running.url)
    return running
