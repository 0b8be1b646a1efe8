"""Prometheus, read the way the Linkerd proxies report (``ports.MetricProvider``).

Called by the runtime once per tick: ``snapshot`` runs ONE instant query for the inbound
counters of every active rollout (built by ``canary.core.promql``) and hands the samples to
``canary.core.evidence.parse``; ``value`` runs a user's custom PromQL check. The only module
that imports ``prometheus_api_client``, and the one place its exceptions (and those of the HTTP
stack under it) become ``MetricsUnavailable``: an unreachable Prometheus, an HTTP error or a
query error is never an SLO breach. It judges nothing and keeps no state between ticks.

The snapshot's answer is read as a stream (``ijson``) and folded into the per-pod counters one
sample at a time, on the client's own HTTP session. At 1000 rollouts it held 56,000 samples (28
per pod: two classifications and 26 latency buckets), 7.7 MB of JSON, before the query left out
the buckets equal to ``+Inf`` (about half of that now); read whole, as ``custom_query`` reads, a
read peaked at 68 MB of RSS, streamed at 8 MB, for 1.4 times the CPU (``make
bench-snapshot-memory``, docs/benchmarks.md).
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any, Self

import ijson
import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from canary.core import evidence, promql
from canary.errors import MetricsUnavailable
from canary.ports import Arms

TIMEOUT_SECONDS = 30.0
"""How long one query may take by default (``canary run --prometheus-timeout``). The measuring
tick is coalesced, so a slow answer only delays the next tick, while one that times out is lost
and the next tick asks Prometheus for the same work again. At 1000 Rollouts on a saturated
2-core machine 12 of 122 counters queries took Prometheus 10-26 s by its own clock (run N3 in
docs/benchmarks.md): each would have been a lost tick at 10 s. For the counters query it bounds
the whole answer (``_Watchdog``), not only each read of it; a custom query's (``value``, read
by prometheus-api-client) is bounded read by read."""

CONNECTIONS = 32
"""How many connections to Prometheus are kept open for reuse, at least. ``canary run`` asks
from the tick and its custom-query askers (``--custom-query-workers``, 2 by default) and sizes
the pool for all of them (``connections``). Past the pool's size (urllib3's default is 10),
each extra connection would be closed after its answer, with a "Connection pool is full"
warning."""

EVALUATION_SHARE = 0.9
"""Prometheus is asked to give up evaluating a query (its ``timeout`` parameter) at this share
of the client's timeout. It checks the deadline between parts of an evaluation, so it may stop
seconds after it (a subquery told 0.5 s stopped after 1.7 s alone, up to 6.0 s beside
another), and the client's timeout may still come first. Prometheus also stops a query whose
client hung up, at the same checkpoints (2.6 to 7.0 s into that subquery after a client gave
up at 0.5 s), but a proxy between them may keep its connection open: the deadline holds
whatever is in between, and when Prometheus answers first the error carries its reason
("query timed out in expression evaluation")."""

CHUNK_BYTES = 64 * 1024
"""How much of a streamed answer is read and parsed at once."""

MAX_DEPTH = 32
"""How deeply a streamed answer may nest (an instant vector nests 5 deep). The streaming
parser keeps the path to every open level, so its memory grows with the square of the depth:
a 200 KB answer of nested brackets would take tens of GB; checked before it sees a chunk."""

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = bytes(range(256)).translate(None, b"[]{}")
_LEVEL = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}

_HTTP_ERROR = re.compile(r"(HTTP Status Code \d+) \((b'.*'|b\".*\")\)", re.DOTALL)


class _Retry(Retry):
    """urllib3's ``Retry``, except that a query whose answer did not come in time is not sent
    again. Prometheus is still working on it: a second copy doubles its load and the wait (run
    M at N = 1000 sent each of its 62 timed-out counters queries twice). A connection that
    closes without an answer is still tried once more."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if isinstance(error, ReadTimeoutError):
            raise error.with_traceback(_stacktrace)
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _reason(error: PrometheusApiClientException) -> str:
    """Prometheus' own error message when the answer carries one ("parse error at ...").
    The client reports ``HTTP Status Code <n> (<repr of the body>)``."""
    text = str(error)
    found = _HTTP_ERROR.fullmatch(text)
    if found is None:
        return text
    try:
        return _status_reason(found[1], ast.literal_eval(found[2]))
    except (ValueError, SyntaxError):
        return text


def _status_reason(status: str, body: bytes) -> str:
    """``status`` with Prometheus' error message when ``body`` is its JSON error answer."""
    try:
        return f"{status}: {json.loads(body)['error']}"
    except (ValueError, TypeError, KeyError):
        return status


def _pairs(targets: Iterable[Arms]) -> list[tuple[str, str]]:
    """Every ``(namespace, Deployment)`` of both arms of ``targets``, sorted."""
    return sorted({(a.namespace, name) for a in targets for name in (a.stable, a.canary)})


