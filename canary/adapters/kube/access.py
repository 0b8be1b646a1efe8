"""The cluster's authentication and authorization, asked about callers of canary's HTTP API.

``KubeAccessReview`` implements ``ports.AccessReview``: a TokenReview says who holds a bearer
token (ServiceAccount tokens, and OIDC ID tokens when the API server is set up for them), and a
SubjectAccessReview says whether that identity holds an RBAC permission. The controller needs
``create`` on ``tokenreviews`` and ``subjectaccessreviews`` (deploy/10-rbac.yaml).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from canary.adapters.kube.client import translated
from canary.core.access import Permission
from canary.ports import Identity


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
        extra = {k: tuple(v) for k, v in (user.extra or {}).items()}
        return Identity(
            username=user.username or "",
            uid=user.uid or "",
            groups=tuple(user.groups or ()),
            extra=extra or None,
        )

    def allowed(self, who: Identity, permission: Permission, namespace: str | None) -> bool:
        """Whether RBAC lets ``who`` do ``permission`` in ``namespace`` (None: everywhere)."""
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=who.username,
                uid=who.uid or None,
                groups=list(who.groups),
                extra={k: list(v) for k, v in (who.extra or {}).items()} or None,
                resource_attributes=client.V1ResourceAttributes(
                    group=permission.group,
                    resource=permission.resource,
                    subresource=permission.subresource or None,
                    verb=permission.verb,
                    namespace=namespace or "",
                ),
            )
        )
        with translated("create subjectaccessreview"):
            status = self._authz.create_subject_access_review(review).status
        return bool(status is not None and status.allowed and not status.denied)
