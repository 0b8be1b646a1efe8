"""The API server authenticates ServiceAccount tokens and enforces RBAC."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

pytestmark = pytest.mark.integration


def _token_client(kube: client.ApiClient, token: str) -> client.ApiClient:
    admin = kube.configuration
    configuration = client.Configuration()
    configuration.host = admin.host
    configuration.ssl_ca_cert = admin.ssl_ca_cert
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def test_service_account_bound_to_a_narrow_role_is_refused_other_actions(
    kube: client.ApiClient, namespace: str
) -> None:
    """A ServiceAccount allowed only to list pods can list pods but gets 403 for secrets."""
    core = client.CoreV1Api(kube)
    rbac = client.RbacAuthorizationV1Api(kube)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader-reads-pods"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
            ],
        ),
    )
    issued = core.create_namespaced_service_account_token(
        "reader",
        namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    )
    token = issued.status.token if issued.status else None
    assert token, "the API server issued no ServiceAccount token"

    with _token_client(kube, token) as reader:
        as_reader = client.CoreV1Api(reader)
        assert _eventually_lists_pods(as_reader, namespace)
        with pytest.raises(client.ApiException) as refused:
            as_reader.list_namespaced_secret(namespace)
    assert refused.value.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in str(refused.value.body)


def _eventually_lists_pods(api: client.CoreV1Api, namespace: str) -> bool:
    """True once the new binding reaches the authorizer's cache (it takes well under 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return api.list_namespaced_pod(namespace).items == []
        except client.ApiException as error:
            if error.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
