"""Fuzzing the real server (the API and the dashboard) with hypothesis: whatever bytes arrive,
the answer is an HTTP response below 500, and every error is a JSON problem. A fixed, small
budget keeps it fast."""

from __future__ import annotations

import json
import socket
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canary.api import app
from tests.api.conftest import ADMIN, APPROVER, VIEWER, sample_store, serve

SEGMENT = st.one_of(
    st.sampled_from(["test", "other", "web-2", "web-1", "..", ".", "", "approve", "abort"]),
    st.text(max_size=12).map(lambda s: quote(s, safe="")),
    st.text(alphabet="abc-./%?#&=²", max_size=12),
)
PATH = st.one_of(
    st.builds(
        lambda ns, name, kind: (
            f"/api/v1/namespaces/{ns}/rollouts/{name}" + (f"/{kind}" if kind else "")
        ),
        SEGMENT,
        SEGMENT,
        st.one_of(st.none(), SEGMENT),
    ),
    st.builds(
        lambda prefix, q: prefix + q,
        st.sampled_from(["/api/v1/rollouts", "/ui/history"]),
        st.one_of(st.just(""), SEGMENT.map(lambda s: "?namespace=" + s)),
    ),
    st.builds(lambda ns, name: f"/ui/namespaces/{ns}/rollouts/{name}", SEGMENT, SEGMENT),
    st.sampled_from(["/healthz", "/readyz", "/metrics", "/", "/api/", "*"]),
    st.builds(lambda q: q, SEGMENT).map(lambda s: "/" + s),
)
QUERY = st.one_of(
    st.just(""),
    st.builds(
        lambda e, s: f"?expires={e}&sig={s}",
        st.one_of(st.integers(-10, 10**13).map(str), st.text(max_size=6).map(quote)),
        st.text(alphabet="0123456789abcdef", max_size=64),
    ),
)
HEADER_VALUE = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
AUTH = st.one_of(
    st.none(),
    st.sampled_from([ADMIN, VIEWER, APPROVER, "nope"]).map(lambda t: b"Bearer " + t.encode()),
    HEADER_VALUE,
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
BODY = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    JSONISH.map(lambda d: json.dumps(d).encode()),
    st.builds(lambda c: json.dumps({"comment": c}).encode(), st.text(max_size=30)),
    st.integers(1, 3000).map(lambda n: b"[" * n),
)
LENGTH = st.one_of(st.none(), st.sampled_from([b"-1", b"abc", b"0", b"999999999", b"3"]))


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_every_request_gets_a_response_below_500_and_errors_are_problems() -> None:
    """Random methods, paths, queries, headers and bodies: 0 uncaught errors."""
    _, running = serve(sample_store(), app.Limits(body_timeout=1))

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        derandomize=True,  # a fixed budget of the same examples on every run
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        method=st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"BREW"]),
        path=PATH,
        query=QUERY,
        auth=AUTH,
        content_type=st.one_of(st.none(), HEADER_VALUE, st.just(b"application/json")),
        length=LENGTH,
        body=BODY,
    )
    def exchange(
        *,
        method: bytes,
        path: str,
        query: str,
        auth: bytes | None,
        content_type: bytes | None,
        length: bytes | None,
        body: bytes,
    ) -> None:
        target = (path + query).encode("utf-8")
        lines = [method + b" " + target + b" HTTP/1.1", b"Host: x", b"Connection: close"]
        if auth is not None:
            lines.append(b"Authorization: " + auth)
        if content_type is not None:
            lines.append(b"Content-Type: " + content_type)
        lines.append(
            b"Content-Length: " + (length if length is not None else str(len(body)).encode())
        )
        raw = _exchange(running.port, b"\r\n".join(lines) + b"\r\n\r\n" + body)
        head, _, payload = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 "), raw[:200]
        status = int(head.split()[1])
        assert status < 500 or (status == 503 and path == "/readyz"), raw[:500]
        headers = head.decode("latin-1").lower()
        if status >= 400 and method != b"HEAD":
            assert "content-type: application/problem+json" in headers, raw[:500]
            assert json.loads(payload)["status"] == status

    try:
        exchange()
    finally:
        running.stop()
