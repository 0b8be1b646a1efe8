"""gRPC pods answer HTTP 200 with a grpc_status that Linkerd classifies; paths a client asks
for fail at their own rates (emojivoto's doughnut vote)."""

import math

import pytest

from canary.emulator.annotations import (
    GRPC_ERROR_STATUS,
    PATH_ERROR_RATES,
    PATHS,
    PROTOCOL,
    pod_behaviour,
    service_paths,
)
from canary.sim.exposition import render
from canary.sim.traffic import GRPC_FAILURE_CODES, Backend, Behaviour, Counters, Mesh

VOTES = (("/VoteDoughnut", 16.0), ("/VoteJoy", 42.0), ("/VoteStar", 42.0))


def _serve(
    behaviour: Behaviour, requests: int, paths: tuple[tuple[str, float], ...] = ()
) -> Counters:
    mesh = Mesh(seed=3)
    mesh.set_pod("p0", behaviour)
    mesh.advance(1.0, requests, {"svc": Backend(1, ("p0",))}, paths=paths)
    return mesh.inbound("p0")


@pytest.mark.parametrize("code", range(1, 17))
def test_grpc_failures_are_http_200_classified_by_their_status(code: int) -> None:
    """Every response is HTTP 200; failures carry the code, which counts as a failure only for
    2, 4, 7, 13, 14 and 15."""
    counters = _serve(Behaviour(error_rate=0.3, grpc=True, grpc_error_status=code), 10_000)
    assert set(counters.responses) == {200}
    assert set(counters.grpc) == {0, code}
    assert sum(counters.grpc.values()) == counters.requests
    expected = counters.grpc[code] if code in GRPC_FAILURE_CODES else 0
    assert counters.failures == expected
    assert counters.successes == counters.requests - expected


def test_grpc_series_render_one_line_per_grpc_status() -> None:
    """response_total of a gRPC pod has status_code="200" with grpc_status "0" (success) and
    "2" (failure); an HTTP pod's grpc_status stays empty."""
    grpc = _serve(Behaviour(error_rate=0.2, grpc=True), 1_000)
    text = render([((("direction", "inbound"),), grpc)])
    lines = [line for line in text.splitlines() if line.startswith("response_total")]
    assert lines == [
        'response_total{direction="inbound",status_code="200",classification="success",'
        f'grpc_status="0",error=""}} {grpc.grpc[0]}',
        'response_total{direction="inbound",status_code="200",classification="failure",'
        f'grpc_status="2",error=""}} {grpc.grpc[2]}',
    ]
    http = render([((("direction", "inbound"),), _serve(Behaviour(error_rate=0.2), 1_000))])
    assert 'status_code="500",classification="failure",grpc_status="",' in http


@pytest.mark.parametrize(("doughnut_rate", "expected"), [(1.0, 0.16), (0.5, 0.08), (0.0, 0.0)])
def test_a_failing_path_fails_its_share_of_requests(doughnut_rate: float, expected: float) -> None:
    """Votes for the doughnut fail at their own rate: over 200k requests the failure share is
    the doughnut's share times that rate, within four standard errors."""
    behaviour = Behaviour(grpc=True, path_error_rates=(("/VoteDoughnut", doughnut_rate),))
    counters = _serve(behaviour, 200_000, VOTES)
    sd = math.sqrt(max(expected * (1 - expected), 1e-12) / counters.requests)
    assert counters.failures / counters.requests == pytest.approx(expected, abs=4 * sd)


def test_without_paths_every_request_fails_at_the_error_rate() -> None:
    """A caller that names no paths sees the pod's own error rate, whatever its path rates."""
    behaviour = Behaviour(error_rate=0.0, path_error_rates=(("/VoteDoughnut", 1.0),))
    assert behaviour.failure_rate(()) == 0.0
    assert behaviour.failure_rate(VOTES) == pytest.approx(0.16)
    assert behaviour.failure_rate((("/other", 1.0),)) == 0.0


def test_grpc_and_path_annotations_become_the_behaviour() -> None:
    """protocol, grpc-error-status and path-error-rates map onto the Behaviour."""
    behaviour, problems = pod_behaviour(
        "pod emojivoto/voting-0",
        {PROTOCOL: "grpc", GRPC_ERROR_STATUS: "14", PATH_ERROR_RATES: '{"/VoteDoughnut": 1}'},
    )
    assert problems == []
    assert behaviour == Behaviour(
        grpc=True, grpc_error_status=14, path_error_rates=(("/VoteDoughnut", 1.0),)
    )
    paths, problems = service_paths("service emojivoto/voting-svc", {PATHS: '{"/a": 1, "/b": 3}'})
    assert (paths, problems) == ((("/a", 1.0), ("/b", 3.0)), [])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (PROTOCOL, "http2"),
        (GRPC_ERROR_STATUS, "0"),
        (GRPC_ERROR_STATUS, "17"),
        (PATH_ERROR_RATES, '{"/VoteDoughnut": 2}'),
        (PATH_ERROR_RATES, "/VoteDoughnut=1"),
        (PATH_ERROR_RATES, "{}"),
    ],
)
def test_bad_grpc_and_path_annotations_are_reported_and_ignored(key: str, value: str) -> None:
    """A bad value leaves the field at its default and names the annotation and the value."""
    behaviour, problems = pod_behaviour("pod emojivoto/voting-0", {key: value})
    assert behaviour.grpc_error_status == 2
    assert behaviour.path_error_rates == ()
    assert behaviour.grpc is False
    assert [(p.key, p.value) for p in problems] == [(key, value)]
    assert "pod emojivoto/voting-0" in str(problems[0])


@pytest.mark.parametrize("value", ['{"/a": -1}', '{"/a": 0}', '["/a"]', '{"/a": true}', "x"])
def test_bad_paths_are_reported_and_ignored(value: str) -> None:
    """Paths must be a JSON object of non-negative shares, one of them positive."""
    paths, problems = service_paths("service emojivoto/web-svc", {PATHS: value})
    assert paths == ()
    assert [(p.key, p.value) for p in problems] == [(PATHS, value)]
