"""A GitOps revert after Succeeded, on a real API server: the release is promoted, then a second
field manager (Flux's ``kustomize-controller`` with its default ``Override``) server-side applies
Git's manifest with the old image. The Deployment informer wakes the Rollout, and its reconcile
reports the revert — a StableReverted condition and a real Warning Event — without writing the
Deployment."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from canary.adapters.kube.cached import CachedLookup, KubeCache
from canary.adapters.kube.events import KubeEventRecorder
from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.adapters.kube.workloads import FIELD_MANAGER, KubeWorkloads
from canary.core import machine
from canary.core import plan as plan_mod
from canary.core.vocabulary import Observation, PromoteStable
from canary.model.rollout import Rollout
from canary.model.status import RolloutStatus
from canary.ports import Ref
from canary.runtime.clock import SystemClock
from canary.runtime.controller import Controller
from canary.runtime.reconciler import Reconciler
from tests.fakes import FakeMetrics, FakeRouter
from tests.integration.conftest import Cluster
from tests.integration.test_promotion_shares_the_deployment_with_gitops import (
    FLUX,
    GIT_IMAGE,
    RELEASE_IMAGE,
    Git,
    _git_manifest,
    deployment,
)

pytestmark = pytest.mark.integration

ROLLOUT = "podinfo-6-1-0"


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds}s: {what}"
        time.sleep(0.2)


def _canary_writes(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (m["operation"], m["time"])
        for m in obj["metadata"]["managedFields"]
        if m["manager"] == FIELD_MANAGER
    ]


def _image(obj: dict[str, Any]) -> str:
    (container,) = obj["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


def test_flux_putting_gits_image_back_after_success_is_reported_not_fought(
    cluster: Cluster, kube: client.ApiClient, namespace: str
) -> None:
    """Promoted, Succeeded; Flux applies Git's 6.0.0: the informer wakes the Rollout, which
    gets StableReverted=True and a Warning Event; the Deployment keeps Git's image."""
    apps: Any = client.AppsV1Api(kube)
    core: Any = client.CoreV1Api(kube)
    flux = Git(kube, namespace, FLUX)
    flux.sync(_git_manifest())
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "podinfo"},
            "spec": {"selector": {"app": "podinfo"}, "ports": [{"port": 9898}]},
        },
    )
    store, workloads = KubeRolloutStore(kube), KubeWorkloads(kube)
    rollout = store.create(
        Rollout.model_validate(
            {
                "metadata": {"name": ROLLOUT, "namespace": namespace},
                "spec": {
                    "targetRef": {"name": "podinfo"},
                    "release": {"images": {"podinfo": RELEASE_IMAGE}},
                    "service": {"name": "podinfo", "port": 9898},
                },
            }
        )
    )
    ref = Ref(namespace, ROLLOUT)
    plan = plan_mod.build(rollout, None)

    # Promote with the real adapter; write the Succeeded status the machine decides.
    workloads.apply(namespace, ROLLOUT, plan, PromoteStable())

    def promoted() -> bool:
        target = workloads.observe(namespace, ROLLOUT, plan).target
        return target is not None and target.has_release and target.ready

    _until(promoted, 60, "the stable Deployment rolled out the release")
    now = datetime.now(UTC)
    target = workloads.observe(namespace, ROLLOUT, plan).target
    obs = Observation(target=target, apex_service=True, services_ready=True)
    decision = machine.decide(plan, RolloutStatus(phase="Promoting", phase_since=now), obs, now)
    assert decision.status.phase == "Succeeded"
    store.write_status(rollout, decision.status)

    # The controller as `canary run` wires it: cached reads, the informers waking Rollouts.
    watcher = cluster.api_client()  # its own client: closing it ends the watches at once
    cache = KubeCache(watcher, [namespace])
    reconciler = Reconciler(
        store,
        KubeWorkloads(
            kube,
            deployments=CachedLookup(cache.deployments),
            services=CachedLookup(cache.services),
            autoscalers=cache.autoscalers_of,
            owners=cache.rollout_uid,
        ),
        {"HTTPRoute": FakeRouter()},
        KubeEventRecorder(kube),
        SystemClock(),
    )
    controller = Controller(reconciler, store, FakeMetrics(), SystemClock())
    stop = threading.Event()
    watching = threading.Thread(target=cache.run, args=(controller.on_change, stop), daemon=True)
    watching.start()
    try:
        cache.wait_synced(30)
        assert controller.work(ref).watches == "podinfo"
        promoted_writes = _canary_writes(deployment(apps, namespace))

        def drained() -> bool:
            while (item := controller.queue.pop_due()) is not None:
                controller.queue.done(item[0])
            return True

        drained()
        flux.sync(_git_manifest())  # Flux's Override: Git's image back

        def woken_after_the_revert() -> bool:
            item = controller.queue.pop_due()
            if item is None:
                return False
            controller.queue.done(item[0])
            cached = cache.deployments.get(namespace, "podinfo")
            return item[0] == ref and cached is not None and _image(cached) == GIT_IMAGE

        _until(woken_after_the_revert, 30, "the Deployment informer waking the Rollout")
        controller.work(ref)
    finally:
        stop.set()
        watcher.close()  # type: ignore[no-untyped-call]

    stored = store.get(ref)
    assert stored is not None
    assert stored.status.phase == "Succeeded"
    (condition,) = [c for c in stored.status.conditions if c.type == "StableReverted"]
    assert (condition.status, condition.reason) == ("True", "TemplateChanged")
    assert RELEASE_IMAGE in condition.message
    events = core.list_namespaced_event(namespace).items
    reverted = [
        e for e in events if e.reason == "StableReverted" and e.involved_object.name == ROLLOUT
    ]
    assert [e.type for e in reverted] == ["Warning"]
    # canary did not fight Flux: the Deployment keeps Git's image, canary wrote nothing more.
    now_live = deployment(apps, namespace)
    assert _image(now_live) == GIT_IMAGE
    assert _canary_writes(now_live) == promoted_writes
