"""Errors of the HTTP API as JSON problem documents (RFC 9457), never tracebacks.

Handlers raise ``Problem``; ``handlers`` maps it, Starlette's own HTTP errors, canary's error tree
and anything unexpected to an ``application/problem+json`` response with the status code.
Used by ``canary.api.app`` and, for requests uvicorn refuses before any app sees them, by
``canary.api.server``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from canary.errors import CanaryError, TransientError

log = structlog.get_logger("canary.api")

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error to answer with: status, a short title, and what exactly went wrong."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.headers = dict(headers or {})
        self.extra = extra


def document(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """The problem document of ``status`` with ``detail``."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }


def body(status: int, detail: str, **extra: Any) -> bytes:
    """The problem document, encoded."""
    return json.dumps(document(status, detail, **extra)).encode() + b"\n"


def response(
    status: int, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    """A problem response."""
    return Response(body(status, detail, **extra), status, headers, media_type=MEDIA_TYPE)


async def _problem(_: Request, error: Exception) -> Response:
    assert isinstance(error, Problem)
    return response(error.status, error.detail, error.headers, **error.extra)


async def _http(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    detail = error.detail
    if error.status_code == 404:
        detail = f"no such endpoint: {request.method} {request.url.path}"
    elif error.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return response(error.status_code, detail, error.headers)


async def _canary(request: Request, error: Exception) -> Response:
    if isinstance(error, TransientError):
        log.warning("api_request_failed", path=request.url.path, error=str(error))
        return response(503, str(error), {"Retry-After": "2"})
    log.error("api_request_failed", path=request.url.path, error=str(error))
    return response(500, str(error))


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("api_request_crashed", path=request.url.path, error=repr(error))
    return response(500, "internal error (the controller's log has the details)")


handlers = {
    Problem: _problem,
    HTTPException: _http,
    CanaryError: _canary,
    Exception: _unexpected,
}
