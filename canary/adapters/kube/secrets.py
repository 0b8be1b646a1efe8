"""Reading one key of a Secret (notification URLs kept out of Rollouts and policies)."""

from __future__ import annotations

import base64
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from canary.adapters.kube.client import translated
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
                raise
        encoded = (secret.data or {}).get(ref.key)
        return base64.b64decode(encoded).decode() if encoded is not None else None
