"""The Rollout store contract, run against the real KubeRolloutStore and the in-memory fake the
API tests use, so the fake stays honest: reads, guarded status writes, annotations, labels,
guarded deletes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.errors import Conflict
from canary.model.rollout import Rollout
from canary.model.status import RolloutStatus
from canary.ports import Ref
from tests.fake_store import MemoryRolloutStore

pytestmark = pytest.mark.integration

Store = KubeRolloutStore | MemoryRolloutStore


def _rollout(namespace: str, name: str, target: str = "podinfo") -> Rollout:
    return Rollout.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "targetRef": {"name": target},
                "release": {"images": {"podinfo": "podinfo:6.1.0"}},
                "policyRef": {"name": "podinfo"},
            },
        }
    )


@pytest.fixture(params=["kube", "memory"])
def world(
    request: pytest.FixtureRequest, kube: client.ApiClient, namespace: str
) -> tuple[Store, Callable[[Rollout], None]]:
    """A store, and how to put a new Rollout into the world behind it."""
    if request.param == "kube":
        real = KubeRolloutStore(kube)

        def create(rollout: Rollout) -> None:
            real.create(rollout)

        return real, create
    fake = MemoryRolloutStore()

    def put(rollout: Rollout) -> None:
        fake.add(rollout)

    return fake, put


def test_reads_return_none_for_missing_objects(world: Any, namespace: str) -> None:
    """get and policy of objects that do not exist are None; list of an empty namespace is []."""
    store, _ = world
    assert store.get(Ref(namespace, "nope")) is None
    assert store.policy(Ref(namespace, "nope")) is None
    assert store.list(namespace) == []


def test_list_returns_the_namespace_rollouts_sorted(world: Any, namespace: str) -> None:
    """Rollouts come back parsed, sorted by name, only from the namespace asked for."""
    store, put = world
    for name in ("web-b", "web-a"):
        put(_rollout(namespace, name))
    assert [r.metadata.name for r in store.list(namespace)] == ["web-a", "web-b"]
    assert {r.metadata.name for r in store.list()} >= {"web-a", "web-b"}


def test_list_of_a_target_returns_only_its_rollouts_sorted(world: Any, namespace: str) -> None:
    """With a target, list answers the Rollouts whose targetRef names that Deployment, sorted
    by name, and nothing for a target no Rollout has."""
    store, put = world
    for name, target in (("web-b", "web"), ("api-a", "api"), ("web-a", "web")):
        put(_rollout(namespace, name, target))
    assert [r.metadata.name for r in store.list(namespace, target="web")] == ["web-a", "web-b"]
    assert [r.metadata.name for r in store.list(namespace, target="api")] == ["api-a"]
    assert store.list(namespace, target="podinfo") == []
    assert {r.metadata.name for r in store.list(target="web")} >= {"web-a", "web-b"}


def test_status_writes_are_guarded_by_resource_version(world: Any, namespace: str) -> None:
    """A write with the current resourceVersion lands; one with a stale version is Conflict."""
    store, put = world
    put(_rollout(namespace, "web-2"))
    ref = Ref(namespace, "web-2")
    read = store.get(ref)
    store.write_status(read, RolloutStatus(phase="Progressing", canary_weight=20))
    stored = store.get(ref)
    assert (stored.status.phase, stored.status.canary_weight) == ("Progressing", 20)
    assert stored.metadata.resource_version != read.metadata.resource_version
    with pytest.raises(Conflict):
        store.write_status(read, RolloutStatus(phase="Failed"))
    assert store.get(ref).status.phase == "Progressing"


def test_a_status_write_outlives_a_label_but_not_a_command(world: Any, namespace: str) -> None:
    """A status decided from a read stays writable after a label is added meanwhile
    (retention's ``canary.dev/target``: the status was not decided from labels), and is
    Conflict after an annotation (a person's command the decision did not see)."""
    store, put = world
    put(_rollout(namespace, "web-2"))
    ref = Ref(namespace, "web-2")
    read = store.get(ref)
    store.label(ref, "canary.dev/target", "podinfo")
    store.write_status(read, RolloutStatus(phase="RollingBack", canary_weight=0))
    stored = store.get(ref)
    assert (stored.status.phase, stored.metadata.labels) == (
        "RollingBack",
        {"canary.dev/target": "podinfo"},
    )
    read = store.get(ref)
    store.annotate(ref, "canary.dev/abort", '{"actor": "ana"}')
    with pytest.raises(Conflict):
        store.write_status(read, RolloutStatus(phase="RolledBack"))
    assert store.get(ref).status.phase == "RollingBack"


def test_the_first_status_write_sets_the_target_label(world: Any, namespace: str) -> None:
    """A Rollout made without its ``canary.dev/target`` label (by kubectl or a GitOps tool) has
    it after its first status write, its other labels kept; a stale write still loses."""
    store, put = world
    rollout = _rollout(namespace, "web-2")
    put(
        rollout.model_copy(
            update={"metadata": rollout.metadata.model_copy(update={"labels": {"team": "a"}})}
        )
    )
    ref = Ref(namespace, "web-2")
    read = store.get(ref)
    store.write_status(read, RolloutStatus(phase="Progressing", canary_weight=5))
    stored = store.get(ref)
    assert (stored.status.canary_weight, stored.metadata.labels) == (
        5,
        {"team": "a", "canary.dev/target": "podinfo"},
    )
    store.write_status(stored, RolloutStatus(phase="Progressing", canary_weight=10))
    assert store.get(ref).status.canary_weight == 10
    with pytest.raises(Conflict):
        store.write_status(read, RolloutStatus(phase="Failed"))
    assert store.get(ref).status.canary_weight == 10


def test_annotate_sets_one_annotation_and_keeps_the_others(world: Any, namespace: str) -> None:
    """Each annotate call adds or replaces one key; earlier keys stay."""
    store, put = world
    put(_rollout(namespace, "web-2"))
    ref = Ref(namespace, "web-2")
    store.annotate(ref, "canary.dev/approve", "a")
    store.annotate(ref, "canary.dev/abort", "b")
    store.annotate(ref, "canary.dev/approve", "c")
    assert store.get(ref).metadata.annotations == {
        "canary.dev/approve": "c",
        "canary.dev/abort": "b",
    }


def test_label_sets_one_label_and_keeps_the_others(world: Any, namespace: str) -> None:
    """Each label call adds or replaces one key; earlier keys stay."""
    store, put = world
    put(_rollout(namespace, "web-2"))
    ref = Ref(namespace, "web-2")
    store.label(ref, "team", "a")
    store.label(ref, "canary.dev/target", "podinfo")
    assert store.get(ref).metadata.labels == {"team": "a", "canary.dev/target": "podinfo"}


def test_deletes_are_guarded_by_resource_version(world: Any, namespace: str) -> None:
    """A delete of a stale read is Conflict and keeps the Rollout; a current one removes it;
    deleting what is gone is nothing."""
    store, put = world
    put(_rollout(namespace, "web-2"))
    ref = Ref(namespace, "web-2")
    stale = store.get(ref)
    store.annotate(ref, "canary.dev/retry", "x")
    with pytest.raises(Conflict):
        store.delete(stale)
    assert store.get(ref) is not None
    current = store.get(ref)
    store.delete(current)
    assert store.get(ref) is None
    store.delete(current)


def test_policies_are_read_as_models(kube: client.ApiClient, namespace: str) -> None:
    """A stored RolloutPolicy comes back parsed, its durations and steps typed."""
    body = {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "RolloutPolicy",
        "metadata": {"name": "podinfo", "namespace": namespace},
        "spec": {
            "service": {"name": "podinfo", "port": 9898},
            "stepWeight": 25,
            "analysis": {"interval": "30s"},
        },
    }
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        "canary.dev", "v1alpha1", namespace, "rolloutpolicies", body
    )
    policy = KubeRolloutStore(kube).policy(Ref(namespace, "podinfo"))
    assert policy is not None
    assert policy.spec.step_weight == 25
    assert policy.spec.analysis is not None
    assert policy.spec.analysis.interval is not None
    assert policy.spec.analysis.interval.total_seconds() == 30