class PrometheusMetrics:
    """Queries one Prometheus server over its HTTP API."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        disable_ssl: bool = False,
        headers: Mapping[str, str] | None = None,
        connections: int = CONNECTIONS,
    ) -> None:
        self.url = url.rstrip("/")
        # One quick retry for a dropped connection or a proxy in front that lost Prometheus
        # (never for a query that timed out: not a read timeout, nor Prometheus' own 503 for a
        # query past its evaluation timeout); the tick after this one is the real retry. POST
        # because a batched selector can be long.
        retry = _Retry(
            total=1,
            backoff_factor=0.2,
            status_forcelist=(502, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
        )
        self._headers = dict(headers or {})
        self._timeout = timeout
        # Prometheus' duration parser reads a plain number as seconds.
        self._evaluation = {"timeout": f"{timeout * EVALUATION_SHARE:.3f}"}
        # The client's session, shared with the streamed snapshot (the client mounts ``retry``).
        self._session = requests.Session()
        self._session.verify = not disable_ssl
        self._prometheus = PrometheusConnect(
            url=self.url,
            headers=self._headers,
            retry=retry,
            # Annotated int, handed to requests, which takes seconds as a float.
            timeout=timeout,  # type: ignore[arg-type]
            method="POST",
            session=self._session,
        )
        # Over the client's adapter (the same retry), with a larger pool.
        pool = max(CONNECTIONS, connections)
        self._session.mount(self.url, HTTPAdapter(max_retries=retry, pool_maxsize=pool))

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except PrometheusApiClientException as error:
            raise MetricsUnavailable(
                f"{what}: Prometheus at {self.url} answered {_reason(error)}"
            ) from error
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            RecursionError,
            ijson.JSONError,
        ) as error:
            # Before OSError: requests' JSONDecodeError is both. RecursionError: JSON nested
            # deeper than the decoder can follow.
            raise MetricsUnavailable(
                f"{what}: {self.url} did not answer like Prometheus: {error!r:.200}"
            ) from error
        except OSError as error:  # requests' exceptions are OSErrors
            raise MetricsUnavailable(
                f"{what}: cannot reach Prometheus at {self.url}: {error}"
            ) from error

    def _query(self, what: str, query: str) -> Any:
        with self._translated(what):
            return self._prometheus.custom_query(query, params=self._evaluation)

    def snapshot(
        self, targets: Sequence[Arms], buckets: Collection[Arms] | None = None
    ) -> evidence.Snapshot:
        """The cumulative inbound counters of every pod of both arms of every rollout in
        ``targets``, from one query, with latency buckets for those in ``buckets`` (None: all).
        Raises MetricsUnavailable when Prometheus cannot answer and InvalidSpec for a name that
        is not a Kubernetes name."""
        pairs = _pairs(targets)
        if not pairs:
            return {}
        query = promql.counters_query(pairs, None if buckets is None else _pairs(buckets))
        with self._translated("counters query"):
            found = evidence.parse(self._samples("counters query", query))
        # The selector is a product of namespaces and names; keep only the pairs asked for.
        wanted = set(pairs)
        return {key: counters for key, counters in found.items() if key.target in wanted}

    def _samples(self, what: str, query: str) -> Iterator[dict[str, Any]]:
        """The samples of an instant ``query``, one at a time as its answer streams in (never
        the whole answer parsed at once). Raises MetricsUnavailable for an HTTP error or an
        answer that is not an instant vector, once it is known; ``_translated`` the rest."""
        sent = time.monotonic()
        with self._session.post(
            f"{self.url}/api/v1/query",
            data={"query": query, **self._evaluation},
            headers=self._headers,
            timeout=self._timeout,
            stream=True,
        ) as response:
            if response.status_code != 200:
                reason = _status_reason(
                    f"HTTP Status Code {response.status_code}", response.content
                )
                raise MetricsUnavailable(f"{what}: Prometheus at {self.url} answered {reason}")
            watchdog = _Watchdog(response, self._timeout - (time.monotonic() - sent))
            try:
                yield from self._parsed(what, response)
            except (OSError, ijson.JSONError, MetricsUnavailable) as error:
                if watchdog.fired.is_set():
                    raise MetricsUnavailable(
                        f"{what}: Prometheus at {self.url} did not finish its answer within "
                        f"{self._timeout:g} s"
                    ) from error
                raise
            finally:
                watchdog.cancel()

    def _parsed(self, what: str, response: requests.Response) -> Iterator[dict[str, Any]]:
        samples, depth, shape = ijson.sendable_list(), _Depth(what, self.url), _Shape()
        parser = ijson.items_coro(samples, "data.result.item", use_float=True)
        for chunk in response.iter_content(CHUNK_BYTES):
            depth.send(chunk)
            shape.send(chunk)
            parser.send(chunk)
            yield from _checked(what, samples)
            del samples[:]
        parser.close()
        yield from _checked(what, samples)
        shape.check(what, self.url)

    def value(self, query: str) -> float | None:
        """The single number ``query`` returns; None for an empty result or NaN. Raises
        MetricsUnavailable when Prometheus cannot answer or the answer is not one number."""
        return promql.single_value(self._query("metric query", query))

    def close(self) -> None:
        """Release the HTTP connections."""
        self._prometheus.close()


class _Watchdog:
    """Ends a streamed answer at its deadline: requests' timeout bounds each read of the
    socket, not the whole answer, so an answer that keeps coming slowly (a proxy trickling it, a
    congested link) would hold the tick for as long as it lasts. At ``seconds`` (from now) the
    socket is shut down, which wakes a read blocked on it; the read then fails, and ``fired``
    says why. Cancelled when the answer ends first."""

    def __init__(self, response: requests.Response, seconds: float) -> None:
        self.fired = threading.Event()
        self._response = response
        self._timer = threading.Timer(max(seconds, 0.0), self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        self.fired.set()
        sock = _socket(self._response)
        if sock is not None:  # already closed if the answer ended as the deadline came
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _socket(response: requests.Response) -> socket.socket | None:
    """The socket an answer is read from: urllib3's connection's while it keeps it (HTTP/1.1
    keep-alive), else the one http.client's response reads from (a connection that closes after
    the answer hands it over). Private attributes of both, so a test pins them
    (``test_an_answer_that_keeps_trickling_ends_at_the_deadline``)."""
    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is None:  # http.client's response: a BufferedReader over a SocketIO
        sock = getattr(
            getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None), "_sock", None
        )
    return sock if isinstance(sock, socket.socket) else None


class _Depth:
    """Raises MetricsUnavailable once a stream nests deeper than ``MAX_DEPTH``. Reads the bytes
    as JSON's lexer does (strings and their escapes hold no structure), with C-speed byte
    operations: a tenth of what the parser itself takes (``make bench-snapshot-memory``)."""

    def __init__(self, what: str, url: str, limit: int = MAX_DEPTH) -> None:
        self._what, self._url, self._limit = what, url, limit
        self._depth = 0
        self._in_string = False  # the last chunk ended inside a string
        self._escaping = False  # ... on the backslash of an escape

    def send(self, chunk: bytes) -> None:
        if self._escaping:
            chunk = chunk[1:]  # the character the last chunk's backslash escapes
        if self._in_string:
            chunk = b'"' + chunk
        self._escaping = False
        if b"\\" in chunk:
            chunk = _ESCAPE.sub(b"", chunk)
            self._escaping = chunk.endswith(b"\\")
            if self._escaping:
                chunk = chunk[:-1]
        chunk = _STRING.sub(b"", chunk)
        quote = chunk.find(b'"')
        self._in_string = quote >= 0
        if self._in_string:
            chunk = chunk[:quote]
        brackets = chunk.translate(None, _NOT_BRACKET)
        if not brackets:
            return
        levels = list(itertools.accumulate(map(_LEVEL.__getitem__, brackets), initial=self._depth))
        if max(levels) > self._limit:
            raise MetricsUnavailable(
                f"{self._what}: {self._url} did not answer like Prometheus: "
                f"JSON nested over {self._limit} deep"
            )
        self._depth = levels[-1]


class _Shape:
    """What kind of answer a stream is, from its parse events up to ``data.result``'s start
    (the first chunk of a Prometheus answer, which writes ``resultType`` first): the rest of
    the stream is not looked at again."""

    def __init__(self) -> None:
        self._events = ijson.sendable_list()
        self._parser = ijson.parse_coro(self._events)
        self.result_type: object = None
        self.result_start: str | None = None

    def send(self, chunk: bytes) -> None:
        if self.result_start is not None and self.result_type is not None:
            return
        self._parser.send(chunk)
        for prefix, event, value in self._events:
            if prefix == "data.resultType" and self.result_type is None:
                self.result_type = value
            elif prefix == "data.result" and self.result_start is None:
                self.result_start = event
        del self._events[:]

    def check(self, what: str, url: str) -> None:
        """Raise MetricsUnavailable unless the answer was an instant vector."""
        if self.result_start is None:
            raise MetricsUnavailable(
                f"{what}: {url} did not answer like Prometheus: no data.result"
            )
        if self.result_start != "start_array" or self.result_type != "vector":
            raise MetricsUnavailable(
                f"{what}: not an instant vector: result type {self.result_type!r}, "
                f"result {self.result_start.removeprefix('start_')}"
            )


def _checked(what: str, samples: list[Any]) -> Iterator[dict[str, Any]]:
    for sample in samples:
        if not isinstance(sample, dict):
            raise MetricsUnavailable(f"{what}: not an instant vector: a sample {sample!r:.100}")
        yield sample
