"""The traffic model routes requests by backend weight, then evenly over a backend's ready pods."""

import pytest

from canary.sim.traffic import (
    NO_BACKEND,
    NO_POD,
    NO_ROUTE_STATUS,
    UNAVAILABLE_STATUS,
    Backend,
    Behaviour,
    Mesh,
)

HEALTHY = Behaviour(error_rate=0.0, latency_p50_ms=20, latency_p99_ms=80)


def _mesh(seed: int, *pods: str) -> Mesh:
    mesh = Mesh(seed=seed)
    for pod in pods:
        mesh.set_pod(pod, HEALTHY)
    return mesh


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("stable", "canary"), [(80, 20), (95, 5), (1, 1), (950, 50)])
def test_backend_share_follows_relative_weights(seed: int, stable: int, canary: int) -> None:
    """Over 100k requests each backend's share is its weight's share within 0.5 points."""
    mesh = _mesh(seed, "s0", "c0")
    backends = {"stable": Backend(stable, ("s0",)), "canary": Backend(canary, ("c0",))}
    sent = sum(mesh.advance(1.0, 1000, backends) for _ in range(100))
    share = mesh.inbound("c0").requests / sent
    assert share == pytest.approx(canary / (stable + canary), abs=0.005)


def test_request_count_is_poisson_at_the_given_rate() -> None:
    """1000 one-second steps at 50 req/s send about 50 000 requests with Poisson spread."""
    mesh = _mesh(7, "p0")
    counts = [mesh.advance(1.0, 50, {"svc": Backend(1, ("p0",))}) for _ in range(1000)]
    mean = sum(counts) / len(counts)
    variance = sum((c - mean) ** 2 for c in counts) / (len(counts) - 1)
    assert mean == pytest.approx(50, abs=1.0)
    assert variance == pytest.approx(50, rel=0.15)


def test_pods_of_a_backend_share_its_traffic_evenly() -> None:
    """Four ready pods each get a quarter of their backend's requests."""
    pods = ("p0", "p1", "p2", "p3")
    mesh = _mesh(11, *pods)
    total = sum(mesh.advance(10.0, 1000, {"svc": Backend(1, pods)}) for _ in range(10))
    for pod in pods:
        assert mesh.inbound(pod).requests / total == pytest.approx(0.25, abs=0.01)


def test_zero_weight_backend_gets_no_requests() -> None:
    """A backend at weight 0 (100/0) serves nothing, however long the traffic runs."""
    mesh = _mesh(5, "s0", "c0")
    for _ in range(100):
        mesh.advance(1.0, 100, {"stable": Backend(100, ("s0",)), "canary": Backend(0, ("c0",))})
    assert mesh.inbound("c0").requests == 0
    assert mesh.inbound("s0").requests > 9000


def test_backend_without_ready_pods_fails_at_the_client() -> None:
    """Requests for a backend with no ready pod are 503s on the client's proxy and reach no pod."""
    mesh = _mesh(5, "s0")
    for _ in range(10):
        mesh.advance(1.0, 100, {"stable": Backend(50, ("s0",)), "canary": Backend(50, ())})
    failed = mesh.outbound()[("client", "canary", NO_POD)]
    assert failed.responses.keys() == {UNAVAILABLE_STATUS}
    assert failed.requests == failed.failures > 400
    assert mesh.inbound("s0").requests + failed.requests == sum(
        c.requests for c in mesh.outbound().values()
    )


def test_route_with_every_weight_zero_answers_500() -> None:
    """With all weights zero the route answers 500 at the client, recorded under no backend."""
    mesh = _mesh(5, "s0")
    sent = mesh.advance(1.0, 100, {"stable": Backend(0, ("s0",))})
    failed = mesh.outbound()[("client", NO_BACKEND, NO_POD)]
    assert failed.responses == {NO_ROUTE_STATUS: sent}
    assert mesh.inbound("s0").requests == 0


