"""Reading one key of a Secret (notification URLs kept out of Rollouts and policies).

The chart lets the controller read only the Secrets it names (RBAC resourceNames from the value
``notifications.secretNames``), so a refusal says which value to change.
"""

from __future__ import annotations

import base64
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from canary.adapters.kube.client import translated
from canary.errors import TerminalError
from canary.model.policy import SecretKeyRef


class KubeSecrets:
    """Secrets through core/v1."""

    def __init__(self, api: client.ApiClient) -> None:
        self._core: Any = client.CoreV1Api(api)

    def value(self, namespace: str, ref: SecretKeyRef) -> str | None:
        """The decoded value, or None when the Secret or the key does not exist."""
        with translated(f"get secret {namespace}/{ref.name}"):
            try:
                secret = self._core.read_namespaced_secret(ref.name, namespace)
            except ApiException as error:
                if error.status == 404:
                    return None
                if error.status == 403:
                    raise TerminalError(
                        f"may not read Secret {namespace}/{ref.name}: canary reads only the "
                        "Secrets named in the chart value notifications.secretNames"
                    ) from error
                raise
        encoded = (secret.data or {}).get(ref.key)
        return base64.b64decode(encoded).decode() if encoded is not None else None
