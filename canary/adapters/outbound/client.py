"""A client of the policy controller's ``OutboundPolicies/Get``: which backends, at which weights,
Linkerd hands a proxy for an apex Service.

Who calls it: ``canary.emulator`` (to split its simulated load exactly as real proxies would).
What it must not do: interpret HTTPRoute objects itself (the answer is the policy controller's),
or let ``grpc`` errors escape: they become :class:`~canary.errors.ApiUnavailable`.

The question is the one a client proxy asks (``TrafficSpec``: ``source_workload`` =
``<namespace>:<pod>``, ``authority`` = ``<service>.<namespace>.svc.cluster.local:<port>``). The
answer's HTTP routes are searched for the catch-all rule (a match on path prefix ``/`` and
nothing else, which is what a rule without matches becomes), and its distribution is read:
``random_available`` gives weighted backends, ``first_available`` the first one, ``empty`` none.
Without any route the proxy sends to the Service itself, and so does the answer for a Service
with no accepted HTTPRoute (the controller's default route has the Service as backend).
"""

from __future__ import annotations

from typing import Any

import grpc

from canary.errors import ApiUnavailable

try:
    from canary.adapters.outbound._generated import outbound_pb2
except ImportError as _missing:  # pragma: no cover - an install that skipped the generation
    raise ImportError(
        "canary.adapters.outbound needs the messages generated from Linkerd's protobufs: run "
        "`python -m canary.adapters.outbound.generate PROTO_DIR` (make venv does)"
    ) from _missing

GET = "/io.linkerd.proxy.outbound.OutboundPolicies/Get"
CLUSTER_DOMAIN = "cluster.local"

Backends = tuple[tuple[str, float], ...]
"""``(Service name, weight)`` pairs, in the order the policy lists them."""

_pb: Any = outbound_pb2


def _catch_all(match: Any) -> bool:
    """A match every request satisfies: no headers, query or method; path prefix ``/``."""
    if match.headers or match.query_params or match.HasField("method"):
        return False
    if not match.HasField("path"):
        return True
    return match.path.WhichOneof("kind") == "prefix" and match.path.prefix in ("", "/")


def _service(route_backend: Any) -> str:
    metadata = route_backend.backend.metadata
    return str(metadata.resource.name) if metadata.WhichOneof("kind") == "resource" else ""


def _distribution(distribution: Any) -> Backends:
    kind = distribution.WhichOneof("kind")
    if kind == "random_available":
        return tuple(
            (_service(b.backend), float(b.weight)) for b in distribution.random_available.backends
        )
    if kind == "first_available" and distribution.first_available.backends:
        return ((_service(distribution.first_available.backends[0]), 1.0),)
    return ()


def _http_routes(policy: Any) -> list[Any]:
    protocol = policy.protocol
    kind = protocol.WhichOneof("kind")
    if kind == "detect":
        return list(protocol.detect.http1.routes)
    if kind in ("http1", "http2"):
        return list(getattr(protocol, kind).routes)
    return []


def backends_of(policy: Any) -> Backends | None:
    """The weighted backends of the catch-all rule of an ``OutboundPolicy``; None when the
    policy has no HTTP route with such a rule."""
    for route in _http_routes(policy):
        for rule in route.rules:
            if not rule.matches or any(_catch_all(m) for m in rule.matches):
                return _distribution(rule.backends)
    return None


class OutboundPolicies:
    """``OutboundPolicies/Get`` on one policy controller (``host:port``, plaintext as the
    controller serves it to its own proxies' sidecar)."""

    def __init__(self, address: str, timeout: float = 2.0) -> None:
        self.address = address
        self._timeout = timeout
        self._channel = grpc.insecure_channel(address)
        self._get = self._channel.unary_unary(
            GET,
            request_serializer=_pb.TrafficSpec.SerializeToString,
            response_deserializer=_pb.OutboundPolicy.FromString,
        )

    def backends(self, namespace: str, service: str, port: int, source_pod: str) -> Backends:
        """What a proxy in pod ``namespace/source_pod`` is told for ``service:port``: its
        weighted backend Services (the Service itself when no route applies).

        Raises :class:`~canary.errors.ApiUnavailable` when the controller does not answer."""
        spec = _pb.TrafficSpec(
            source_workload=f"{namespace}:{source_pod}",
            authority=f"{service}.{namespace}.svc.{CLUSTER_DOMAIN}:{port}",
        )
        try:
            policy = self._get(spec, timeout=self._timeout)
        except grpc.RpcError as error:
            raise ApiUnavailable(
                f"OutboundPolicies/Get on {self.address} for {service}.{namespace}:{port} "
                f"failed: {error}"
            ) from error
        found = backends_of(policy)
        return ((service, 1.0),) if found is None else found

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()
