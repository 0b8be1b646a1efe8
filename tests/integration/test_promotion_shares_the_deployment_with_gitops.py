"""Promotion and a GitOps controller sharing the stable Deployment, on a real API server.

A second field manager plays Argo CD (``argocd-controller``) or Flux (``kustomize-controller``):
it server-side applies the Deployment manifest from Git with ``force``, as both tools do. The
outcomes asserted here are the ones docs/gitops.md promises, read from the resulting objects and
their ``managedFields``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from canary.adapters.kube.cached import trim_deployment
from canary.adapters.kube.workloads import FIELD_MANAGER, KubeWorkloads, has_release
from canary.core.plan import Plan
from canary.core.vocabulary import EnsureCanary, EnsureServices, PromoteStable
from tests.unit.fake_cluster import make_plan

pytestmark = pytest.mark.integration

ARGO = "argocd-controller"
FLUX = "kustomize-controller"
GIT_IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.0"
RELEASE_IMAGE = "ghcr.io/stefanprodan/podinfo:6.1.0"
ROLLOUT = "podinfo-6-1-0"
CONTAINER = "[name=podinfo]"
IMAGE = f"spec.template.spec.containers{CONTAINER}.image"
RELEASE = "metadata.annotations.canary.dev/release"


def _plan(image: str = RELEASE_IMAGE, template_patch: dict[str, Any] | None = None) -> Plan:
    release: dict[str, Any] = {"images": {"podinfo": image}}
    if template_patch is not None:
        release["templatePatch"] = template_patch
    return make_plan(release=release)


def _has_release(workloads: KubeWorkloads, namespace: str, rollout: str, plan: Plan) -> bool:
    target = workloads.observe(namespace, rollout, plan).target
    assert target is not None
    return target.has_release


def _git_manifest(image: str = GIT_IMAGE, log_level: str | None = "info") -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "podinfo",
        "image": image,
        "ports": [{"containerPort": 9898, "name": "http", "protocol": "TCP"}],
    }
    if log_level is not None:
        container["env"] = [{"name": "LOG_LEVEL", "value": log_level}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "podinfo", "labels": {"app": "podinfo"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": {
                "metadata": {"labels": {"app": "podinfo"}},
                "spec": {"containers": [container]},
            },
        },
    }


class Git:
    """A GitOps controller: server-side applies Git's manifest with force, as its manager."""

    def __init__(self, kube: client.ApiClient, namespace: str, manager: str) -> None:
        self._apps = client.AppsV1Api(kube)
        self._namespace = namespace
        self.manager = manager

    def sync(self, manifest: dict[str, Any]) -> None:
        """Apply the manifest as it is in Git."""
        self._apps.patch_namespaced_deployment(
            "podinfo",
            self._namespace,
            manifest,
            field_manager=self.manager,
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    def sync_respecting_ignored(self, manifest: dict[str, Any]) -> None:
        """Argo CD with RespectIgnoreDifferences and the documented jq path: the container
        images in the desired state are replaced by the live ones before applying."""
        live = deployment(self._apps, self._namespace)
        images = {c["name"]: c["image"] for c in live["spec"]["template"]["spec"]["containers"]}
        for container in manifest["spec"]["template"]["spec"]["containers"]:
            container["image"] = images.get(container["name"], container["image"])
        self.sync(manifest)


def deployment(apps: client.AppsV1Api, namespace: str, name: str = "podinfo") -> dict[str, Any]:
    """The Deployment as a camelCase dict, managedFields included."""
    found = apps.read_namespaced_deployment(name, namespace)
    result: dict[str, Any] = apps.api_client.sanitize_for_serialization(found)
    return result


def _leaves(fields: dict[str, Any], path: str = "") -> set[str]:
    found: set[str] = set()
    for key, sub in fields.items():
        if key == ".":
            found.add(path)
            continue
        kind, _, rest = key.partition(":")
        if kind == "f":
            step = f"{path}.{rest}" if path else rest
        elif kind == "k":
            step = path + "".join(f"[{k}={v}]" for k, v in json.loads(rest).items())
        else:
            step = f"{path}[{rest}]"
        found |= _leaves(sub, step) if sub else {step}
    return found


def owned(obj: dict[str, Any], manager: str) -> set[str]:
    """Every field path a manager owns (all its managedFields entries)."""
    return {
        leaf
        for entry in obj["metadata"].get("managedFields") or []
        if entry["manager"] == manager
        for leaf in _leaves(entry.get("fieldsV1") or {})
    }


def _image(obj: dict[str, Any]) -> str:
    (container,) = obj["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


@pytest.fixture
def apps(kube: client.ApiClient) -> client.AppsV1Api:
    """The apps/v1 API."""
    return client.AppsV1Api(kube)


@pytest.fixture
def workloads(kube: client.ApiClient) -> KubeWorkloads:
    """The adapter under test."""
    return KubeWorkloads(kube)


@pytest.fixture
def app(kube: client.ApiClient, namespace: str) -> str:
    """The app as Git has it: Deployment podinfo (applied by Argo CD) and its apex Service."""
    Git(kube, namespace, ARGO).sync(_git_manifest())
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="podinfo"),
        spec=client.V1ServiceSpec(
            selector={"app": "podinfo"}, ports=[client.V1ServicePort(port=9898)]
        ),
    )
    client.CoreV1Api(kube).create_namespaced_service(namespace, service)
    return namespace