def test_outbound_counters_match_inbound_per_pod() -> None:
    """The client's per-endpoint outbound counters equal what each pod's inbound side counted."""
    mesh = _mesh(9, "s0", "s1", "c0")
    mesh.set_pod("c0", Behaviour(error_rate=0.2))
    backends = {"stable": Backend(70, ("s0", "s1")), "canary": Backend(30, ("c0",))}
    for _ in range(20):
        mesh.advance(1.0, 200, backends)
    outbound = mesh.outbound()
    for backend, pod in [("stable", "s0"), ("stable", "s1"), ("canary", "c0")]:
        assert outbound[("client", backend, pod)] == mesh.inbound(pod)


def test_same_seed_gives_same_counters() -> None:
    """Two meshes with the same seed and calls hold identical counters; another seed differs."""

    def run(seed: int) -> object:
        mesh = _mesh(seed, "s0", "c0")
        mesh.set_pod("c0", Behaviour(error_rate=0.1, latency_p50_ms=30, latency_p99_ms=300))
        for _ in range(30):
            mesh.advance(0.5, 80, {"s": Backend(9, ("s0",)), "c": Backend(1, ("c0",))})
        return mesh.inbound_all()

    assert run(123) == run(123)
    assert run(123) != run(124)


def test_replaced_pod_starts_from_zero_and_changed_behaviour_keeps_counters() -> None:
    """Removing and re-adding a pod resets its counters; changing its behaviour does not."""
    mesh = _mesh(3, "p0")
    mesh.advance(1.0, 100, {"svc": Backend(1, ("p0",))})
    before = mesh.inbound("p0").requests
    mesh.set_pod("p0", Behaviour(error_rate=0.5))
    assert mesh.inbound("p0").requests == before > 0
    assert mesh.behaviour("p0").error_rate == 0.5
    mesh.remove_pod("p0")
    assert mesh.pod_names() == []
    mesh.set_pod("p0", HEALTHY)
    assert mesh.inbound("p0").requests == 0


def test_negative_rate_or_weight_is_refused() -> None:
    """A negative rate, duration or weight raises ValueError instead of sampling nonsense."""
    mesh = _mesh(3, "p0")
    with pytest.raises(ValueError, match="non-negative"):
        mesh.advance(1.0, -1, {"svc": Backend(1, ("p0",))})
    with pytest.raises(ValueError, match="non-negative"):
        mesh.advance(1.0, 100, {"svc": Backend(-1, ("p0",)), "b": Backend(2, ("p0",))})


def test_one_clients_outbound_counters_are_read_alone_and_forgotten_with_their_pod() -> None:
    """``outbound_of`` holds one client's series, as ``outbound`` has them; removing a pod
    drops every client's series of requests sent to it, and no other series."""
    mesh = _mesh(13, "s0", "c0", "t0")
    for client, backends in (
        ("a", {"stable": Backend(50, ("s0",)), "canary": Backend(50, ("c0",))}),
        ("b", {"stable": Backend(50, ("t0",)), "canary": Backend(50, ("c0",))}),
    ):
        mesh.advance(10.0, 100, backends, client=client)
    mesh.advance(1.0, 100, {"gone": Backend(1, ())}, client="a")
    everything = mesh.outbound()
    for client in ("a", "b"):
        mine = {(b, p): c for (owner, b, p), c in everything.items() if owner == client}
        assert mesh.outbound_of(client) == mine
    assert mesh.outbound_of("nobody") == {}
    mesh.remove_pod("c0")
    assert set(mesh.outbound_of("a")) == {("stable", "s0"), ("gone", NO_POD)}
    assert set(mesh.outbound_of("b")) == {("stable", "t0")}
    assert {pod for (_, _, pod) in mesh.outbound()} == {"s0", "t0", NO_POD}
    assert mesh.outbound_of("a")[("stable", "s0")] == everything[("a", "stable", "s0")]
