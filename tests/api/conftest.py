"""A real uvicorn server on 127.0.0.1 serving the API app over an in-memory store and an
in-memory access review, and a small HTTP client for the tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from canary.api import app, server
from canary.api.metrics import ControllerMetrics
from canary.api.slack import Slack
from canary.core import access
from canary.ports import Identity
from tests.api.fake_access import FakeAccessReview
from tests.fake_store import MemoryRolloutStore, make

NOW = datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=UTC)
LINK_SECRET = "s3cret"
VIEWER, APPROVER, ADMIN = "viewer-token", "approver-token", "admin-token"
IDENTITIES = {
    VIEWER: Identity("system:serviceaccount:test:viewer", groups=("system:serviceaccounts",)),
    APPROVER: Identity("system:serviceaccount:test:approver"),
    ADMIN: Identity("admin"),
}
GRANTS: set[tuple[str, access.Permission, str | None]] = {
    ("system:serviceaccount:test:viewer", access.READ, "test"),
    ("system:serviceaccount:test:viewer", access.LIST, "test"),
    ("system:serviceaccount:test:approver", access.READ, "test"),
    ("system:serviceaccount:test:approver", access.LIST, "test"),
    *(
        ("system:serviceaccount:test:approver", access.command_permission(kind), "test")
        for kind in app.KINDS
    ),
    ("admin", access.READ, None),
    ("admin", access.LIST, None),
    ("admin", access.CREATE, None),
    *(("admin", access.command_permission(kind), None) for kind in app.KINDS),
}


@dataclass
class Reply:
    status: int
    body: str
    content_type: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    token: str | None = None,
) -> Reply:
    """One request; the reply whatever its status."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return Reply(
                response.status,
                response.read().decode(),
                response.headers["Content-Type"],
                dict(response.headers),
            )
    except urllib.error.HTTPError as error:
        with error:
            return Reply(
                error.code,
                error.read().decode(),
                error.headers["Content-Type"],
                dict(error.headers),
            )


@dataclass
class Served:
    url: str
    store: MemoryRolloutStore
    api: app.Api
    ready: list[bool]
    port: int


def serve(
    store: MemoryRolloutStore,
    limits: app.Limits | None = None,
    server_limits: server.ServerLimits | None = None,
    slack: Slack | None = None,
) -> tuple[app.Api, server.Running]:
    """Start a real server for ``store``; the caller stops it."""
    api = app.Api(
        store=store,
        annotator=store,
        access=FakeAccessReview(IDENTITIES, GRANTS),
        ready=lambda: False,
        metrics=ControllerMetrics(store),
        link_secret=LINK_SECRET,
        clock=lambda: NOW,
        limits=limits or app.Limits(),
        slack=slack,
    )
    running = server.start(app.build(api), host="127.0.0.1", port=0, limits=server_limits)
    return api, running


def sample_store() -> MemoryRolloutStore:
    """Two Rollouts in namespace test (one waiting for approval), one in namespace other."""
    return MemoryRolloutStore(
        make(
            "web-2",
            phase="WaitingApproval",
            canaryWeight=20,
            message="waiting at step-2",
            startedAt="2026-11-21T09:00:00+01:00",
        ),
        make("web-1", phase="Succeeded"),
        make("api-7", namespace="other", phase="Progressing"),
    )


@pytest.fixture
def served() -> Iterator[Served]:
    """The API over ``sample_store``, with short body and header timeouts."""
    store = sample_store()
    ready = [False]
    api, running = serve(
        store,
        app.Limits(body_timeout=0.5),
        server.ServerLimits(header_timeout=0.5),
    )
    api.ready = lambda: ready[0]
    try:
        yield Served(running.url, store, api, ready, running.port)
    finally:
        running.stop()
