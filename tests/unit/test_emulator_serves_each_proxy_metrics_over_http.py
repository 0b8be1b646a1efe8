"""The engine advances traffic in real proxies' shapes, served over HTTP at a path per proxy."""

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from canary.adapters.kube.meshview import MeshSnapshot, PodView, RouteView, ServiceView
from canary.emulator import targets, topology
from canary.emulator.engine import Engine
from canary.emulator.server import MetricsServer


def _pod(name: str, app: str, uid: str = "", **annotations: str) -> PodView:
    return PodView(
        namespace="test",
        name=name,
        uid=uid or name,
        ip="10.1.0.1" if "canary" in name else "10.1.0.2",
        phase="Running",
        ready=True,
        labels={"app": app},
        annotations={f"sim.canary.dev/{k.replace('_', '-')}": v for k, v in annotations.items()},
        owner_replicaset="",
        service_account="default",
        container_ports=(8080,),
    )


def _snapshot(stable: int, canary: int, *pods: PodView) -> MeshSnapshot:
    services = (
        ServiceView("test", "web", {"app": "web"}, (80,), {"sim.canary.dev/rps": "1000"}),
        ServiceView("test", "web-stable", {"app": "web"}, (80,), {}),
        ServiceView("test", "web-canary", {"app": "web-canary"}, (80,), {}),
    )
    route = RouteView(
        "HTTPRoute", "test", "web", "web", (("web-stable", stable), ("web-canary", canary))
    )
    return MeshSnapshot(pods=pods, services=services, routes=(route,))


STABLE = _pod("web-1", "web")
CANARY = _pod("web-canary-1", "web-canary", error_rate="0.2")


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    """A metrics server on a free loopback port, serving a fresh engine."""
    srv = MetricsServer(Engine(seed=1), port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _get(server: MetricsServer, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://{server.address}{path}", timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def _sample(text: str, prefix: str, containing: str = "") -> int:
    return sum(
        int(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix) and containing in line
    )


def test_each_pod_has_its_own_metrics_path(server: MetricsServer) -> None:
    """Inbound series of a pod are served at /pods/<ns>/<pod>/metrics as text/plain."""
    engine = server.engine
    engine.apply(topology.build(_snapshot(80, 20, STABLE, CANARY)))
    engine.tick(10.0)
    status, content_type, text = _get(server, "/pods/test/web-canary-1/metrics")
    assert (status, content_type) == (200, "text/plain")
    requests = _sample(text, "request_total{")
    failures = _sample(text, "response_total{", 'classification="failure"')
    assert requests / engine.requests_sent == pytest.approx(0.2, abs=0.02)
    assert failures / requests == pytest.approx(0.2, abs=0.03)
    assert 'target_addr="10.1.0.1:8080"' in text
    assert _get(server, "/pods/test/nobody/metrics")[0] == 404
    assert _get(server, "/healthz")[:1] == (200,)


def test_load_generator_serves_outbound_series_per_endpoint(server: MetricsServer) -> None:
    """The load generator's proxy counts per backend endpoint with authority and dst_* labels."""
    engine = server.engine
    engine.apply(topology.build(_snapshot(50, 50, STABLE, CANARY)))
    engine.tick(2.0)
    _, _, text = _get(server, "/loadgen/test/web/metrics")
    assert 'authority="web-canary.test.svc.cluster.local:80"' in text
    assert 'dst_pod="web-canary-1"' in text
    assert _sample(text, 'request_total{direction="outbound"') == engine.requests_sent


def test_weight_change_moves_new_traffic_only(server: MetricsServer) -> None:
    """After 100/0 becomes 80/20 the canary's share of new requests is 20%; it had none before."""
    engine = server.engine
    engine.apply(topology.build(_snapshot(100, 0, STABLE, CANARY)))
    engine.tick(5.0)
    assert _sample(_get(server, "/pods/test/web-canary-1/metrics")[2], "request_total{") == 0
    before = engine.requests_sent
    engine.apply(topology.build(_snapshot(80, 20, STABLE, CANARY)))
    engine.tick(10.0)
    canary = _sample(_get(server, "/pods/test/web-canary-1/metrics")[2], "request_total{")
    assert canary / (engine.requests_sent - before) == pytest.approx(0.2, abs=0.02)


def test_replaced_pod_starts_from_zero(server: MetricsServer) -> None:
    """A pod recreated under the same name (new uid) serves counters from zero."""
    engine = server.engine
    engine.apply(topology.build(_snapshot(0, 1, STABLE, CANARY)))
    engine.tick(5.0)
    assert _sample(_get(server, "/pods/test/web-canary-1/metrics")[2], "request_total{") > 1000
    reborn = _pod("web-canary-1", "web-canary", uid="second-life")
    engine.apply(topology.build(_snapshot(0, 1, STABLE, reborn)))
    assert _sample(_get(server, "/pods/test/web-canary-1/metrics")[2], "request_total{") == 0


def test_targets_file_lists_every_proxy_at_the_server_address(
    server: MetricsServer, tmp_path: Path
) -> None:
    """The file-SD JSON names the server's address with each proxy's path; rewriting the same
    targets is a no-op and removal withdraws them."""
    engine = server.engine
    engine.apply(topology.build(_snapshot(80, 20, STABLE, CANARY)))
    assert targets.write(tmp_path, targets.groups(server.address, engine.target_labels()))
    assert not targets.write(tmp_path, targets.groups(server.address, engine.target_labels()))
    groups = json.loads((tmp_path / targets.FILE_NAME).read_text())
    assert {g["targets"][0] for g in groups} == {server.address}
    assert {g["labels"]["__metrics_path__"] for g in groups} == {
        "/pods/test/web-1/metrics",
        "/pods/test/web-canary-1/metrics",
        "/loadgen/test/web/metrics",
    }
    assert [p.name for p in tmp_path.iterdir()] == [targets.FILE_NAME]
    targets.remove(tmp_path)
    assert list(tmp_path.iterdir()) == []
