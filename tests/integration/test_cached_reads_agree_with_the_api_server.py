"""The informer-backed reads agree with direct reads of a real API server, and send no GET.

The contract of the cache-backed ports (``canary.adapters.kube.cached``) against the direct
adapters: once the watches have caught up, ``CachedRolloutStore``, ``KubeWorkloads`` over cached
lookups and the routers over ``CachedObjects`` answer exactly what the direct adapters answer;
a status write is read back at once; a write from a stale copy is a Conflict; deleted objects
leave the cache; an informer whose watch resourceVersion has expired (410 Gone) lists again;
lists come in pages that follow the API server's continue tokens; a cached route carries no
``managedFields``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from kubernetes import client

from canary.adapters.kube import informer as informer_module
from canary.adapters.kube.cached import CachedLookup, KubeCache
from canary.adapters.kube.informer import Informer
from canary.adapters.kube.objects import CustomObjects
from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.adapters.kube.workloads import KubeWorkloads
from canary.adapters.routers.httproute import HTTPRouteRouter
from canary.core import vocabulary
from canary.errors import Conflict
from canary.model.rollout import Rollout, RolloutPolicy
from canary.model.status import RolloutStatus
from canary.ports import ROUTE, Change, Ref
from tests.integration.conftest import Cluster
from tests.integration.test_routers_keep_the_router_contract import create_services, set_weights
from tests.unit.fake_cluster import make_plan

pytestmark = pytest.mark.integration

T = TypeVar("T")


class Counted:
    """An API client of its own that counts the requests it sends, by HTTP method; and the
    changes the cache over it reported."""

    def __init__(self, cluster: Cluster) -> None:
        self.api = cluster.api_client()
        self.calls: list[tuple[str, str]] = []
        self.changes: list[Change] = []
        original = self.api.call_api

        def call_api(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if "watch=" not in url.lower():
                self.calls.append((method, url))
            return original(method, url, *args, **kwargs)

        setattr(self.api, "call_api", call_api)  # noqa: B010  (a test's spy on one instance)

    def gets(self) -> list[str]:
        """The URLs of the GETs sent so far (watches left out)."""
        return [path for method, path in self.calls if method == "GET"]


@pytest.fixture
def cached(cluster: Cluster, namespace: str) -> Iterator[tuple[KubeCache, Counted]]:
    """A running, synced cache of ``namespace`` on its own counting client."""
    counted = Counted(cluster)
    cache = KubeCache(counted.api, [namespace])
    stop = threading.Event()
    thread = threading.Thread(target=cache.run, args=(counted.changes.append, stop), daemon=True)
    thread.start()
    try:
        cache.wait_synced(30)
        counted.calls.clear()  # the first lists
        yield cache, counted
    finally:
        stop.set()
        counted.api.close()  # type: ignore[no-untyped-call]


def eventually(read: Callable[[], T], want: Callable[[T], bool], timeout: float = 15) -> T:
    """``read()`` once ``want`` holds of it (the watch delivers within a second or so)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if want(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def agree(cached: Callable[[], T], direct: Callable[[], T], timeout: float = 15) -> T:
    """What both reads answer, once they answer the same. The two reads are not one instant
    (kwok readies pods, Linkerd writes route status meanwhile), so pairs are read until one
    pair agrees; the test fails with the last pair if none does."""
    deadline = time.monotonic() + timeout
    while True:
        pair = (cached(), direct())
        if pair[0] == pair[1]:
            return pair[0]
        if time.monotonic() > deadline:
            pytest.fail(f"the cache never caught up; last (cached, direct): {pair}")
        time.sleep(0.1)


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


def test_store_reads_agree_and_status_writes_are_read_back_at_once(
    kube: client.ApiClient, namespace: str, cached: tuple[KubeCache, Counted]
) -> None:
    """get, list and policy agree with the API server; a write is visible at once; a write
    from a stale copy is a Conflict; a deleted Rollout leaves the cache."""
    cache, counted = cached
    direct = KubeRolloutStore(kube)
    store = cache.store(KubeRolloutStore(counted.api))
    ref = Ref(namespace, "web-1")
    direct.create(_rollout(namespace, "web-1"))
    CustomObjects(kube, "canary.dev/v1alpha1", "rolloutpolicies").create(
        namespace,
        {
            "apiVersion": "canary.dev/v1alpha1",
            "kind": "RolloutPolicy",
            "metadata": {"name": "podinfo"},
            "spec": {},
        },
    )
    assert agree(lambda: store.get(ref), lambda: direct.get(ref)) is not None
    policy = Ref(namespace, "podinfo")
    assert agree(lambda: store.policy(policy), lambda: direct.policy(policy)) is not None
    assert isinstance(store.policy(Ref(namespace, "podinfo")), RolloutPolicy)
    assert store.list(namespace) == direct.list(namespace)
    assert store.get(Ref(namespace, "nope")) is None
    assert store.policy(Ref(namespace, "nope")) is None

    before = store.get(ref)
    assert before is not None
    assert before.metadata.labels == {}  # made as kubectl or a GitOps tool makes it
    store.write_status(before, RolloutStatus(phase="Initializing", message="cached"))
    after = store.get(ref)  # no wait: the write's answer is in the cache
    assert after is not None
    assert after.status.message == "cached"
    # The first status write set the target label (retention never patches it mid-release).
    assert after.metadata.labels == {"canary.dev/target": "podinfo"}
    assert counted.gets() == []  # every read above came from the cache
    with pytest.raises(Conflict):
        store.write_status(before, RolloutStatus(phase="Progressing"))
    # A lost race costs one GET, to tell a label from a change the status was decided from.
    assert [path.rsplit("/", 1)[-1] for path in counted.gets()] == ["web-1"]
    agree(lambda: store.get(ref), lambda: direct.get(ref))

    read = store.get(ref)
    assert read is not None
    direct.label(ref, "team", "a")
    store.write_status(read, RolloutStatus(phase="RollingBack", message="after a label"))
    stored = direct.get(ref)
    assert stored is not None
    assert (stored.status.message, stored.metadata.labels) == (
        "after a label",
        {"canary.dev/target": "podinfo", "team": "a"},
    )
    # The cache has the write's answer once the label's event is in (never the label alone).
    cached_copy = eventually(lambda: store.get(ref), lambda r: r is not None and r == stored)
    assert cached_copy == stored

    got = direct.get(ref)
    assert got is not None
    direct.delete(got)
    assert eventually(lambda: store.get(ref), lambda r: r is None) is None
    assert store.list(namespace) == []


def test_rollouts_of_a_target_agree_as_targets_change_and_rollouts_go(
    kube: client.ApiClient, namespace: str, cached: tuple[KubeCache, Counted]
) -> None:
    """The cache's lookup of one target's Rollouts (its index) answers what a direct list
    filtered by target answers, after creates, a Rollout moved to another target and deletes;
    once every Rollout is gone the index holds nothing."""
    cache, counted = cached
    direct = KubeRolloutStore(kube)
    store = cache.store(KubeRolloutStore(counted.api))
    for name, target in (("web-2", "web"), ("api-1", "api"), ("web-1", "web")):
        direct.create(_rollout(namespace, name, target))

    def both(target: str) -> list[str]:
        found = agree(
            lambda: store.list(namespace, target=target),
            lambda: direct.list(namespace, target=target),
        )
        return [r.metadata.name for r in found]

    assert both("web") == ["web-1", "web-2"]
    assert both("api") == ["api-1"]
    CustomObjects(kube, "canary.dev/v1alpha1", "rollouts").patch(
        namespace, "web-2", {"spec": {"targetRef": {"name": "api"}}}
    )
    assert both("api") == ["api-1", "web-2"]
    assert both("web") == ["web-1"]
    assert counted.gets() == []
    for rollout in direct.list(namespace):
        direct.delete(rollout)
    assert both("api") == []
    assert both("web") == []
    assert eventually(lambda: cache.sizes()["Rollout"], lambda held: held == (0, 0)) == (0, 0)


def test_workloads_observe_the_same_world_through_the_cache(
    kube: client.ApiClient, namespace: str, cached: tuple[KubeCache, Counted]
) -> None:
    """Before and after canary's Services and canary Deployment exist, observing through the
    trimmed cache gives what direct GETs give, and observing sends no GET."""
    cache, counted = cached
    direct = KubeWorkloads(kube)
    through_cache = KubeWorkloads(
        counted.api,
        deployments=CachedLookup(cache.deployments),
        services=CachedLookup(cache.services),
        autoscalers=cache.autoscalers_of,
        owners=cache.rollout_uid,
    )
    plan = make_plan()
    apps: Any = client.AppsV1Api(kube)  # bodies as dicts, as on the wire
    core: Any = client.CoreV1Api(kube)
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "podinfo", "labels": {"app": "podinfo"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "podinfo"}},
                "template": {
                    "metadata": {"labels": {"app": "podinfo"}},
                    "spec": {"containers": [{"name": "podinfo", "image": "podinfo:6.0.0"}]},
                },
            },
        },
    )
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "podinfo"},
            "spec": {"selector": {"app": "podinfo"}, "ports": [{"port": 9898}]},
        },
    )
    autoscaling: Any = client.AutoscalingV2Api(kube)
    autoscaling.create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "metadata": {"name": "podinfo"},
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "podinfo",
                },
                "minReplicas": 2,
                "maxReplicas": 6,
            },
        },
    )

    def same() -> None:
        agree(
            lambda: through_cache.observe(namespace, "podinfo-2", plan),
            lambda: direct.observe(namespace, "podinfo-2", plan),
        )

    same()
    before = len(counted.gets())
    through_cache.observe(namespace, "podinfo-2", plan)
    assert len(counted.gets()) == before  # observing is served by the cache
    through_cache.apply(namespace, "podinfo-2", plan, vocabulary.EnsureServices())
    same()
    through_cache.apply(namespace, "podinfo-2", plan, vocabulary.EnsureCanary(replicas=1))
    same()
    state = direct.observe(namespace, "podinfo-2", plan)
    assert state.target is not None
    assert state.target.autoscaler == vocabulary.Autoscaler(2, 6)
    assert state.services_ready
    assert state.canary is not None
    assert state.canary.current
    # Already in place: applying again sends no GET (and no write) once the cache has them.
    before = len(counted.gets())
    through_cache.apply(namespace, "podinfo-2", plan, vocabulary.EnsureServices())
    through_cache.apply(namespace, "podinfo-2", plan, vocabulary.EnsureCanary(replicas=1))
    assert len(counted.gets()) == before


