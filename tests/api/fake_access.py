"""An in-memory ``ports.AccessReview``: tokens name identities, grants are RBAC-like triples.
A grant in namespace None holds in every namespace, as a ClusterRoleBinding does. The contract
test in tests/integration runs the same checks against ``KubeAccessReview`` on a real API
server."""

from __future__ import annotations

from canary.core.access import Permission
from canary.ports import Identity


class FakeAccessReview:
    """Tokens → identities; (username, permission, namespace) grants."""

    def __init__(
        self,
        tokens: dict[str, Identity],
        grants: set[tuple[str, Permission, str | None]],
    ) -> None:
        self.tokens, self.grants = tokens, grants

    def authenticate(self, token: str) -> Identity | None:
        """The identity of ``token``, or None."""
        return self.tokens.get(token)

    def allowed(self, who: Identity, permission: Permission, namespace: str | None) -> bool:
        """Whether a grant covers ``permission`` in ``namespace``."""
        return (who.username, permission, None) in self.grants or (
            namespace is not None and (who.username, permission, namespace) in self.grants
        )
