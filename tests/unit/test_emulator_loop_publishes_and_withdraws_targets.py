"""The emulator process loop: follows cluster changes and the policy controller's answers,
survives bad annotations, and withdraws its targets when stopped. Time is the test's clock: the
loop is turned by hand."""

import json
import threading
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest

from canary.adapters.kube.meshview import MeshSnapshot, PodView, RouteView, ServiceView
from canary.emulator.command import Emulator, build_parser


class FakeView:
    """A cluster whose snapshot the test replaces."""

    def __init__(self, snapshot: MeshSnapshot) -> None:
        self.changed = threading.Event()
        self.snapshot_value = snapshot
        self.running = False

    def start(self) -> None:
        """Begin 'watching'."""
        self.running = True

    def stop(self) -> None:
        """Stop 'watching'."""
        self.running = False

    def snapshot(self) -> MeshSnapshot:
        """The current fake cluster."""
        return self.snapshot_value

    def replace(self, snapshot: MeshSnapshot) -> None:
        """Change the cluster and signal it, as a watch event does."""
        self.snapshot_value = snapshot
        self.changed.set()


def _pod(name: str, app: str, **annotations: str) -> PodView:
    return PodView(
        namespace="demo",
        name=name,
        uid=name,
        ip="10.2.0.1",
        phase="Running",
        ready=True,
        labels={"app": app},
        annotations=annotations,
        owner_replicaset="",
        service_account="default",
        container_ports=(8080,),
    )


def _cluster(canary_weight: int) -> MeshSnapshot:
    return MeshSnapshot(
        pods=(_pod("web-1", "web", **{"sim.canary.dev/error-rate": "many"}),
              _pod("web-canary-1", "web-canary")),
        services=(
            ServiceView("demo", "web", {"app": "web"}, (80,), {"sim.canary.dev/rps": "400"}),
            ServiceView("demo", "web-stable", {"app": "web"}, (80,), {}),
            ServiceView("demo", "web-canary", {"app": "web-canary"}, (80,), {}),
            ServiceView("elsewhere", "x", {"app": "x"}, (80,), {"sim.canary.dev/rps": "9"}),
        ),
        routes=(
            RouteView("HTTPRoute", "demo", "web", "web",
                      (("web-stable", 100 - canary_weight), ("web-canary", canary_weight))),
        ),
    )  # fmt: skip


class Seconds:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _opened(
    view: FakeView, tmp_path: Path, clock: Seconds, policies: "FakePolicies | None" = None
) -> Emulator:
    """An emulator of the demo namespace on the test's clock, started (``open``)."""
    emulator = Emulator(
        view, tmp_path, port=0, namespaces=["demo"], targets_file="t.json", clock=clock,
        policies=policies,
    )  # fmt: skip
    emulator.open()
    return emulator


