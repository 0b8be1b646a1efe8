"""On a real API server, a Rollout whose reconcile raises an unexpected exception every time
does not stop the worker: the other Rollout moves on, the poisoned one carries a False
Reconciled condition and a Warning Event, and the error is counted by class."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from canary.adapters.kube.events import KubeEventRecorder
from canary.adapters.kube.objects import CustomObjects
from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.adapters.kube.workloads import KubeWorkloads
from canary.adapters.metrics.prometheus import PrometheusMetrics
from canary.adapters.routers.httproute import HTTPRouteRouter
from canary.core.plan import Plan
from canary.ports import Ref, WorkloadState
from canary.runtime.clock import SystemClock
from canary.runtime.controller import Controller, start_thread
from canary.runtime.guard import GuardedReconciler
from canary.runtime.reconciler import Result
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration


class PoisonedWorkloads(KubeWorkloads):
    """The real Deployments and Services, except that reading one Rollout's always fails with
    an error no layer of canary expects."""

    def __init__(self, api: client.ApiClient, poisoned: str) -> None:
        super().__init__(api)
        self.poisoned = poisoned

    def observe(self, namespace: str, rollout: str, plan: Plan) -> WorkloadState:
        if rollout == self.poisoned:
            raise RuntimeError("a bug in one Rollout's path")
        return super().observe(namespace, rollout, plan)


def _app(kube: client.ApiClient, namespace: str, name: str) -> None:
    labels = {"app": name}
    apps: Any = client.AppsV1Api(kube)  # bodies as dicts, as on the wire
    core: Any = client.CoreV1Api(kube)
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": name, "image": f"{name}:1"}]},
                },
            },
        },
    )
    core.create_namespaced_service(
        namespace,
        {"metadata": {"name": name}, "spec": {"selector": labels, "ports": [{"port": 80}]}},
    )


def _rollout(name: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"name": target},
            "service": {"name": target, "port": 80},
            "release": {"images": {target: f"{target}:2"}},
            "steps": [{"setWeight": 50}],
        },
    }


def _until(check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_a_poisoned_rollout_does_not_stop_another(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    """The healthy Rollout leaves Pending and gets its canary Deployment while the poisoned one
    fails on every reconcile; the worker thread is still alive at the end."""
    for app in ("web", "api"):
        _app(kube, namespace, app)
    custom = client.CustomObjectsApi(kube)
    for name, target in (("api-2", "api"), ("web-2", "web")):
        custom.create_namespaced_custom_object(
            "canary.dev", "v1alpha1", namespace, "rollouts", _rollout(name, target)
        )
    store = KubeRolloutStore(kube)
    clock = SystemClock()
    objects = functools.partial(CustomObjects, kube)
    reconciler = GuardedReconciler(
        store,
        PoisonedWorkloads(kube, "api-2"),
        {"HTTPRoute": HTTPRouteRouter(objects)},
        KubeEventRecorder(kube),
        clock,
    )
    results: list[Result] = []
    metrics = PrometheusMetrics(cluster.prometheus_url)
    controller = Controller(
        reconciler,
        store,
        metrics,
        clock,
        namespace=namespace,
        on_result=lambda result, _seconds: results.append(result),
    )
    stop = threading.Event()
    worker = start_thread(lambda: controller.run_worker(stop), "worker")
    try:
        controller.resync()

        def phase(name: str) -> str:
            rollout = store.get(Ref(namespace, name))
            assert rollout is not None
            return rollout.status.phase

        def canary_exists() -> bool:
            found = client.AppsV1Api(kube).list_namespaced_deployment(namespace)
            return "web-canary" in {d.metadata.name for d in found.items if d.metadata}

        _until(lambda: phase("web-2") != "Pending" and canary_exists())

        def reported() -> bool:
            rollout = store.get(Ref(namespace, "api-2"))
            assert rollout is not None
            conditions = {c.type: c for c in rollout.status.conditions}
            events = client.CoreV1Api(kube).list_namespaced_event(namespace).items
            return (
                "Reconciled" in conditions
                and conditions["Reconciled"].status == "False"
                and any(e.reason == "ReconcileFailed" for e in events)
            )

        _until(reported)
        assert phase("api-2") == "Pending"
        assert "RuntimeError" in {r.error for r in results}
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(timeout=10)
        metrics.close()
