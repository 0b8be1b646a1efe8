"""Real HTTP servers on this machine for the tests that play the other side of a call canary
makes (a webhook receiver, Slack, a gating hook): one place picks the address, serves a handler
in a thread and stops it, so each test writes only how its receiver answers."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def local_address() -> str:
    """This machine's address on its default route (a UDP connect sends nothing): the
    non-loopback address canary's outbound policy must be told to allow."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.123", 9))
        address: str = sock.getsockname()[0]
    assert not address.startswith("127."), "the tests need a non-loopback address"
    return address


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler without the access log: the tests read what their receiver records."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LocalServer:
    """``handler`` served on ``host`` at a port the kernel picks, in a daemon thread, one
    thread per request (a hanging request holds only its own)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str) -> None:
        self.httpd = ThreadingHTTPServer((host, 0), handler)
        self.httpd.daemon_threads = True
        self.host = host
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; requests still held are left to their threads."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()