def _requests(address: str, path: str) -> int:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as response:
        text = response.read().decode()
    return sum(
        int(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("request_total{")
    )


def test_loop_follows_the_cluster_and_cleans_up(tmp_path: Path) -> None:
    """Targets appear for the watched namespace only, weights follow the route, and closing
    removes the targets file."""
    view = FakeView(_cluster(0))
    clock = Seconds()
    emulator = _opened(view, tmp_path, clock)
    try:
        emulator.step()
        groups = json.loads((tmp_path / "t.json").read_text())
        assert {g["labels"]["namespace"] for g in groups} == {"demo"}
        address = emulator.server.address
        clock.now += 1.0
        emulator.step()
        assert _requests(address, "/pods/demo/web-1/metrics") > 100
        assert _requests(address, "/pods/demo/web-canary-1/metrics") == 0
        view.replace(_cluster(50))
        clock.now += 1.0
        emulator.step()
        assert _requests(address, "/pods/demo/web-canary-1/metrics") > 100
        assert view.running
    finally:
        emulator.close()
    assert not view.running
    assert list(tmp_path.iterdir()) == []


def test_run_returns_once_stopping_is_set(tmp_path: Path) -> None:
    """A stop asked for before the loop starts ends it at once, cleaned up."""
    view = FakeView(_cluster(0))
    emulator = Emulator(view, tmp_path, port=0, namespaces=["demo"], targets_file="t.json")
    emulator.stopping.set()
    assert emulator.run() == 0
    assert not view.running
    assert list(tmp_path.iterdir()) == []


def test_command_line_defaults_come_from_the_dev_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--kubeconfig and --targets-dir default to $KUBECONFIG and $PROMETHEUS_TARGETS_DIR."""
    monkeypatch.setenv("KUBECONFIG", "/k/config")
    monkeypatch.setenv("PROMETHEUS_TARGETS_DIR", "/p/targets")
    args = build_parser().parse_args(["--namespace", "a", "--namespace", "b", "--port", "0"])
    assert args.kubeconfig == "/k/config"
    assert str(args.targets_dir) == "/p/targets"
    assert args.namespace == ["a", "b"]
    assert args.port == 0


class FakePolicies:
    """The policy controller's answers, pushed when the test sets them."""

    def __init__(self, answer: tuple[tuple[str, float], ...]) -> None:
        self.changed = threading.Event()
        self.answer = answer
        self.followed: dict[tuple[str, str], tuple[int, str]] = {}
        self.follows = 0
        self.closed = False

    def push(self, answer: tuple[tuple[str, float], ...]) -> None:
        """A new answer for every followed Service, as a watch stream delivers it."""
        self.answer = answer
        self.changed.set()

    def follow(self, services: Mapping[tuple[str, str], tuple[int, str]]) -> None:
        """Record who is followed, with which port and source pod (once per full sync)."""
        self.followed = dict(services)
        self.follows += 1

    def answers(self) -> dict[tuple[str, str], tuple[tuple[str, float], ...]]:
        """The test's answer for every followed Service."""
        return dict.fromkeys(self.followed, self.answer)

    def close(self) -> None:
        """Record that the emulator stopped following."""
        self.closed = True


def test_with_a_policy_source_the_split_is_its_answer_not_the_route(tmp_path: Path) -> None:
    """The route object says 50/50, the policy controller says 100/0 and then pushes 0/100: the
    load follows the answers, the push alone (no watch event, no resync due) switches it, and
    the source is closed with the emulator."""
    view = FakeView(_cluster(50))
    policies = FakePolicies((("web-stable", 1.0), ("web-canary", 0.0)))
    clock = Seconds()
    emulator = _opened(view, tmp_path, clock, policies)
    try:
        emulator.step()
        assert policies.followed == {("demo", "web"): (80, "web-loadgen")}
        address = emulator.server.address
        clock.now += 1.0
        emulator.step()
        assert _requests(address, "/pods/demo/web-1/metrics") > 100
        assert _requests(address, "/pods/demo/web-canary-1/metrics") == 0
        clock.now += 1.0
        emulator.step()
        assert _requests(address, "/pods/demo/web-canary-1/metrics") == 0
        policies.push((("web-stable", 0.0), ("web-canary", 1.0)))
        clock.now += 1.0
        emulator.step()  # the push switches the split, with no watch event and no resync due
        assert not policies.changed.is_set()
        clock.now += 1.0
        emulator.step()
        assert _requests(address, "/pods/demo/web-canary-1/metrics") > 100
    finally:
        emulator.close()
    assert policies.closed


class CountingView(FakeView):
    """A cluster that counts how often the emulator looked at it (once per rebuild)."""

    def __init__(self, snapshot: MeshSnapshot) -> None:
        super().__init__(snapshot)
        self.looks = 0

    def snapshot(self) -> MeshSnapshot:
        """The current fake cluster, counted."""
        self.looks += 1
        return self.snapshot_value


def _with_pods(count: int) -> MeshSnapshot:
    """The demo cluster with ``count`` extra stable pods (each a scrape target of its own)."""
    base = _cluster(0)
    extra = tuple(_pod(f"web-extra-{i}", "web") for i in range(count))
    return MeshSnapshot(pods=base.pods + extra, services=base.services, routes=base.routes)


def _written(tmp_path: Path) -> set[str]:
    return {g["labels"]["pod"] for g in json.loads((tmp_path / "t.json").read_text())}


def test_a_cluster_changing_at_every_turn_is_rebuilt_once_a_second_and_written_every_5s(
    tmp_path: Path,
) -> None:
    """A new pod at every turn (0.5 s) for 20 s: 21 rebuilds, not 40; the targets file is
    written at once, then at most every 5 s, each time with the cluster of the last rebuild;
    and the last change reaches the file once it is due, with no further change."""
    view = CountingView(_with_pods(0))
    clock = Seconds()
    emulator = _opened(view, tmp_path, clock)
    versions: list[tuple[float, set[str]]] = []
    try:
        for turn in range(41):
            if turn:
                view.replace(_with_pods(turn))
            emulator.step()
            written = _written(tmp_path)
            if not versions or versions[-1][1] != written:
                versions.append((clock.now, written))
            clock.now += 0.5
        assert view.looks == 21  # at 100.0, 101.0, ..., 120.0
        assert [at for at, _ in versions] == [100.0, 105.0, 110.0, 115.0, 120.0]
        # Each write holds the cluster of its own turn (rebuilt at whole seconds, then
        # written): at 100 + t/2 s, the extra pods 0 … t - 1.
        for at, pods in versions:
            extra = {f"web-extra-{i}" for i in range(int(2 * (at - 100)))}
            assert pods == {"web-1", "web-canary-1", "web-loadgen"} | extra
        view.replace(_with_pods(42))  # adds web-extra-41
        clock.now += 1.0  # 121.5: rebuilt, not yet written (the last write was at 120)
        emulator.step()
        assert "web-extra-41" not in _written(tmp_path)
        clock.now += 3.5  # 125.0: due, with no change since
        emulator.step()
        assert "web-extra-41" in _written(tmp_path)
    finally:
        emulator.close()


def test_policy_answers_pushed_at_every_turn_rebuild_once_a_second(tmp_path: Path) -> None:
    """The policy controller pushing a new answer at every turn (0.5 s) for 10 s, with no
    cluster change: rebuilt 10 times (at the first turn, then once a second), of which the
    first and the resync 5 s later are full syncs (the pushes do not postpone the resync); the
    last answer is in force after the next rebuild, the only one until the cluster changes."""
    view = CountingView(_cluster(0))
    policies = FakePolicies((("web-stable", 1.0), ("web-canary", 0.0)))
    clock = Seconds()
    emulator = _opened(view, tmp_path, clock, policies)
    try:
        for turn in range(20):
            emulator.step()
            clock.now += 0.5
            policies.push((("web-stable", 1.0 - turn % 2), ("web-canary", float(turn % 2))))
        assert view.looks == 10  # 100.0 (a full sync), then 101.0, ..., 109.0
        assert policies.follows == 2  # 100.0 and 105.0
        policies.push((("web-stable", 0.0), ("web-canary", 1.0)))
        emulator.step()  # 110.0: rebuilt with the last answer
        clock.now += 1.0
        emulator.step()
        address = emulator.server.address
        before = _requests(address, "/pods/demo/web-canary-1/metrics")
        clock.now += 1.0
        emulator.step()
        assert _requests(address, "/pods/demo/web-canary-1/metrics") > before + 100
        assert view.looks == 11
    finally:
        emulator.close()
