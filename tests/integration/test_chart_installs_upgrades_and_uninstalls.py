"""The Helm chart with the real helm: lint-clean in both modes, `deploy/` is its rendering,
values outside the schema are refused, and it installs, upgrades and uninstalls on the real API
server — where a namespaced install's account cannot touch a namespace it was not given."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from bench import accounts
from canary.adapters.kube.rollouts import KubeRolloutStore
from canary.core import chat
from devenv import layout, manifests
from tests.integration import serviceaccount
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration

CHART = str(manifests.CHART)
KUBE = ("--kube-version", layout.kubernetes_version())  # helm's offline default is too old


@pytest.fixture
def helm(cluster: Cluster, tmp_path: Path) -> Any:
    """``helm(*args)`` against the dev cluster; fails the test with helm's output on error."""

    def run(*args: str, ok: bool = True) -> tuple[int, str]:
        done = serviceaccount.helm(cluster, *args, home=tmp_path / "helm")
        if ok:
            assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.returncode, done.stdout + done.stderr

    return run


def _render(helm: Any, *args: str) -> list[dict[str, Any]]:
    _, out = helm("template", "canary", CHART, "-n", "canary-system", *KUBE, *args)
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_the_chart_lints_clean_in_both_modes(helm: Any) -> None:
    """`helm lint --strict` passes cluster-wide and namespaced."""
    for values in ([], ["--set", "watchNamespaces={team-a,team-b}"]):
        _, out = helm("lint", "--strict", CHART, *values)
        assert "0 chart(s) failed" in out, out


def test_deploy_is_the_chart_rendered_with_default_values() -> None:
    """`make deploy` has been run: deploy/ equals `helm template` of the chart."""
    assert manifests.stale(serviceaccount.helm_binary()) == []


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (["--set", "replicas=0"], "replicas"),
        (["--set", "watchNamespaces={Team_A}"], "watchNamespaces"),
        (["--set", "controller.tick=soon"], "tick"),
        (["--set", "prometheus.timeout=soon"], "timeout"),
        (["--set", "replica=2"], "replica"),
        (["--set", "slack.identities.users.alice.username=alice"], "alice"),
        (["--set", "controller.workers=0"], "workers"),
        (["--set", "controller.customQueryWorkers=0"], "customQueryWorkers"),
        (["--set", "controller.kubeQPS=0"], "kubeQPS"),
        (["--set", "controller.kubeBurst=1.5"], "kubeBurst"),
    ],
)
def test_values_outside_the_schema_are_refused(helm: Any, values: list[str], named: str) -> None:
    """A bad value fails rendering and the message names it."""
    code, out = helm("template", "canary", CHART, *KUBE, *values, ok=False)
    assert code != 0
    assert named in out, out


def test_slack_values_render_the_identity_mapping_and_the_app_secret(
    helm: Any, tmp_path: Path
) -> None:
    """With slack.secret, the platform team's mapping becomes a ConfigMap the controller reads
    (and that parses as its mapping), and the signing secret and bot token come from the Secret."""
    values = tmp_path / "slack.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "slack": {
                    "secret": "canary-slack",
                    "identities": {
                        "workspace": "T0123ABCD",
                        "users": {"U0123ABCD": {"username": "alice@corp.example"}},
                        "userGroups": {"S0456EFGH": {"groups": ["release-approvers"]}},
                    },
                }
            }
        )
    )
    docs = _render(helm, "-f", str(values))
    (config,) = [d for d in docs if d["metadata"]["name"] == "canary-slack-identities"]
    mapping = chat.SlackIdentities.model_validate(yaml.safe_load(config["data"]["identities.yaml"]))
    assert mapping.users["U0123ABCD"].username == "alice@corp.example"
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--slack-identities=/etc/canary/slack/identities.yaml" in container["args"]
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert secrets["CANARY_SLACK_SIGNING_SECRET"] == {
        "name": "canary-slack",
        "key": "signingSecret",
    }
    assert secrets["CANARY_SLACK_BOT_TOKEN"]["key"] == "botToken"
    assert {"name": "slack-identities", "configMap": {"name": "canary-slack-identities"}} in pod[
        "volumes"
    ]
    assert not [d for d in _render(helm) if "slack" in d["metadata"]["name"]]


