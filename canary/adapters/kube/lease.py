"""A coordination.k8s.io/v1 Lease as the leader-election lock (``ports.LeaseLock``).

Every write carries the resourceVersion it read, so two replicas racing for an expired lease
cannot both win: the loser gets a Conflict.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from canary.adapters.kube.client import translated
from canary.errors import Conflict


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


class KubeLease:
    """The Lease ``name`` in ``namespace``."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str = "canary-controller"):
        self._api: Any = client.CoordinationV1Api(api)
        self._raw = api
        self.namespace = namespace
        self.name = name

    def _read(self) -> dict[str, Any] | None:
        with translated(f"get lease {self.namespace}/{self.name}"):
            try:
                found = self._api.read_namespaced_lease(self.name, self.namespace)
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
        lease: dict[str, Any] = self._raw.sanitize_for_serialization(found)
        return lease

    def try_acquire(self, identity: str, ttl: timedelta) -> bool:
        """Take or renew the lease; False while someone else holds an unexpired one."""
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = self._read()
        spec = {
            "holderIdentity": identity,
            "leaseDurationSeconds": int(ttl.total_seconds()),
            "renewTime": stamp,
        }
        try:
            with translated(f"write lease {self.namespace}/{self.name}"):
                if lease is None:
                    body = {"metadata": {"name": self.name}, "spec": {**spec, "acquireTime": stamp}}
                    self._api.create_namespaced_lease(self.namespace, body)
                    return True
                current = lease.get("spec", {})
                holder = current.get("holderIdentity")
                renewed = _time(current.get("renewTime"))
                duration = timedelta(seconds=current.get("leaseDurationSeconds") or 0)
                if holder and holder != identity and renewed and now < renewed + duration:
                    return False
                if holder != identity:
                    spec["acquireTime"] = stamp
                    spec["leaseTransitions"] = (current.get("leaseTransitions") or 0) + 1
                lease["spec"] = {**current, **spec}
                self._api.replace_namespaced_lease(self.name, self.namespace, lease)
                return True
        except Conflict:
            return False

    def release(self, identity: str) -> None:
        """Clear the holder so a follower takes over without waiting out the TTL."""
        lease = self._read()
        if lease is None or lease.get("spec", {}).get("holderIdentity") != identity:
            return
        lease["spec"]["holderIdentity"] = None
        with translated(f"release lease {self.namespace}/{self.name}"):
            self._api.replace_namespaced_lease(self.name, self.namespace, lease)
