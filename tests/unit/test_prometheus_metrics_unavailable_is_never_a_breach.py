"""PrometheusMetrics turns every way of not getting an answer into MetricsUnavailable.

Real HTTP on the loopback: a closed port, a server that is not Prometheus, one that fails.
(A real Prometheus, stopped and started, is in tests/integration.)
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from canary.adapters.metrics.prometheus import CONNECTIONS, PrometheusMetrics
from canary.errors import InvalidSpec, MetricsUnavailable
from canary.ports import Arms

ARMS = [Arms("shop", "web", "web-canary")]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class _Answer(BaseHTTPRequestHandler):
    status = 200
    body = b"<html>not prometheus</html>"

    def do_GET(self) -> None:
        self._reply()

    def do_POST(self) -> None:
        self._reply()

    def _reply(self) -> None:
        # Read the request's body first, as a server does: closing with it unread resets the
        # connection under a client still reading a long answer.
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A loopback HTTP server answering every request with the status and body asked for."""
    status, body = request.param
    handler = type("Handler", (_Answer,), {"status": status, "body": body})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_nothing_listening_is_unavailable() -> None:
    """A refused connection is MetricsUnavailable naming the URL, for both methods."""
    metrics = PrometheusMetrics(f"http://127.0.0.1:{_closed_port()}", timeout=2)
    with pytest.raises(MetricsUnavailable, match=r"cannot reach Prometheus at http://127\.0\.0\.1"):
        metrics.snapshot(ARMS)
    with pytest.raises(MetricsUnavailable, match="cannot reach Prometheus"):
        metrics.value("vector(1)")
    metrics.close()


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ((200, b"<html>not prometheus</html>"), "did not answer like Prometheus"),
        ((200, b'{"status": "success", "data": {}}'), "did not answer like Prometheus"),
        ((200, b'{"status": "success", "data": {"result": {"a": 1}}}'), "not an instant vector"),
        (
            (400, b'{"status":"error","errorType":"bad_data","error":"parse error"}'),
            r"answered HTTP Status Code 400: parse error$",
        ),
        ((500, b"boom"), "answered HTTP Status Code 500"),
        ((503, b"overloaded"), "answered HTTP Status Code 503"),
    ],
    indirect=["server"],
)
def test_answers_that_are_not_results_are_unavailable(server: str, message: str) -> None:
    """HTML, missing data, query errors and server errors are MetricsUnavailable, not data."""
    metrics = PrometheusMetrics(server, timeout=2)
    with pytest.raises(MetricsUnavailable, match=message):
        metrics.snapshot(ARMS)
    metrics.close()


def test_names_are_checked_before_any_query() -> None:
    """An injected name is InvalidSpec, and nothing is sent anywhere."""
    metrics = PrometheusMetrics(f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(InvalidSpec):
        metrics.snapshot([Arms("shop", 'web"}) or vector(1) #', "web-canary")])


def test_no_targets_means_no_query() -> None:
    """With no active rollout the snapshot is empty without asking Prometheus."""
    assert PrometheusMetrics(f"http://127.0.0.1:{_closed_port()}").snapshot([]) == {}


def _vector(result: str) -> bytes:
    return b'{"status":"success","data":{"resultType":"vector","result":' + result.encode() + b"}}"


_POD = '"metric":{"namespace":"shop","deployment":"web","pod":"web-1","classification":"success"}'


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ((200, _vector("[1, 2]")), "not an instant vector"),
        ((200, _vector('[{"metric": {}, "value": [0, "1"]}, "x"]')), "not an instant vector"),
        ((200, _vector("[" * 100_000 + "]" * 100_000)), "did not answer like Prometheus"),
    ],
    indirect=["server"],
)
def test_malformed_vectors_are_unavailable(server: str, message: str) -> None:
    """Samples that are not objects and JSON nested past the decoder's depth are
    MetricsUnavailable, for the counters query and for a custom query alike."""
    metrics = PrometheusMetrics(server, timeout=2)
    with pytest.raises(MetricsUnavailable, match=message):
        metrics.snapshot(ARMS)
    with pytest.raises(MetricsUnavailable):
        metrics.value("sum(up)")
    metrics.close()


