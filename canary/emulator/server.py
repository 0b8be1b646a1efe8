"""The emulator's one HTTP server: every emulated proxy's ``/metrics`` under its own path.

Who calls it: ``canary.emulator.command``. Paths are ``/pods/<namespace>/<pod>/metrics`` for
serving pods and ``/loadgen/<namespace>/<service>/metrics`` for load generators; ``/healthz``
answers ``ok``. It binds 127.0.0.1 only: Prometheus on the same machine is its one client.
"""

from __future__ import annotations

from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from canary.emulator.engine import Engine
from canary.sim.exposition import CONTENT_TYPE


class MetricsServer(ThreadingHTTPServer):
    """A threading HTTP server bound to an :class:`Engine`."""

    daemon_threads = True

    def __init__(self, engine: Engine, host: str = "127.0.0.1", port: int = 0) -> None:
        self.engine = engine
        super().__init__((host, port), _Handler)

    @property
    def address(self) -> str:
        """``host:port`` the server listens on (the port is real even when 0 was asked for)."""
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._reply(HTTPStatus.OK, "ok\n")
            return
        text = self.server.engine.metrics(path)
        if text is None:
            self._reply(HTTPStatus.NOT_FOUND, f"no emulated proxy at {path}\n")
        else:
            self._reply(HTTPStatus.OK, text, CONTENT_TYPE)

    def _reply(self, status: HTTPStatus, text: str, content_type: str = "text/plain") -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are too frequent to log."""