def test_workers_and_the_api_rate_limit_reach_the_controllers_arguments(helm: Any) -> None:
    """controller.workers, .customQueryWorkers, .kubeQPS and .kubeBurst become `canary run`'s
    --workers, --custom-query-workers, --kube-qps and --kube-burst; by default the flags' own
    defaults (4, 2, 20, 30)."""
    flags = ("--workers", "--custom-query-workers", "--kube-")

    def args(*values: str) -> list[str]:
        (deployment,) = [d for d in _render(helm, *values) if d["kind"] == "Deployment"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        return [a for a in container["args"] if a.startswith(flags)]

    assert args() == [
        "--workers=4",
        "--custom-query-workers=2",
        "--kube-qps=20",
        "--kube-burst=30",
    ]
    tuned = '{"workers": 16, "customQueryWorkers": 6, "kubeQPS": 50.5, "kubeBurst": 100}'
    assert args("--set-json", f"controller={tuned}") == [  # --set makes 50.5 a string
        "--workers=16",
        "--custom-query-workers=6",
        "--kube-qps=50.5",
        "--kube-burst=100",
    ]


def test_the_prometheus_timeout_reaches_the_controllers_arguments(helm: Any) -> None:
    """prometheus.timeout becomes --prometheus-timeout (30s by default)."""

    def args(*values: str) -> list[str]:
        (deployment,) = [d for d in _render(helm, *values) if d["kind"] == "Deployment"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        return [a for a in container["args"] if a.startswith("--prometheus-timeout")]

    assert args() == ["--prometheus-timeout=30s"]
    assert args("--set", "prometheus.timeout=1m") == ["--prometheus-timeout=1m"]


def test_a_namespaced_rendering_grants_only_the_listed_namespaces(helm: Any) -> None:
    """watchNamespaces: a Role+RoleBinding per listed namespace; the only cluster-wide rights the
    controller is bound to are the reviews of its API's callers (TokenReview and
    SubjectAccessReview, cluster-scoped by nature); the approver and operator ClusterRoles are for
    people and bound to no one; the controller told to watch just those namespaces."""
    docs = _render(helm, "--set", "watchNamespaces={team-a,team-b}")
    kinds = {(d["kind"], d["metadata"].get("namespace")) for d in docs}
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    bound = {d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"}
    assert bound == {"canary-api-auth"}
    assert {
        (group, resource, verb)
        for rule in roles["canary-api-auth"]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    } == {
        ("authentication.k8s.io", "tokenreviews", "create"),
        ("authorization.k8s.io", "subjectaccessreviews", "create"),
    }
    assert set(roles) == {"canary-api-auth", "canary-approver", "canary-operator"}
    assert {("Role", "team-a"), ("Role", "team-b"), ("RoleBinding", "team-a")} <= kinds
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--watch-namespace=team-a,team-b" in container["args"]


def _fresh_namespace(core: client.CoreV1Api, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


@pytest.fixture
def namespaces(kube: client.ApiClient) -> Iterator[list[str]]:
    """Up to three more fresh namespaces (deleted after the test)."""
    core = client.CoreV1Api(kube)
    made = [_fresh_namespace(core, "chart") for _ in range(3)]
    try:
        yield made
    finally:
        for name in made:
            core.delete_namespace(name)


def test_install_upgrade_uninstall(
    helm: Any, kube: client.ApiClient, namespaces: list[str]
) -> None:
    """Installed into a namespace enforcing the restricted Pod Security Standard: 2 ready
    replicas and the cluster RBAC; upgraded to 3 replicas with the other values kept;
    uninstalled: its objects are gone, cluster-scoped ones included."""
    namespace = namespaces[0]
    release = f"canary-{namespace[-6:]}"
    restricted = {"pod-security.kubernetes.io/enforce": "restricted"}
    client.CoreV1Api(kube).patch_namespace(namespace, {"metadata": {"labels": restricted}})
    apps: Any = client.AppsV1Api(kube)
    rbac = client.RbacAuthorizationV1Api(kube)
    helm("install", release, CHART, "-n", namespace, "--set", "podDisruptionBudget.minAvailable=1",
         "--wait", "--timeout", "120s")  # fmt: skip
    deployment = apps.read_namespaced_deployment(release, namespace)
    assert deployment.spec.replicas == 2
    assert deployment.status.ready_replicas == 2
    assert rbac.read_cluster_role(release).rules
    helm("upgrade", release, CHART, "-n", namespace, "--reuse-values", "--set", "replicas=3",
         "--wait", "--timeout", "120s")  # fmt: skip
    deployment = apps.read_namespaced_deployment(release, namespace)
    assert deployment.spec.replicas == 3
    assert deployment.status.ready_replicas == 3
    _, values = helm("get", "values", release, "-n", namespace, "-o", "yaml")
    assert yaml.safe_load(values) == {"podDisruptionBudget": {"minAvailable": 1}, "replicas": 3}
    helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "120s")
    with pytest.raises(client.ApiException) as gone:
        rbac.read_cluster_role(release)
    assert gone.value.status == 404
    assert apps.list_namespaced_deployment(namespace).items == []


def test_a_namespaced_install_cannot_touch_another_namespace(
    helm: Any, kube: client.ApiClient, namespaces: list[str], tmp_path: Path
) -> None:
    """As the ServiceAccount of an install given namespace A: Rollouts, Deployments and the
    named Secret in A are reachable; in B, cluster-wide, and Secrets it does not name, 403."""
    home, given, other = namespaces
    # A release name of its own (its cluster-scoped objects must not collide with deploy/'s) and
    # no commands policy: bound cluster-wide it would judge every other test's commands; it has
    # its own test (test_approvals_are_decided_by_rbac.py).
    release = f"canary-{home[-6:]}"
    helm(
        "install", release, CHART, "-n", home, "--set", f"watchNamespaces={{{given}}}",
        "--set", "serviceAccount.name=canary", "--set", "approvals.admissionPolicy=false",
    )  # fmt: skip
    try:
        _only_its_namespace(kube, home, given, other, tmp_path)
    finally:
        helm("uninstall", release, "-n", home, "--wait", "--timeout", "120s")


def _only_its_namespace(
    kube: client.ApiClient, home: str, given: str, other: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(kube)
    for namespace in (given, other):
        for secret in ("canary-notifications", "database"):
            core.create_namespaced_secret(
                namespace,
                client.V1Secret(metadata=client.V1ObjectMeta(name=secret), string_data={"k": "v"}),
            )
    config = accounts.token_kubeconfig(kube, home, "canary", tmp_path / "sa.kubeconfig")
    with serviceaccount.client_for(config) as api:
        serviceaccount.wait_until_allowed(api, given)
        custom: Any = client.CustomObjectsApi(api)
        apps: Any = client.AppsV1Api(api)
        as_core: Any = client.CoreV1Api(api)
        with pytest.raises(client.ApiException) as absent:
            apps.read_namespaced_deployment("podinfo", given)
        assert absent.value.status == 404  # allowed to look; there is none
        # The controller's store, scoped as `--watch-namespace` scopes it, lists without 403.
        assert KubeRolloutStore(api, [given]).list() == []
        assert as_core.read_namespaced_secret("canary-notifications", given).data
        refused = [
            lambda: custom.list_namespaced_custom_object(
                "canary.dev", "v1alpha1", other, "rollouts"
            ),
            lambda: custom.list_cluster_custom_object("canary.dev", "v1alpha1", "rollouts"),
            lambda: apps.read_namespaced_deployment("podinfo", other),
            apps.list_deployment_for_all_namespaces,
            lambda: as_core.read_namespaced_secret("canary-notifications", other),
            lambda: as_core.read_namespaced_secret("database", given),
            lambda: as_core.list_namespaced_secret(given),
            lambda: as_core.create_namespaced_service(
                other, {"metadata": {"name": "x"}, "spec": {"ports": [{"port": 80}]}}
            ),
        ]
        for call in refused:
            with pytest.raises(client.ApiException) as error:
                call()
            assert error.value.status == 403, error.value.body


def test_the_optional_service_monitor_scrapes_the_api_service(helm: Any) -> None:
    """Off by default; on, it selects the API Service and scrapes /metrics on its port."""
    assert not [d for d in _render(helm) if d["kind"] == "ServiceMonitor"]
    docs = _render(
        helm, "--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prom"
    )
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    (service,) = [d for d in docs if d["kind"] == "Service"]
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert service["spec"]["ports"][0]["name"] == "http"
