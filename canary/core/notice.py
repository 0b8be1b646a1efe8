"""What a notification says about one rollout event: the versioned JSON document a generic
webhook receives (schema ``canary.dev/notification/v1``, docs/notifications.md), the Microsoft
Teams Adaptive Card made from it, and the HMAC signature a receiver checks.

Who calls it: the notifiers (``canary.adapters.notifiers``) when they deliver an event from the
outbox, and any other caller that tells the world about a rollout (gating hooks send the same
document). The document describes the rollout as it stood right AFTER the event: the caller
passes that status. Pure: the caller passes the time and every link; no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from canary.core.vocabulary import Event
from canary.model.rollout import Rollout
from canary.model.status import ArmStats, RolloutStatus, StepStatus

SCHEMA = "canary.dev/notification/v1"
"""The version of the document; a change that removes or retypes a field gets a new one."""

SIGNATURE_HEADER = "X-Canary-Signature"
TIMESTAMP_HEADER = "X-Canary-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def tag(image: str) -> str | None:
    """The tag (``6.1.0``) or digest (``sha256:…``) of an image reference; None when it names
    neither (the registry then serves ``latest``)."""
    if "@" in image:
        return image.rsplit("@", 1)[1]
    name = image.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[1] if ":" in name else None


def _arm(stats: ArmStats) -> dict[str, Any]:
    return {
        "requests": stats.requests,
        "failures": stats.failures,
        "successRate": stats.success_rate,
        "latencyMs": stats.latency_ms,
    }


def _step(step: StepStatus | None, index: int, count: int) -> dict[str, Any]:
    document: dict[str, Any] = {"index": index, "count": count}
    if step is None:
        return document
    return document | {
        "weight": step.weight,
        "verdict": step.verdict,
        "startedAt": _time(step.started_at),
        "finishedAt": _time(step.finished_at),
        "canary": _arm(step.canary),
        "stable": _arm(step.stable),
        "checks": [
            {"name": c.name, "verdict": c.verdict, "value": c.value, "limit": c.limit}
            for c in step.checks
        ],
        "message": step.message,
    }


def _time(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def build(
    rollout: Rollout,
    status: RolloutStatus,
    event: Event,
    *,
    key: str,
    at: datetime,
    step_count: int,
    links: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``canary.dev/notification/v1`` document about ``event``.

    ``status`` is the Rollout's status right after the event (its phase, weight and step are
    the event's outcome); ``key`` identifies the event for receivers that drop duplicates;
    ``links`` names pages about the release (``dashboard``, and command links by kind)."""
    meta = rollout.metadata
    images = rollout.spec.release.images or {}
    current = [s for s in status.steps if s.index == status.current_step_index]
    return {
        "schema": SCHEMA,
        "id": key,
        "time": _time(at),
        "event": {"type": event.type, "reason": event.reason, "message": event.message},
        "rollout": {"namespace": meta.namespace, "name": meta.name, "uid": meta.uid},
        "target": {"kind": rollout.spec.target_ref.kind, "name": rollout.spec.target_ref.name},
        "release": {
            "images": [
                {"container": container, "image": image, "tag": tag(image)}
                for container, image in sorted(images.items())
            ],
            "templatePatch": rollout.spec.release.template_patch is not None,
        },
        "phase": status.phase,
        "message": status.message,
        "weights": {"canary": status.canary_weight, "stable": 100 - status.canary_weight},
        "step": _step(current[-1] if current else None, status.current_step_index, step_count),
        "approvals": [
            {
                "gate": a.gate,
                "decision": a.decision,
                "actor": a.actor,
                "at": _time(a.at),
                "comment": a.comment,
            }
            for a in status.approvals
        ],
        "startedAt": _time(status.started_at),
        "finishedAt": _time(status.finished_at),
        "links": dict(links or {}),
    }


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The value of the ``X-Canary-Signature`` header: ``sha256=`` and the hex HMAC-SHA256,
    keyed with the receiver's secret, of ``<timestamp>.<body>`` (the timestamp is the
    ``X-Canary-Timestamp`` header, Unix seconds, so that a receiver can refuse old replays)."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def summary(document: Mapping[str, Any]) -> str:
    """One line about the event: ``canary ns/name (target): Reason: message``."""
    rollout, event = document["rollout"], document["event"]
    return (
        f"canary {rollout['namespace']}/{rollout['name']} ({document['target']['name']}): "
        f"{event['reason']}: {event['message']}"
    )


_MARKDOWN = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>~"})


def plain(text: str) -> str:
    """``text`` with Markdown's special characters escaped: Teams renders a card's text as
    Markdown, and tenant-controlled text must not make links or formatting."""
    return text.translate(_MARKDOWN)


def adaptive_card(document: Mapping[str, Any], actions: Mapping[str, str]) -> dict[str, Any]:
    """The message a Microsoft Teams Workflows webhook takes: one Adaptive Card (1.4) with the
    event, the facts of the release, and a button opening each URL of ``actions`` (title →
    URL: the command links, the dashboard)."""
    step, weights = document["step"], document["weights"]
    facts = [
        ("Phase", document["phase"]),
        ("Target", f"{document['target']['kind']}/{document['target']['name']}"),
        ("Weights", f"canary {weights['canary']}% / stable {weights['stable']}%"),
        ("Step", f"{step['index'] + 1} of {step['count']}"),
    ]
    facts += [(image["container"], image["image"]) for image in document["release"]["images"]]
    if "canary" in step:
        for arm in ("canary", "stable"):
            counts = step[arm]
            facts.append(
                (arm.capitalize(), f"{counts['requests']} requests, {counts['failures']} failed")
            )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": plain(summary(document)),
                "wrap": True,
                "weight": "Bolder",
                "color": "Attention" if document["event"]["type"] == "Warning" else "Good",
            },
            {
                "type": "FactSet",
                "facts": [
                    {"title": plain(title), "value": plain(str(value))} for title, value in facts
                ],
            },
        ],
        "actions": [
            {"type": "Action.OpenUrl", "title": title, "url": url} for title, url in actions.items()
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }
