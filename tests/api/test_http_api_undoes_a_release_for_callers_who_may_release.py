"""POST /api/v1/namespaces/NS/deployments/NAME/undo: a new Rollout back to the previous
Succeeded release's template, for a caller RBAC lets create Rollouts, like any release."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from canary.core import undo
from canary.model.rollout import Rollout
from canary.ports import Ref
from tests.api.conftest import ADMIN, APPROVER, NOW, call, serve
from tests.fake_store import MemoryRolloutStore, make

JSON = {"Content-Type": "application/json"}
URL = "/api/v1/namespaces/test/deployments/podinfo/undo"


def _released(name: str, image: str, finished: str) -> Rollout:
    promoted = {"spec": {"containers": [{"name": "podinfo", "image": image}]}}
    return make(name, phase="Succeeded", finishedAt=finished, promoted=promoted)


@pytest.fixture
def served() -> Iterator[tuple[str, MemoryRolloutStore]]:
    """The API over two Succeeded releases of podinfo; it creates into the same store."""
    store = MemoryRolloutStore(
        _released("web-1", "podinfo:1", "2026-11-21T07:00:00Z"),
        _released("web-2", "podinfo:2", "2026-11-21T07:30:00Z"),
    )
    api, running = serve(store)
    api.create = lambda rollout: store.rollouts[store.add(rollout)]
    try:
        yield running.url, store
    finally:
        running.stop()


def test_undo_creates_a_rollout_back_to_the_previous_release(
    served: tuple[str, MemoryRolloutStore],
) -> None:
    """201 with the new Rollout; it releases web-1's image and names the reviewed caller."""
    url, store = served
    body = json.dumps({"comment": "errors up"}).encode()
    reply = call(url + URL, "POST", body, JSON, token=ADMIN)
    assert reply.status == 201, reply.body
    name = f"podinfo-undo-{NOW:%Y%m%d-%H%M%S}"
    assert reply.json() == {"rollout": f"test/{name}", "undoOf": "web-1", "actor": "admin"}
    made = store.get(Ref("test", name))
    assert made is not None
    assert made.spec.release.images == {"podinfo": "podinfo:1"}
    assert made.spec.release.undo_of == "web-1"
    assert made.metadata.annotations[undo.CHANGE_CAUSE] == (
        "canary undo to web-1 by admin: errors up"
    )


def test_undo_needs_the_right_to_create_rollouts(served: tuple[str, MemoryRolloutStore]) -> None:
    """An approver (commands, no create) gets 403 and nothing is created."""
    url, store = served
    reply = call(url + URL, "POST", b"{}", JSON, token=APPROVER)
    assert reply.status == 403
    assert len(store.rollouts) == 2


def test_undo_while_a_release_runs_is_a_conflict(served: tuple[str, MemoryRolloutStore]) -> None:
    """409 naming the running release and how to stop it; nothing is created."""
    url, store = served
    store.add(make("web-3", phase="Progressing"))
    reply = call(url + URL, "POST", b"{}", JSON, token=ADMIN)
    assert reply.status == 409
    assert "release web-3 of deploy/podinfo is Progressing" in reply.json()["detail"]
    assert len(store.rollouts) == 3


def test_undo_of_a_bad_name_is_refused(served: tuple[str, MemoryRolloutStore]) -> None:
    """A Deployment name that is no Kubernetes name is a 400."""
    url, _ = served
    reply = call(url + "/api/v1/namespaces/test/deployments/Bad_Name/undo", "POST", b"{}", JSON)
    assert reply.status == 400
