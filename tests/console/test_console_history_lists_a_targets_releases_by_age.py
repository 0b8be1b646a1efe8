"""`canary get` lists Rollouts oldest first; `canary history deploy/NAME` only that target's."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from canary.console import Console
from canary.model.rollout import Rollout
from tests.fake_store import MemoryRolloutStore


def _rollout(name: str, target: str, minute: int) -> Rollout:
    return Rollout.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "t",
                "creationTimestamp": f"2026-11-21T08:{minute:02d}:00Z",
            },
            "spec": {"targetRef": {"name": target}, "release": {"images": {"c": "i:2"}}},
            "status": {"phase": "Succeeded"},
        }
    )


def _names(out: io.StringIO) -> list[str]:
    return [line.split()[0] for line in out.getvalue().splitlines()[1:]]


def _console(out: io.StringIO) -> Console:
    store = MemoryRolloutStore(
        _rollout("web-b", "web", 3), _rollout("api-a", "api", 2), _rollout("web-a", "web", 1)
    )
    return Console(
        store=store,
        annotator=store,
        create=lambda rollout: rollout,  # get and history create nothing
        namespace="t",
        out=out,
        clock=lambda: datetime(2026, 11, 21, 9, tzinfo=UTC),
    )


def test_get_lists_rollouts_by_creation_time() -> None:
    """Oldest first, whatever their names."""
    out = io.StringIO()
    assert _console(out).get(None, all_namespaces=False, output=None) == 0
    assert _names(out) == ["web-a", "api-a", "web-b"]


def test_history_lists_only_the_targets_releases() -> None:
    """history deploy/web shows web's Rollouts, oldest first, and not api's."""
    out = io.StringIO()
    assert _console(out).get(None, all_namespaces=False, output=None, target="web") == 0
    assert _names(out) == ["web-a", "web-b"]
