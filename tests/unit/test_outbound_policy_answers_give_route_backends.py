"""What a proxy would do with an OutboundPolicy answer: the catch-all rule's weighted backends."""

from __future__ import annotations

from typing import Any

from canary.adapters.outbound._generated import (
    http_route_pb2,
    meta_pb2,
    outbound_pb2,
)
from canary.adapters.outbound.client import backends_of

pb: Any = outbound_pb2
route_pb: Any = http_route_pb2
meta: Any = meta_pb2


def _backend(name: str, weight: int) -> Any:
    resource = meta.Resource(group="core", kind="Service", name=name, namespace="shop", port=80)
    backend = pb.Backend(metadata=meta.Metadata(resource=resource))
    return pb.HttpRoute.WeightedRouteBackend(
        backend=pb.HttpRoute.RouteBackend(backend=backend), weight=weight
    )


def _policy(*rules: Any, detect: bool = True) -> Any:
    route = pb.HttpRoute(rules=list(rules))
    if detect:
        protocol = pb.ProxyProtocol(
            detect=pb.ProxyProtocol.Detect(http1=pb.ProxyProtocol.Http1(routes=[route]))
        )
    else:
        protocol = pb.ProxyProtocol(http2=pb.ProxyProtocol.Http2(routes=[route]))
    return pb.OutboundPolicy(protocol=protocol)


def _weighted(*backends: tuple[str, int], matches: list[Any] | None = None) -> Any:
    distribution = pb.HttpRoute.Distribution(
        random_available=pb.HttpRoute.Distribution.RandomAvailable(
            backends=[_backend(n, w) for n, w in backends]
        )
    )
    return pb.HttpRoute.Rule(matches=matches or [], backends=distribution)


def test_the_catch_all_rule_gives_its_weighted_backends() -> None:
    """A header-matched rule first, then the catch-all (path prefix /): the catch-all counts."""
    header = route_pb.HttpRouteMatch(headers=[route_pb.HeaderMatch(name="x-canary", exact=b"1")])
    prefix = route_pb.HttpRouteMatch(path=route_pb.PathMatch(prefix="/"))
    policy = _policy(
        _weighted(("web-canary", 1), matches=[header]),
        _weighted(("web-stable", 80), ("web-canary", 20), matches=[prefix]),
    )
    assert backends_of(policy) == (("web-stable", 80.0), ("web-canary", 20.0))


def test_first_available_and_empty_distributions() -> None:
    """first_available sends everything to its first backend; empty sends nowhere."""
    first = pb.HttpRoute.Distribution(
        first_available=pb.HttpRoute.Distribution.FirstAvailable(
            backends=[_backend("web", 1).backend]
        )
    )
    assert backends_of(_policy(pb.HttpRoute.Rule(backends=first), detect=False)) == (("web", 1.0),)
    empty = pb.HttpRoute.Distribution(empty=pb.HttpRoute.Distribution.Empty())
    assert backends_of(_policy(pb.HttpRoute.Rule(backends=empty))) == ()


def test_no_http_route_means_no_split() -> None:
    """An opaque target, or routes that only match some requests, give no split."""
    opaque = pb.OutboundPolicy(protocol=pb.ProxyProtocol(opaque=pb.ProxyProtocol.Opaque()))
    assert backends_of(opaque) is None
    only = route_pb.HttpRouteMatch(path=route_pb.PathMatch(prefix="/admin"))
    assert backends_of(_policy(_weighted(("admin", 1), matches=[only]))) is None
