"""Malformed and slow requests, sent byte for byte to the real server: each is answered with a
JSON problem (or the connection is closed), never a traceback, and never holds the server."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from canary.api import app, server
from canary.core import links
from canary.ports import Ref
from tests.api.conftest import ADMIN, Served, sample_store, serve


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/problem+json"
        document: dict[str, Any] = json.loads(self.body)
        assert document["status"] == self.status
        return document


def _parse(data: bytes) -> Raw:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return Raw(int(status_line.split()[1]), headers, body)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def send(port: int, request: bytes, timeout: float = 5.0) -> Raw:
    """Send ``request`` as it is, read until the server closes, parse the response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return _parse(_read_all(sock))


def post(path: str, body: bytes, *headers: bytes) -> bytes:
    lines = [
        b"POST " + path.encode() + b" HTTP/1.1",
        b"Host: x",
        b"Connection: close",
        b"Content-Type: application/json",
        b"Authorization: Bearer " + ADMIN.encode(),
        *headers,
    ]
    if not any(h.lower().startswith(b"content-length") for h in headers):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def get(path: str, *headers: bytes) -> bytes:
    lines = [b"GET " + path.encode() + b" HTTP/1.1", b"Host: x", b"Connection: close", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


APPROVE = links.path("test", "web-2", "approve")


def _untouched(served: Served) -> bool:
    rollout = served.store.get(Ref("test", "web-2"))
    return rollout is not None and rollout.metadata.annotations == {}


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3", b" 5 5"])
def test_a_bad_content_length_is_a_400_problem(served: Served, length: bytes) -> None:
    """Content-Length -1 or abc is refused at once, without reading the body."""
    reply = send(served.port, post(APPROVE, b"{}", b"Content-Length: " + length))
    assert reply.status == 400
    assert "not valid HTTP" in reply.problem()["detail"]
    assert _untouched(served)


def test_a_non_ascii_authorization_header_is_a_401_problem(served: Served) -> None:
    """A token with bytes outside ASCII is refused as malformed, never decoded into a crash."""
    reply = send(
        served.port, get("/api/v1/rollouts", "Authorization: Bearer jöhn".encode("latin-1"))
    )
    assert reply.status == 401
    assert "malformed" in reply.problem()["detail"]
    utf8 = send(served.port, get("/api/v1/rollouts", "Authorization: Bearer ☃".encode()))
    assert utf8.status == 401


def test_a_link_with_a_non_ascii_ticket_is_a_403_problem(served: Served) -> None:
    """t=² (and a ticket whose signature part is non-ASCII) is refused, not an error."""
    for ticket in ("%C2%B2", "abc.%C2%B2" + "0" * 62):
        reply = send(served.port, get(f"{APPROVE}?t={ticket}"))
        assert reply.status == 403
        reply.problem()


def test_deeply_nested_json_is_a_400_problem(served: Served) -> None:
    """40,000 nested [ in a body are refused as invalid JSON, not a recursion error."""
    reply = send(served.port, post(APPROVE, b"[" * 40_000))
    assert reply.status == 400
    reply.problem()
    assert _untouched(served)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/namespaces/../rollouts/web-2",
        "/api/v1/namespaces/%2E%2E/rollouts/web-2",
        "/api/v1/namespaces/test/rollouts/..",
        "/api/v1/namespaces/Test/rollouts/web-2",
        "/api/v1/rollouts?namespace=..",
        "/api/v1/rollouts?namespace=" + "a" * 64,
    ],
)
def test_names_that_are_not_kubernetes_names_are_400_problems(served: Served, path: str) -> None:
    """A namespace or name that Kubernetes would refuse never reaches the store."""
    reply = send(served.port, get(path, b"Authorization: Bearer " + ADMIN.encode()))
    assert reply.status == 400
    assert "not a valid" in reply.problem()["detail"]


def test_a_client_that_never_finishes_its_headers_is_disconnected(served: Served) -> None:
    """Half a request head is dropped after the header timeout; others are served meanwhile."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert send(served.port, get("/healthz")).status == 200
        assert _read_all(slow) == b""  # closed by the server, not by our 5 s timeout
        assert time.monotonic() - started < 3


def test_a_client_that_never_finishes_its_body_gets_a_408_problem(served: Served) -> None:
    """A body that stops arriving is answered 408 after the body timeout."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as slow:
        slow.sendall(post(APPROVE, b"{", b"Content-Length: 100"))
        started = time.monotonic()
        reply = _parse(_read_all(slow))
    assert reply.status == 408
    reply.problem()
    assert time.monotonic() - started < 3
    assert _untouched(served)


def test_a_body_over_the_limit_is_a_413_problem(served: Served) -> None:
    """A declared or chunked body beyond the limit is refused."""
    big = app.Limits().max_body + 1
    declared = send(served.port, post(APPROVE, b"", f"Content-Length: {big}".encode()))
    assert declared.status == 413
    declared.problem()
    chunk = b"%x\r\n" % big + b"x" * big + b"\r\n0\r\n\r\n"
    chunked = send(served.port, post(APPROVE, chunk, b"Transfer-Encoding: chunked"))
    assert chunked.status == 413
    chunked.problem()


@pytest.fixture
def one_at_a_time() -> Iterator[int]:
    """A server that lets one request in at a time."""
    _, running = serve(
        sample_store(),
        app.Limits(body_timeout=2),
        server.ServerLimits(max_requests=1),
    )
    try:
        yield running.port
    finally:
        running.stop()


def test_requests_beyond_the_limit_are_503_problems(one_at_a_time: int) -> None:
    """While one request is in the app, another is refused with 503 and Retry-After."""
    with socket.create_connection(("127.0.0.1", one_at_a_time), timeout=5) as slow:
        slow.sendall(post(APPROVE, b"{", b"Content-Length: 100"))
        deadline = time.monotonic() + 2
        while True:  # until the slow request holds the only slot
            reply = send(one_at_a_time, get("/healthz"))
            if reply.status == 503 or time.monotonic() > deadline:
                break
        assert reply.status == 503
        assert reply.headers["retry-after"] == "1"
        reply.problem()


def test_a_kept_alive_connection_is_closed_when_the_next_head_dawdles(served: Served) -> None:
    """After a response, the next request head must also arrive within the header timeout;
    a pipelined request arriving with the first is served in full."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        two = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2
        sock.sendall(two + b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        data = _read_all(sock)
        assert data.count(b"HTTP/1.1 200 OK") == 2
        assert time.monotonic() - started < 3
