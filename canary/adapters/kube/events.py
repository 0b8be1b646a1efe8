"""Kubernetes Events about Rollouts (``kubectl describe rollout`` shows them).

Implements ``ports.EventRecorder``. Recording never raises: an Event that cannot be written is
logged by the caller's logger and dropped, it must never stop a rollback.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import structlog
from kubernetes import client

from canary.adapters.kube.client import translated
from canary.core.vocabulary import Event
from canary.errors import CanaryError
from canary.model.rollout import Rollout

log = structlog.get_logger("canary.events")


class KubeEventRecorder:
    """Writes core/v1 Events whose involvedObject is the Rollout."""

    def __init__(self, api: client.ApiClient, component: str = "canary") -> None:
        self._core: Any = client.CoreV1Api(api)
        self._component = component

    def record(self, rollout: Rollout, event: Event) -> None:
        """Create the Event; log and drop it on failure."""
        meta = rollout.metadata
        now = datetime.now(UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{meta.name}.{time.time_ns():x}", namespace=meta.namespace
            ),
            involved_object=client.V1ObjectReference(
                api_version=rollout.api_version,
                kind="Rollout",
                name=meta.name,
                namespace=meta.namespace,
                uid=meta.uid,
                resource_version=meta.resource_version,
            ),
            reason=event.reason,
            message=event.message[:1024],
            type=event.type,
            source=client.V1EventSource(component=self._component),
            reporting_component=self._component,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        try:
            with translated(f"create event for rollout {meta.namespace}/{meta.name}"):
                self._core.create_namespaced_event(meta.namespace, body)
        except CanaryError as error:
            log.warning("event_dropped", reason=event.reason, error=str(error))
