"""Watches of Rollouts and Deployments that wake the controller (``ports.ChangeFeed``).

Each watch runs in its own thread, restarts when the server closes it (watches time out), and
backs off when the API is unreachable. Only names travel: the reconciler reads fresh objects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import structlog
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from canary.model.rollout import GROUP, VERSION
from canary.ports import Change, StopSignal

log = structlog.get_logger("canary.watch")


def _change(kind: str, obj: Any) -> Change:
    # Custom objects arrive as dicts, Deployments as client models.
    if isinstance(obj, dict):
        meta = obj.get("metadata", {})
        return Change(kind, meta.get("namespace", ""), meta.get("name", ""), meta.get("labels"))
    meta = obj.metadata
    return Change(kind, meta.namespace or "", meta.name or "", meta.labels)


Source = tuple[Callable[..., Any], tuple[Any, ...]]


class KubeChangeFeed:
    """Watches Rollouts (canary.dev) and Deployments, in all namespaces or in the given ones
    (one watch per namespace: a namespaced install may not watch the whole cluster)."""

    def __init__(self, api: client.ApiClient, namespaces: Sequence[str] = ()) -> None:
        self._custom: Any = client.CustomObjectsApi(api)
        self._apps: Any = client.AppsV1Api(api)
        self._namespaces = tuple(namespaces)
        self.ready = threading.Event()

    def _sources(self) -> list[tuple[str, Source]]:
        if not self._namespaces:
            return [
                (
                    "Rollout",
                    (self._custom.list_cluster_custom_object, (GROUP, VERSION, "rollouts")),
                ),
                ("Deployment", (self._apps.list_deployment_for_all_namespaces, ())),
            ]
        sources: list[tuple[str, Source]] = []
        for namespace in self._namespaces:
            sources.append(
                (
                    "Rollout",
                    (
                        self._custom.list_namespaced_custom_object,
                        (GROUP, VERSION, namespace, "rollouts"),
                    ),
                )
            )
            sources.append(("Deployment", (self._apps.list_namespaced_deployment, (namespace,))))
        return sources

    def run(self, on_change: Callable[[Change], None], stop: StopSignal) -> None:
        """Watch until ``stop``; blocks."""
        threads = [
            threading.Thread(
                target=self._loop, args=(kind, source, on_change, stop), daemon=True, name=kind
            )
            for kind, source in self._sources()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _loop(
        self,
        kind: str,
        source: Source,
        on_change: Callable[[Change], None],
        stop: StopSignal,
    ) -> None:
        backoff = 1.0
        func, args = source
        while not stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(func, *args, timeout_seconds=60):
                    self.ready.set()
                    backoff = 1.0
                    on_change(_change(kind, event["object"]))
                    if stop.is_set():
                        break
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
                log.warning("watch_restarted", kind=kind, error=str(error), backoff=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                stream.stop()
