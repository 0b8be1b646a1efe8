"""A query whose answer did not come in time is not sent again; a dropped connection is.

A Prometheus too busy to answer in time is still working on the query, so a second copy only
doubles its load and the tick's wait (run M at N = 1000 sent every one of its 62 timed-out
counters queries twice). A connection that closes without an answer (a restarting server, a
stale keep-alive connection) costs nothing to try once more. Workers asking custom queries at
once keep their connections open for the next. Real HTTP on the loopback; the server counts
the queries it is sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from canary.adapters.metrics.prometheus import PrometheusMetrics
from canary.cli import main
from canary.errors import MetricsUnavailable
from canary.ports import Arms
from tests.local_http import LocalServer, QuietHandler

ARMS = [Arms("shop", "web", "web-canary")]
ANSWER = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
TIMEOUT = 0.5


class _Queries(QuietHandler):
    """Counts the queries; answers after ``delay`` seconds, or drops the first ``drop``
    connections without a word."""

    delay = 0.0
    drop = 0
    received: list[float]
    lock: threading.Lock

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.received.append(time.monotonic())
            dropped = len(self.received) <= self.drop
        if dropped:
            self.close_connection = True
            return
        time.sleep(self.delay)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            self.wfile.write(ANSWER)
        except OSError:  # the client gave up waiting
            pass


@pytest.fixture
def prometheus(request: pytest.FixtureRequest) -> Iterator[type[_Queries]]:
    """A loopback server with the handler's ``delay`` and ``drop`` (``request.param``)."""
    delay, drop = request.param
    handler = type(
        "Handler",
        (_Queries,),
        {"delay": delay, "drop": drop, "received": [], "lock": threading.Lock()},
    )
    server = LocalServer(handler, "127.0.0.1")
    handler.url = server.url  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.stop()


@pytest.mark.parametrize("prometheus", [(TIMEOUT * 4, 0)], indirect=True)
def test_a_query_that_timed_out_is_sent_once(prometheus: type[_Queries]) -> None:
    """The counters query and a custom query each reach the server once, and each fails after
    one timeout, not two."""
    metrics = PrometheusMetrics(prometheus.url, timeout=TIMEOUT)  # type: ignore[attr-defined]
    for ask in (lambda: metrics.value("sum(up)"), lambda: metrics.snapshot(ARMS)):
        before, started = len(prometheus.received), time.monotonic()
        with pytest.raises(MetricsUnavailable, match="timed out"):
            ask()
        waited = time.monotonic() - started
        assert len(prometheus.received) - before == 1
        assert TIMEOUT <= waited < 2 * TIMEOUT
    metrics.close()


@pytest.mark.parametrize("prometheus", [(0.0, 1)], indirect=True)
def test_a_dropped_connection_is_tried_once_more(prometheus: type[_Queries]) -> None:
    """A connection closed without an answer is tried again, and the answer is read."""
    metrics = PrometheusMetrics(prometheus.url, timeout=TIMEOUT)  # type: ignore[attr-defined]
    assert metrics.snapshot(ARMS) == {}
    assert len(prometheus.received) == 2
    metrics.close()


def test_the_timeout_is_a_flag_and_nonsense_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """`canary run --prometheus-timeout` takes a duration; 0s exits 2 naming the flag, and a
    value that is not a duration is refused by the parser, before anything is contacted."""
    run = ["run", "--prometheus-url", "http://127.0.0.1:1"]
    assert main([*run, "--prometheus-timeout", "0s"]) == 2
    assert "--prometheus-timeout must be above 0 (got 0s)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main([*run, "--prometheus-timeout", "soon"])
    assert refused.value.code == 2
    assert "--prometheus-timeout: 'soon' is not a duration" in capsys.readouterr().err


VALUE = (
    b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"3"]}]}}'
)


class _Slow(QuietHandler):
    """Answers every query with the number 3 after 0.2 s, so queries sent at once overlap."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(0.2)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(VALUE)))
        self.end_headers()
        self.wfile.write(VALUE)


def test_sixteen_workers_asking_at_once_keep_their_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Workers ask their Rollouts' custom queries at once (16 in the scale benchmark): each
    gets its answer, and every connection goes back to the pool for the next query (urllib3's
    default pool of 10 closed six and warned "Connection pool is full" for each)."""
    server = LocalServer(_Slow, "127.0.0.1")
    metrics = PrometheusMetrics(server.url)
    answers: list[float | None] = []
    asking = [
        threading.Thread(target=lambda: answers.append(metrics.value("sum(up)"))) for _ in range(16)
    ]
    try:
        with caplog.at_level("WARNING", logger="urllib3"):
            for thread in asking:
                thread.start()
            for thread in asking:
                thread.join(10)
    finally:
        metrics.close()
        server.stop()
    assert answers == [3.0] * 16
    assert [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()] == []