@pytest.mark.parametrize(
    "server",
    [(200, _vector(f'[{{{_POD},"value":[0,"1e308"]}},{{{_POD},"value":[0,"1e308"]}}]'))],
    indirect=True,
)
def test_counters_too_large_to_sum_are_ignored(server: str) -> None:
    """Finite values whose sum is infinite are not counters: the pod is left out, no crash."""
    metrics = PrometheusMetrics(server, timeout=2)
    assert metrics.snapshot(ARMS) == {}
    metrics.close()


class _Recorded(_Answer):
    """Answers an empty vector (or ``status``), noting each request's path and form, and
    first waits for ``together`` requests to be in at once (a barrier)."""

    requests: list[tuple[str, dict[str, list[str]]]]
    together: threading.Barrier | None = None

    def _reply(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        path, _, query = self.path.partition("?")
        self.requests.append((path, parse_qs(query) | parse_qs(body)))
        if self.together is not None:
            self.together.wait(timeout=10)
        self.body = _vector("[]") if self.status == 200 else b'{"status":"error"}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


class _Listening(ThreadingHTTPServer):
    request_queue_size = 64  # 40 connections at once (the default backlog is 5)


@contextmanager
def _recorded(status: int = 200, together: int = 0) -> Iterator[tuple[str, list[Any]]]:
    """A loopback server of ``_Recorded``; yields its URL and the requests it got."""
    seen: list[Any] = []
    barrier = threading.Barrier(together) if together else None
    handler = type(
        "Handler", (_Recorded,), {"status": status, "requests": seen, "together": barrier}
    )
    httpd = _Listening(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_prometheus_is_told_to_stop_evaluating_before_the_client_gives_up() -> None:
    """Both queries carry Prometheus' ``timeout`` parameter, at 90% of the client's."""
    with _recorded() as (url, seen):
        metrics = PrometheusMetrics(url, timeout=2)
        assert metrics.snapshot(ARMS) == {}
        assert metrics.value("vector(1)") is None
        metrics.close()
    assert [(path, form["timeout"]) for path, form in seen] == [
        ("/api/v1/query", ["1.800"]),
        ("/api/v1/query", ["1.800"]),
    ]
    assert "deployment" in seen[0][1]["query"][0]
    assert seen[1][1]["query"] == ["vector(1)"]


@pytest.mark.parametrize(("status", "asked"), [(503, 1), (502, 2), (504, 2)])
def test_prometheus_timing_out_is_not_asked_again(status: int, asked: int) -> None:
    """Prometheus answers 503 for a query past its evaluation timeout: asking again would
    double its work and the wait, so it is asked once. A proxy's 502 or 504 (Prometheus
    unreachable behind it) is asked once more."""
    with _recorded(status) as (url, seen):
        metrics = PrometheusMetrics(url, timeout=2)
        with pytest.raises(MetricsUnavailable, match=f"HTTP Status Code {status}"):
            metrics.snapshot(ARMS)
        metrics.close()
    assert len(seen) == asked


@pytest.mark.parametrize(("connections", "discarded"), [(40, False), (CONNECTIONS, True)])
def test_the_pool_keeps_a_connection_for_every_asker(
    connections: int, discarded: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """40 queries at once (``--custom-query-workers 39`` and the tick): with a pool of 40 every
    connection is kept for reuse; with the least pool (32) urllib3 discards the extra ones."""
    with _recorded(together=40) as (url, seen):
        metrics = PrometheusMetrics(url, timeout=15, connections=connections)
        with (
            caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"),
            ThreadPoolExecutor(40) as pool,
        ):
            assert list(pool.map(metrics.value, ["vector(1)"] * 40)) == [None] * 40
        metrics.close()
    assert len(seen) == 40
    assert ("Connection pool is full" in caplog.text) is discarded