def test_routes_read_through_the_cache_agree(
    kube: client.ApiClient, namespace: str, cached: tuple[KubeCache, Counted]
) -> None:
    """An HTTPRoute router over the cache observes the weights the direct router observes,
    and its weight writes (guarded by the cached resourceVersion) land; the route's changes are
    reported (they wake the Rollout that steers it)."""
    cache, counted = cached
    plan = make_plan()
    create_services(kube, namespace, plan)
    direct = HTTPRouteRouter(functools.partial(CustomObjects, kube))
    through_cache = HTTPRouteRouter(cache.route_objects)
    assert through_cache.observe(namespace, plan) is None
    for weight in (10, 50, 0):
        agree(
            lambda: through_cache.observe(namespace, plan), lambda: direct.observe(namespace, plan)
        )
        set_weights(through_cache, namespace, plan, weight)
        state = direct.observe(namespace, plan)
        assert state is not None
        assert state.canary_weight == weight
        seen = agree(
            lambda: through_cache.observe(namespace, plan), lambda: direct.observe(namespace, plan)
        )
        assert seen is not None
        assert seen.canary_weight == weight
    kept = through_cache._objects(plan).get(namespace, plan.route_name)
    written = direct._objects(plan).get(namespace, plan.route_name)
    assert written is not None
    assert "managedFields" in written["metadata"]  # the API server's record of its writers
    assert kept is not None
    assert "managedFields" not in kept["metadata"]
    assert kept["spec"] == written["spec"]
    route = (ROUTE, namespace, plan.route_name)
    reported = eventually(
        lambda: [(c.kind, c.namespace, c.name) for c in counted.changes], lambda v: route in v
    )
    assert route in reported


