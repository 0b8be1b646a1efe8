"""Who called the API server: a ServiceAccount's kubeconfig, and its requests in the audit log.

``token_kubeconfig`` writes a kubeconfig that authenticates with a TokenRequest token of a
ServiceAccount: a ``canary run`` started with it acts as that account (the tests give it the
chart's RBAC; the scale harness a binding of its own). ``AuditLog`` reads, from the dev API
server's audit log (``devenv.components.AUDIT_POLICY``: every ServiceAccount's request at
Metadata level), the requests one user made: so a benchmark counts the controller's requests
alone, not those of the namespace controller deleting an earlier test's namespace, or of
Linkerd's SMI adaptor answering that deletion, which share the API server's own counters.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

VERBS = {
    "get": "GET",
    "list": "LIST",
    "watch": "WATCH",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETECOLLECTION",
}
"""Audit verbs as ``apiserver_request_total`` names them (HTTP methods, and LIST, WATCH)."""


def token_kubeconfig(
    kube: client.ApiClient, namespace: str, account: str, path: Path, hours: int = 2
) -> Path:
    """A kubeconfig for `system:serviceaccount:<namespace>:<account>` (a bound token)."""
    issued = client.CoreV1Api(kube).create_namespaced_service_account_token(
        account,
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=hours * 3600)
        ),
    )
    token = issued.status.token if issued.status else None
    if not token:
        raise RuntimeError(f"the API server issued no token for {namespace}/{account}")
    admin = kube.configuration
    user = f"system:serviceaccount:{namespace}:{account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "dev",
                "cluster": {"server": admin.host, "certificate-authority": admin.ssl_ca_cert},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": account, "context": {"cluster": "dev", "user": user, "namespace": namespace}}
        ],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def audit_events(path: Path, offset: int, containing: str = "") -> Iterator[dict[str, Any]]:
    """The audit log's events from byte ``offset`` on, only those whose line contains
    ``containing`` (a cheap filter before parsing; the caller still checks the field)."""
    needle = containing.encode()
    with path.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            if needle in line and line.endswith(b"\n"):
                yield json.loads(line)


def resource_of(ref: Mapping[str, Any]) -> str:
    """An audit event's ``objectRef`` as ``resource[/subresource]``."""
    sub = ref.get("subresource")
    return f"{ref['resource']}/{sub}" if sub else ref["resource"]


class AuditLog:
    """One user's requests in the API server's JSON audit log (Metadata level), counted from
    where the log stood when this was made."""

    def __init__(self, path: Path, user: str, resources: tuple[str, ...]) -> None:
        self.path, self.user, self.resources = path, user, resources
        self._needle = json.dumps(user).encode()
        self._offset = path.stat().st_size if path.exists() else 0
        self._partial = b""
        self._counts: Counter[tuple[str, str]] = Counter()
        self._gets: Counter[str] = Counter()

    def requests(self) -> Counter[tuple[str, str]]:
        """The user's requests so far, by (verb as ``apiserver_request_total`` names it,
        resource[/subresource]), of ``resources`` (a copy; a request is logged once the API
        server has answered it: a watch when it ends)."""
        self._read()
        return Counter(self._counts)

    def gets(self) -> Counter[str]:
        """The user's GETs so far, of ``resources``, by ``resource[/subresource] ns/name``
        (a copy)."""
        self._read()
        return Counter(self._gets)

    def _read(self) -> None:
        """Count the lines the log gained since the last read."""
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # b"" after a complete last line
        for line in lines:
            if self._needle in line:
                self._count(json.loads(line))

    def _count(self, event: dict[str, Any]) -> None:
        if (event.get("user") or {}).get("username") != self.user:
            return
        ref = event.get("objectRef") or {}
        if ref.get("resource") not in self.resources:
            return
        verb = event.get("verb", "")
        self._counts[VERBS.get(verb, verb.upper()), resource_of(ref)] += 1
        if verb == "get":
            self._gets[f"{resource_of(ref)} {ref.get('namespace', '')}/{ref.get('name', '')}"] += 1
