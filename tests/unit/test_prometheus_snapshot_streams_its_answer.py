"""The tick's counters query is read as its answer streams in, and reads what a whole parse reads.

Real HTTP on the loopback (a real Prometheus answers the same query in tests/integration).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from canary.adapters.metrics.prometheus import CHUNK_BYTES, PrometheusMetrics, _Depth
from canary.core import evidence, promql
from canary.errors import MetricsUnavailable
from canary.model.linkerd import LATENCY_BUCKETS_MS
from canary.ports import Arms
from tests.local_http import LocalServer, QuietHandler

BOUNDS = ["+Inf" if b == float("inf") else f"{b:g}" for b in LATENCY_BUCKETS_MS]


def _arms(n: int) -> list[Arms]:
    return [Arms("shop", f"web-{i}", f"web-{i}-canary") for i in range(n)]


def _samples(n: int) -> list[dict[str, object]]:
    """Prometheus' samples for ``_arms(n)``: one pod an arm, two classifications, 26 buckets."""
    out: list[dict[str, object]] = []
    for i, arm in enumerate(_arms(n)):
        for deployment in (arm.stable, arm.canary):
            labels = {"deployment": deployment, "namespace": "shop", "pod": f"{deployment}-0"}
            for classification, value in (("failure", i % 5), ("success", 100 + i)):
                metric = {**labels, "classification": classification}
                out.append({"metric": metric, "value": [1.7e9, str(value)]})
            for k, le in enumerate(BOUNDS):
                out.append({"metric": {**labels, "le": le}, "value": [1.7e9, str(k * (i + 1))]})
    return out


def _answer(samples: list[dict[str, object]], result_type: str = "vector") -> bytes:
    body = {"status": "success", "data": {"resultType": result_type, "result": samples}}
    return json.dumps(body, separators=(",", ":")).encode()


class _Server:
    """A loopback server that sends ``head``, then waits (at most 10 s) for ``release`` before
    sending ``tail``, and marks ``sent_all``."""

    def __init__(self, head: bytes, tail: bytes) -> None:
        self.release, self.sent_all = threading.Event(), threading.Event()
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(head) + len(tail)))
                self.end_headers()
                self.wfile.write(head)
                self.wfile.flush()
                server.release.wait(10)
                self.wfile.write(tail)
                server.sent_all.set()

        self._local = LocalServer(Handler, "127.0.0.1")
        self.url = self._local.url

    def close(self) -> None:
        self.release.set()
        self._local.stop()


@pytest.fixture
def split_answer() -> Iterator[tuple[_Server, list[dict[str, object]]]]:
    """An answer of 100 rollouts whose second half waits for the test's go-ahead."""
    samples = _samples(100)
    body = _answer(samples)
    half = len(body) // 2
    assert half > 2 * CHUNK_BYTES  # the first half holds whole chunks with whole samples
    server = _Server(body[:half], body[half:])
    try:
        yield server, samples
    finally:
        server.close()


def test_samples_arrive_before_the_answer_ends(
    split_answer: tuple[_Server, list[dict[str, object]]],
) -> None:
    """The first sample is in hand while the server still holds back half its answer: the
    answer is never held (nor parsed) whole."""
    server, samples = split_answer
    metrics = PrometheusMetrics(server.url, timeout=20)
    stream = metrics._samples("counters query", "up")
    first = next(stream)
    assert not server.sent_all.is_set()
    assert first == samples[0]
    server.release.set()
    assert [first, *stream] == samples
    metrics.close()


def test_a_streamed_snapshot_reads_what_a_whole_parse_reads() -> None:
    """Over many chunks, the snapshot is the one ``evidence.parse`` makes of the whole answer."""
    samples = _samples(300)
    body = _answer(samples)
    assert len(body) > 20 * CHUNK_BYTES
    server = _Server(body, b"")
    try:
        metrics = PrometheusMetrics(server.url, timeout=20)
        found = metrics.snapshot(_arms(300))
        metrics.close()
    finally:
        server.close()
    assert found == evidence.parse(json.loads(body)["data"]["result"])
    assert len(found) == 600
    assert all(len(counters.buckets) == len(BOUNDS) for counters in found.values())


@pytest.mark.parametrize("result_type", ["matrix", "scalar"])
def test_a_vector_is_read_only_when_it_is_one(result_type: str) -> None:
    """An answer of another result type is MetricsUnavailable naming it, even when its
    samples look like a vector's."""
    server = _Server(_answer(_samples(2), result_type), b"")
    try:
        metrics = PrometheusMetrics(server.url, timeout=20)
        with pytest.raises(MetricsUnavailable, match=f"not an instant vector: .*'{result_type}'"):
            metrics.snapshot(_arms(2))
        metrics.close()
    finally:
        server.close()


