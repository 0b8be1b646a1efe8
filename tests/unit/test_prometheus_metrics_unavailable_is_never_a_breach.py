"""PrometheusMetrics turns every way of not getting an answer into MetricsUnavailable.

Real HTTP on the loopback: a closed port, a server that is not Prometheus, one that fails.
(A real Prometheus, stopped and started, is in tests/integration.)
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from canary.adapters.metrics.prometheus import PrometheusMetrics
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
