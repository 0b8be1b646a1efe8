"""Get, create, patch and delete namespaced custom objects (routes, Rollouts) as plain dicts.

Used by the routers and the Rollout store. Reads return None for objects that do not exist.
"""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from canary.adapters.kube.client import translated


class CustomObjects:
    """Namespaced custom objects of one API version and plural."""

    def __init__(self, api: client.ApiClient, api_version: str, plural: str) -> None:
        self._api = client.CustomObjectsApi(api)
        self.group, self.version = api_version.split("/", 1)
        self.plural = plural

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        with translated(f"get {self.plural} {namespace}/{name}"):
            try:
                found = self._api.get_namespaced_custom_object(
                    self.group, self.version, namespace, self.plural, name
                )
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
        return cast(dict[str, Any], found)

    def list(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every object (in one namespace, or in all)."""
        with translated(f"list {self.plural}"):
            if namespace is None:
                found = self._api.list_cluster_custom_object(self.group, self.version, self.plural)
            else:
                found = self._api.list_namespaced_custom_object(
                    self.group, self.version, namespace, self.plural
                )
        return cast(list[dict[str, Any]], cast(dict[str, Any], found).get("items", []))

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create the object."""
        name = body.get("metadata", {}).get("name", "")
        with translated(f"create {self.plural} {namespace}/{name}"):
            made = self._api.create_namespaced_custom_object(
                self.group, self.version, namespace, self.plural, body
            )
        return cast(dict[str, Any], made)

    def patch(self, namespace: str, name: str, patch: Any) -> dict[str, Any]:
        """Apply a JSON patch (a list) or a JSON merge patch (a dict)."""
        # The client sends every custom-object patch as a merge patch unless told otherwise.
        kind = "json-patch" if isinstance(patch, list) else "merge-patch"
        with translated(f"patch {self.plural} {namespace}/{name}"):
            done = self._api.patch_namespaced_custom_object(
                self.group,
                self.version,
                namespace,
                self.plural,
                name,
                patch,
                _content_type=f"application/{kind}+json",
            )
        return cast(dict[str, Any], done)

    def replace_status(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace the status subresource (body carries metadata.resourceVersion as a guard)."""
        with translated(f"update {self.plural}/status {namespace}/{name}"):
            done = self._api.replace_namespaced_custom_object_status(
                self.group, self.version, namespace, self.plural, name, body
            )
        return cast(dict[str, Any], done)

    def delete(
        self, namespace: str, name: str, uid: str | None, resource_version: str | None
    ) -> None:
        """Delete the object if it is still the version read (uid and resourceVersion
        preconditions: raises Conflict when it changed); nothing when it is already gone."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid, resource_version=resource_version)
        )
        with translated(f"delete {self.plural} {namespace}/{name}"):
            try:
                self._api.delete_namespaced_custom_object(
                    self.group, self.version, namespace, self.plural, name, body=options
                )
            except ApiException as error:
                if error.status != 404:
                    raise