def test_the_counters_query_is_posted_as_a_form() -> None:
    """The server receives the query ``promql`` built, POSTed (it can be long) to the instant
    query endpoint, with Prometheus' evaluation timeout (90% of the client's)."""
    received: list[str] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            form = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            received.append(f"{self.path} {form}")
            body = _answer([])
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = LocalServer(Handler, "127.0.0.1")
    try:
        metrics = PrometheusMetrics(server.url, timeout=20)
        assert metrics.snapshot(_arms(1)) == {}
        metrics.close()
    finally:
        server.stop()
    pairs = [("shop", "web-0"), ("shop", "web-0-canary")]
    path, form = received[0].split(" ", 1)
    assert path == "/api/v1/query"
    assert parse_qs(form) == {"query": [promql.counters_query(pairs)], "timeout": ["18.000"]}


def _deepest(text: bytes) -> tuple[int, bool]:
    """How deep ``text`` nests, read one byte at a time as JSON's lexer reads it, up to a
    backslash outside a string (a lexical error: a parser stops there); and whether it met one."""
    depth = deepest = 0
    in_string = escaping = False
    for byte in text:
        char = chr(byte)
        if escaping:
            escaping = False
        elif in_string:
            in_string, escaping = char != '"', char == "\\"
        elif char == "\\":
            return deepest, True
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest, False


@settings(max_examples=2000, deadline=None)
@example(text=b'["a\\"[[[[', cuts=[4])  # a chunk ends on the backslash of an escaped quote
@example(text=b'["a]]]"[[', cuts=[3])  # ... inside a string holding closing brackets
@given(
    text=st.binary(min_size=0, max_size=120).map(
        lambda raw: bytes(b'[]{}"\\a:,'[b % 9] for b in raw)
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=119), max_size=6),
)
def test_the_depth_guard_reads_nesting_as_the_lexer_does(text: bytes, cuts: list[int]) -> None:
    """However the stream is cut into chunks, the guard refuses exactly the streams that nest
    deeper than the limit: brackets in strings and escaped quotes do not fool it. Past a
    lexical error (where the parser stops) it may refuse, never miss."""
    limit = 3
    bounds = [0, *sorted({c for c in cuts if c < len(text)}), len(text)]
    guard = _Depth("counters query", "http://prometheus", limit=limit)
    refused = False
    try:
        for start, end in itertools.pairwise(bounds):
            guard.send(text[start:end])
    except MetricsUnavailable:
        refused = True
    deepest, error = _deepest(text)
    if error:
        assert refused or deepest <= limit
    else:
        assert refused == (deepest > limit)


class _Trickling:
    """A loopback server whose answer (a valid, empty vector) comes one byte every 0.1 s:
    HTTP/1.0 with a length and a close (http.client's response holds the socket), or HTTP/1.1
    chunked and kept alive (urllib3's connection holds it, as with Prometheus)."""

    BODY = _answer([])

    def __init__(self, protocol: str) -> None:
        self.ended = threading.Event()
        server = self

        class Handler(QuietHandler):
            protocol_version = protocol

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                chunked = protocol == "HTTP/1.1"
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(_Trickling.BODY)))
                self.end_headers()
                try:
                    for byte in _Trickling.BODY:
                        data = bytes([byte])
                        self.wfile.write(b"1\r\n" + data + b"\r\n" if chunked else data)
                        self.wfile.flush()
                        time.sleep(0.1)
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except OSError:  # the client cut it
                    pass
                server.ended.set()

        self._local = LocalServer(Handler, "127.0.0.1")
        self.url = self._local.url

    def close(self) -> None:
        self._local.stop()


@pytest.mark.parametrize("protocol", ["HTTP/1.0", "HTTP/1.1"])
def test_an_answer_that_keeps_trickling_ends_at_the_deadline(protocol: str) -> None:
    """requests' timeout bounds each read, not the answer: an answer whose every byte comes
    within it (6.8 s for this one, at 0.1 s a byte) would hold the tick for as long as it lasts.
    The snapshot's own deadline (its timeout, 1 s here) ends it: MetricsUnavailable, saying so,
    at the deadline, and the server's writes fail soon after (its socket was shut down)."""
    assert len(_Trickling.BODY) * 0.1 > 5
    server = _Trickling(protocol)
    metrics = PrometheusMetrics(server.url, timeout=1)
    try:
        started = time.monotonic()
        with pytest.raises(MetricsUnavailable, match="did not finish its answer within 1 s"):
            metrics.snapshot(_arms(1))
        assert 0.9 < time.monotonic() - started < 4.0  # the whole answer would take 6.8 s
        assert server.ended.wait(5), "the server kept sending after the deadline"
    finally:
        metrics.close()
        server.close()


def test_an_answer_within_the_deadline_is_read_whole(
    split_answer: tuple[_Server, list[dict[str, object]]],
) -> None:
    """The deadline cuts only an answer still coming at its end: one whose second half comes
    after 1.5 s, within a 3 s deadline, is read whole."""
    server, samples = split_answer
    metrics = PrometheusMetrics(server.url, timeout=3)
    threading.Timer(1.5, server.release.set).start()
    try:
        assert metrics.snapshot(_arms(100)) == evidence.parse(samples)
    finally:
        metrics.close()
