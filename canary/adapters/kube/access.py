"""The cluster's authentication and authorization, asked about callers of canary's HTTP API.

``KubeAccessReview`` implements ``ports.AccessReview``: a TokenReview says who holds a bearer
token (ServiceAccount tokens, and OIDC ID tokens when the API server is set up for them), and a
SubjectAccessReview says whether that identity holds an RBAC permission. The controller needs
``create`` on ``tokenreviews`` and ``subjectaccessreviews`` (the chart grants them, charts/canary).

``KubeSelfReview`` serves ``canary dashboard`` on a person's own machine: the caller is whoever
the kubeconfig names (a SelfSubjectReview, which also covers client certificates), once they
present the session's secret; their rights come from SelfSubjectAccessReviews. Anyone may create
both, so it needs no extra RBAC.
"""

from __future__ import annotations

import hmac
from typing import Any

from kubernetes import client

from canary.adapters.kube.client import translated
from canary.core.access import Permission
from canary.ports import Identity


def _identity(user: Any) -> Identity:
    """An ``Identity`` from the API server's ``UserInfo`` (TokenReview or SelfSubjectReview)."""
    extra = {k: tuple(v) for k, v in (user.extra or {}).items()}
    return Identity(
        username=user.username or "",
        uid=user.uid or "",
        groups=tuple(user.groups or ()),
        extra=extra or None,
    )


def _attributes(permission: Permission, namespace: str | None) -> Any:
    """The resource attributes an access review asks about (namespace None: everywhere)."""
    return client.V1ResourceAttributes(
        group=permission.group,
        resource=permission.resource,
        subresource=permission.subresource or None,
        verb=permission.verb,
        namespace=namespace or "",
    )


class KubeAccessReview:
    """TokenReviews and SubjectAccessReviews through authentication/v1 and authorization/v1."""

    def __init__(self, api: client.ApiClient, audiences: list[str] | None = None) -> None:
        self._authn: Any = client.AuthenticationV1Api(api)
        self._authz: Any = client.AuthorizationV1Api(api)
        self._audiences = audiences

    def authenticate(self, token: str) -> Identity | None:
        """The identity the API server finds for ``token``; None when it is not valid."""
        review = client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=token, audiences=self._audiences)
        )
        with translated("create tokenreview"):
            status = self._authn.create_token_review(review).status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        return _identity(user)

    def allowed(self, who: Identity, permission: Permission, namespace: str | None) -> bool:
        """Whether RBAC lets ``who`` do ``permission`` in ``namespace`` (None: everywhere)."""
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=who.username,
                uid=who.uid or None,
                groups=list(who.groups),
                extra={k: list(v) for k, v in (who.extra or {}).items()} or None,
                resource_attributes=_attributes(permission, namespace),
            )
        )
        with translated("create subjectaccessreview"):
            status = self._authz.create_subject_access_review(review).status
        return bool(status is not None and status.allowed and not status.denied)


class KubeSelfReview:
    """The kubeconfig's own identity, for callers that know ``secret``; its own RBAC rights."""

    def __init__(self, api: client.ApiClient, secret: str) -> None:
        self._authn: Any = client.AuthenticationV1Api(api)
        self._authz: Any = client.AuthorizationV1Api(api)
        self._secret = secret

    def authenticate(self, token: str) -> Identity | None:
        """The kubeconfig's user (a SelfSubjectReview) when ``token`` is the secret."""
        if not hmac.compare_digest(token.encode(), self._secret.encode()):
            return None
        with translated("create selfsubjectreview"):
            status = self._authn.create_self_subject_review(client.V1SelfSubjectReview()).status
        user = status.user_info if status is not None else None
        if user is None:
            return None
        return _identity(user)

    def allowed(self, who: Identity, permission: Permission, namespace: str | None) -> bool:
        """Whether the kubeconfig's user may do ``permission`` (SelfSubjectAccessReview);
        ``who`` is that user, as ``authenticate`` returned."""
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=_attributes(permission, namespace),
            )
        )
        with translated("create selfsubjectaccessreview"):
            status = self._authz.create_self_subject_access_review(review).status
        return bool(status is not None and status.allowed and not status.denied)
