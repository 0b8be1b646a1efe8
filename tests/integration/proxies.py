"""Pretend Linkerd proxies for tests against the real Prometheus.

A loopback HTTP server serves one ``/metrics`` page per pod, in the proxies' text format, and a
file in the dev Prometheus' file-discovery directory lists each pod with the ``namespace``,
``deployment`` and ``pod`` target labels that linkerd-viz's relabelling gives real proxies.
Import ``proxies`` (a fixture) into a test module to use it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from canary.core.evidence import PodCounters, PodKey
from canary.model.linkerd import LATENCY_BUCKETS_MS
from tests.integration.conftest import Cluster

_TARGET = 'direction="inbound",target_addr="10.0.0.1:9898",target_ip="10.0.0.1",target_port="9898",tls="true",client_id="web.shop.serviceaccount.identity.linkerd.cluster.local"'  # noqa: E501


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else f"{bound:g}"


@dataclass
class Pod:
    """What one pod's proxy has counted: successes answered in 10 ms, failures in 50 ms."""

    successes: int
    failures: int

    def exposition(self) -> str:
        """The proxy's /metrics text for these counts."""
        lines = [
            "# HELP response_total Total count of HTTP responses.",
            "# TYPE response_total counter",
            f'response_total{{{_TARGET},status_code="200",classification="success",'
            f'grpc_status="",error=""}} {self.successes}',
            f'response_total{{{_TARGET},status_code="500",classification="failure",'
            f'grpc_status="",error=""}} {self.failures}',
            "# HELP response_latency_ms Elapsed times between a request's headers being "
            "received and its response stream completing",
            "# TYPE response_latency_ms histogram",
        ]
        for code, count, at in (("200", self.successes, 10), ("500", self.failures, 50)):
            for bound in LATENCY_BUCKETS_MS:
                value = count if bound >= at else 0
                lines.append(
                    f'response_latency_ms_bucket{{{_TARGET},status_code="{code}",'
                    f'le="{_le(bound)}"}} {value}'
                )
            lines.append(f'response_latency_ms_count{{{_TARGET},status_code="{code}"}} {count}')
            lines.append(f'response_latency_ms_sum{{{_TARGET},status_code="{code}"}} {count * at}')
        return "\n".join(lines) + "\n# EOF\n"

    def expected(self) -> PodCounters:
        """The counters canary should read back."""
        buckets = tuple(
            (self.successes if b >= 10 else 0) + (self.failures if b >= 50 else 0)
            for b in LATENCY_BUCKETS_MS
        )
        return PodCounters(
            requests=self.successes + self.failures, failures=self.failures, buckets=buckets
        )


@pytest.fixture
def proxies(cluster: Cluster) -> Iterator[Callable[[dict[PodKey, Pod]], None]]:
    """Serves pods' /metrics and lists them as linkerd-proxy targets until the test ends."""
    served: dict[str, Pod] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            pod = served.get(self.path)
            body = (pod.exposition() if pod else "").encode()
            self.send_response(200 if pod else 404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    address = f"127.0.0.1:{httpd.server_address[1]}"
    target_file = cluster.targets_dir / f"routers-test-{uuid.uuid4().hex[:8]}.json"

    def serve(pods: dict[PodKey, Pod]) -> None:
        groups: list[dict[str, Any]] = []
        for key, pod in pods.items():
            path = f"/{key.namespace}/{key.pod}/metrics"
            served[path] = pod
            labels = {"namespace": key.namespace, "deployment": key.deployment, "pod": key.pod}
            groups.append({"targets": [address], "labels": {**labels, "__metrics_path__": path}})
        target_file.write_text(json.dumps(groups))

    try:
        yield serve
    finally:
        target_file.unlink(missing_ok=True)
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def eventually(check: Callable[[], bool], seconds: float = 60) -> None:
    """Wait until ``check()`` holds (Prometheus discovers targets in 5 s, scrapes every 10 s)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "Prometheus did not scrape the proxies in time"
        time.sleep(1)