def test_promotion_owns_exactly_the_fields_the_release_changes(
    kube: client.ApiClient, app: str, apps: client.AppsV1Api, workloads: KubeWorkloads
) -> None:
    """After promotion canary owns the image and the release annotation, nothing else; Git keeps
    the rest."""
    before = owned(deployment(apps, app), ARGO)
    assert IMAGE in before

    workloads.apply(app, ROLLOUT, _plan(), PromoteStable())

    stable = deployment(apps, app)
    assert _image(stable) == RELEASE_IMAGE
    assert owned(stable, FIELD_MANAGER) == {IMAGE, RELEASE}
    assert owned(stable, ARGO) == before - {IMAGE}
    assert _has_release(workloads, app, ROLLOUT, _plan())


def test_template_patch_values_are_owned_by_canary_and_git_keeps_its_env(
    app: str, apps: client.AppsV1Api, workloads: KubeWorkloads
) -> None:
    """A templatePatch env var is canary's; the env var Git set stays Git's."""
    patch = {
        "spec": {"containers": [{"name": "podinfo", "env": [{"name": "FLAG", "value": "on"}]}]}
    }
    plan = _plan(template_patch=patch)

    workloads.apply(app, ROLLOUT, plan, PromoteStable())

    stable = deployment(apps, app)
    (container,) = stable["spec"]["template"]["spec"]["containers"]
    assert {e["name"]: e["value"] for e in container["env"]} == {"LOG_LEVEL": "info", "FLAG": "on"}
    flag = f"spec.template.spec.containers{CONTAINER}.env[name=FLAG]"
    assert {f"{flag}", f"{flag}.name", f"{flag}.value"} <= owned(stable, FIELD_MANAGER)
    assert not any("LOG_LEVEL" in path for path in owned(stable, FIELD_MANAGER))
    assert f"spec.template.spec.containers{CONTAINER}.env[name=LOG_LEVEL].value" in owned(
        stable, ARGO
    )


def test_git_sync_mid_release_finds_nothing_to_undo(
    kube: client.ApiClient, app: str, apps: client.AppsV1Api, workloads: KubeWorkloads
) -> None:
    """Mid-release canary has not written the stable Deployment, so re-applying Git changes
    nothing, and the canary Deployment (not in Git) keeps the release."""
    plan = _plan()
    workloads.apply(app, ROLLOUT, plan, EnsureServices())
    workloads.apply(app, ROLLOUT, plan, EnsureCanary(replicas=1))
    stable = deployment(apps, app)
    assert owned(stable, FIELD_MANAGER) == set()

    Git(kube, app, ARGO).sync(_git_manifest())

    after = deployment(apps, app)
    assert after["metadata"]["generation"] == stable["metadata"]["generation"]
    assert _image(after) == GIT_IMAGE
    canary = deployment(apps, app, "podinfo-canary")
    assert _image(canary) == RELEASE_IMAGE
    assert owned(canary, ARGO) == set()
    state = workloads.observe(app, ROLLOUT, plan)
    assert state.canary is not None
    assert state.canary.current
    assert not _has_release(workloads, app, ROLLOUT, plan)


def test_argo_cd_ignoring_the_image_keeps_the_release_through_syncs(
    kube: client.ApiClient, app: str, apps: client.AppsV1Api, workloads: KubeWorkloads
) -> None:
    """Argo CD with the documented ignore list re-applies Git after promotion: the release stays,
    and Git's other fields still win."""
    workloads.apply(app, ROLLOUT, _plan(), PromoteStable())
    promoted = deployment(apps, app)

    Git(kube, app, ARGO).sync_respecting_ignored(_git_manifest())

    synced = deployment(apps, app)
    assert synced["metadata"]["generation"] == promoted["metadata"]["generation"]
    assert _image(synced) == RELEASE_IMAGE
    assert IMAGE in owned(synced, FIELD_MANAGER) & owned(synced, ARGO)  # shared, same value
    assert _has_release(workloads, app, ROLLOUT, _plan())

    Git(kube, app, ARGO).sync_respecting_ignored(_git_manifest(log_level="debug"))
    changed = deployment(apps, app)
    (container,) = changed["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["env"]) == (
        RELEASE_IMAGE,
        [{"name": "LOG_LEVEL", "value": "debug"}],
    )


