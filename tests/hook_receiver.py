"""A real HTTP hook receiver for tests: on this machine's non-loopback address, it records each
POST (path and JSON body) and answers per path from a script — a status code, or ``"hang"``
(hold the request until the test releases it or the server stops)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.local_http import LocalServer, QuietHandler, local_address

Script = list[int | str]
"""Answers for one path, in order; the last one repeats."""


class HookReceiver:
    """Answers POSTs to ``/<path>`` by ``scripts[path]`` (200 when unscripted)."""

    def __init__(self, scripts: dict[str, Script] | None = None) -> None:
        self.scripts: dict[str, Script] = dict(scripts or {})
        self.received: list[tuple[str, Any]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                path = self.path.strip("/")
                with receiver._lock:
                    seen = sum(1 for p, _ in receiver.received if p == path)
                    receiver.received.append((path, body))
                    script = receiver.scripts.get(path, [200])
                answer = script[min(seen, len(script) - 1)]
                if answer == "hang":
                    receiver.release.wait(60)
                    answer = 200
                try:
                    self.send_response(int(answer))
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(f"answer {answer} to call {seen + 1}".encode())
                except OSError:
                    pass  # the caller gave up (its timeout): nothing to answer

        self.server = LocalServer(Handler, local_address())

    @property
    def address(self) -> str:
        """The receiver's IP address."""
        return self.server.host

    def url(self, path: str) -> str:
        """The URL of one scripted path."""
        return f"{self.server.url}/{path}"

    def calls(self, path: str) -> list[Any]:
        """The JSON bodies POSTed to ``path``."""
        with self._lock:
            return [body for p, body in self.received if p == path]


@contextmanager
def serving(scripts: dict[str, Script] | None = None) -> Iterator[HookReceiver]:
    """A running receiver; stopped (hanging requests released) on exit."""
    receiver = HookReceiver(scripts)
    try:
        yield receiver
    finally:
        receiver.release.set()
        receiver.server.stop()