def test_an_expired_watch_lists_again_and_catches_up(
    kube: client.ApiClient, namespace: str
) -> None:
    """A watch from a resourceVersion the API server no longer has (410 Gone) makes the
    informer list again: objects created meanwhile are cached, deleted ones dropped."""
    core: Any = client.CoreV1Api(kube)
    expired = {"done": False}

    def lister(**kwargs: Any) -> Any:
        if kwargs.get("watch") and not expired["done"]:
            expired["done"] = True
            kwargs["resource_version"] = "1"  # long compacted away
        return core.list_namespaced_config_map(namespace, **kwargs)

    informer = Informer("ConfigMap", [(namespace, lister)])
    stop = threading.Event()
    threading.Thread(target=informer.run, args=(None, stop), daemon=True).start()
    try:
        informer.wait_synced(30)
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "after-410"}})
        found = eventually(lambda: informer.get(namespace, "after-410"), lambda v: v is not None)
        assert found is not None
        assert expired["done"]
        core.delete_namespaced_config_map("after-410", namespace)
        assert eventually(lambda: informer.get(namespace, "after-410"), lambda v: v is None) is None
    finally:
        stop.set()


def test_a_list_comes_in_pages_that_follow_the_api_servers_continue_tokens(
    kube: client.ApiClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The informer lists in pages of ``PAGE`` objects, following the API server's continue
    tokens to the last page, and caches every object. (A continue token that has expired is
    covered against a scripted lister in tests/unit/test_informer_lists_in_pages.py: a fresh
    test cluster's etcd has compacted nothing, so no real token expires within a test.)"""
    core: Any = client.CoreV1Api(kube)
    names = {f"paged-{i}" for i in range(7)}
    for name in sorted(names):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    monkeypatch.setattr(informer_module, "PAGE", 3)
    lists: list[dict[str, Any]] = []

    def lister(**kwargs: Any) -> Any:
        if not kwargs.get("watch"):
            lists.append(dict(kwargs))
        return core.list_namespaced_config_map(namespace, **kwargs)

    paged = Informer("ConfigMap", [(namespace, lister)])
    stop = threading.Event()
    threading.Thread(target=paged.run, args=(None, stop), daemon=True).start()
    try:
        paged.wait_synced(30)
    finally:
        stop.set()
    cached = {c["metadata"]["name"] for c in paged.values(namespace)}
    assert names <= cached
    assert len(lists) == -(-len(cached) // 3) >= 3  # ceil(objects / PAGE) requests
    assert all(call["limit"] == 3 for call in lists)
    assert [bool(call.get("_continue")) for call in lists] == [False] + [True] * (len(lists) - 1)