def test_a_field_git_removes_after_promotion_is_removed(
    kube: client.ApiClient, app: str, apps: client.AppsV1Api, workloads: KubeWorkloads
) -> None:
    """canary claimed no more than the release: Git dropping its env var drops it."""
    workloads.apply(app, ROLLOUT, _plan(), PromoteStable())

    Git(kube, app, ARGO).sync_respecting_ignored(_git_manifest(log_level=None))

    (container,) = deployment(apps, app)["spec"]["template"]["spec"]["containers"]
    assert "env" not in container
    assert container["image"] == RELEASE_IMAGE


def test_flux_override_takes_the_image_back_and_canary_sees_it(
    kube: client.ApiClient, app: str, apps: client.AppsV1Api, workloads: KubeWorkloads
) -> None:
    """Flux without IfNotPresent forces Git's image back; canary no longer reports the release
    as applied (the annotation alone would say it is), and promoting again restores it."""
    flux = Git(kube, app, FLUX)
    flux.sync(_git_manifest())
    workloads.apply(app, ROLLOUT, _plan(), PromoteStable())

    flux.sync(_git_manifest())

    reverted = deployment(apps, app)
    assert _image(reverted) == GIT_IMAGE
    assert reverted["metadata"]["annotations"]["canary.dev/release"].startswith(ROLLOUT)
    assert IMAGE in owned(reverted, FLUX)
    assert IMAGE not in owned(reverted, FIELD_MANAGER)
    assert not _has_release(workloads, app, ROLLOUT, _plan())

    workloads.apply(app, ROLLOUT, _plan(), PromoteStable())
    assert _image(deployment(apps, app)) == RELEASE_IMAGE


def test_committing_the_released_image_changes_nothing_and_the_next_release_takes_it(
    kube: client.ApiClient, app: str, apps: client.AppsV1Api, workloads: KubeWorkloads
) -> None:
    """Writing the released image into Git is a no-op; the next release owns the image again."""
    workloads.apply(app, ROLLOUT, _plan(), PromoteStable())
    promoted = deployment(apps, app)

    Git(kube, app, ARGO).sync(_git_manifest(image=RELEASE_IMAGE))
    committed = deployment(apps, app)
    assert committed["metadata"]["generation"] == promoted["metadata"]["generation"]

    following = "ghcr.io/stefanprodan/podinfo:6.2.0"
    workloads.apply(app, "podinfo-6-2-0", _plan(following), PromoteStable())
    released = deployment(apps, app)
    assert _image(released) == following
    assert IMAGE in owned(released, FIELD_MANAGER)
    assert IMAGE not in owned(released, ARGO)
    assert _has_release(workloads, app, "podinfo-6-2-0", _plan(following))


def test_a_template_patch_release_is_seen_on_the_stable_and_its_revert_too(
    kube: client.ApiClient, app: str, apps: client.AppsV1Api, workloads: KubeWorkloads
) -> None:
    """A release of a templatePatch alone (labels, annotations, env values incl. an empty one,
    args, a CPU limit the API server writes as 500m) counts as on the stable after promotion —
    read directly and through the informer cache's trimmed copy — and no longer once Flux forces
    Git's value of the env var back."""
    patch = {
        "metadata": {"labels": {"tier": "web"}, "annotations": {"config/hash": "abc"}},
        "spec": {
            "containers": [
                {
                    "name": "podinfo",
                    "env": [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "EMPTY"}],
                    "args": ["--port", "9898"],
                    "resources": {"limits": {"cpu": "0.5"}},
                }
            ]
        },
    }
    plan = make_plan(release={"templatePatch": patch})
    flux = Git(kube, app, FLUX)
    flux.sync(_git_manifest())

    workloads.apply(app, ROLLOUT, plan, PromoteStable())

    stable = deployment(apps, app)
    (container,) = stable["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["cpu"] == "500m"  # rewritten: why it is not compared
    assert _has_release(workloads, app, ROLLOUT, plan)
    assert has_release(trim_deployment(stable), ROLLOUT, plan)

    flux.sync(_git_manifest())

    reverted = deployment(apps, app)
    (container,) = reverted["spec"]["template"]["spec"]["containers"]
    assert {"name": "LOG_LEVEL", "value": "info"} in container["env"]
    assert reverted["metadata"]["annotations"]["canary.dev/release"].startswith(ROLLOUT)
    assert not _has_release(workloads, app, ROLLOUT, plan)
    assert not has_release(trim_deployment(reverted), ROLLOUT, plan)
