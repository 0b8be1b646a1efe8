"""The Linkerd proxy's ``/metrics`` text, rendered from the traffic model's counters.

Who calls it: the mesh emulator, once per scrape of a pod's metrics URL (it may cache the text
until the counters move). It must stay pure: labels and counters in, text out.

The format follows LINKERD.md: the hand-written golden-signal families first (``request_total``,
``response_latency_ms``, ``response_total``), each with ``# HELP``/``# TYPE``; then the second
section's terminator ``# EOF``. Label order is the proxy's: the target labels, then
``status_code``, ``classification``, ``grpc_status``, ``error`` on ``response_total``, and
``status_code`` then ``le`` (last) on the latency histogram. Bucket bounds print as integers
(``le="1"``, ``le="1000"``, ``le="+Inf"``), every value is an integer, and each label set's
histogram prints all ``_bucket`` lines, then ``_count``, then ``_sum``. A label set that has seen
no request prints nothing, as a fresh proxy does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from canary.model.linkerd import LATENCY_BUCKETS_MS
from canary.sim.traffic import SUCCESS_STATUS, Counters, is_failure, is_grpc_failure

Labels = tuple[tuple[str, str], ...]
"""Ordered ``(name, value)`` pairs: order matters, it is part of the format."""

CONTENT_TYPE = "text/plain"
IDENTITY_DOMAIN = "cluster.local"

_LE = tuple("+Inf" if math.isinf(b) else str(int(b)) for b in LATENCY_BUCKETS_MS)


def identity(service_account: str, namespace: str) -> str:
    """The mTLS identity Linkerd gives a workload: its ServiceAccount in its namespace."""
    return f"{service_account}.{namespace}.serviceaccount.identity.linkerd.{IDENTITY_DOMAIN}"


def inbound_labels(*, pod_ip: str, port: int, client_id: str) -> Labels:
    """Target labels of the inbound series a serving pod's proxy records for its app port.

    The server and authorization are Linkerd's defaults (no Server resource: the
    ``all-unauthenticated`` default policy); the client is meshed, so ``tls="true"``.
    """
    return (
        ("direction", "inbound"),
        ("target_addr", f"{pod_ip}:{port}"),
        ("target_ip", pod_ip),
        ("target_port", str(port)),
        ("tls", "true"),
        ("client_id", client_id),
        ("srv_group", ""),
        ("srv_kind", "default"),
        ("srv_name", "all-unauthenticated"),
        ("srv_port", str(port)),
        ("route_group", ""),
        ("route_kind", "default"),
        ("route_name", "default"),
        ("authz_group", ""),
        ("authz_kind", "default"),
        ("authz_name", "all-unauthenticated"),
    )


@dataclass(frozen=True)
class Destination:
    """What the client's proxy learns about the endpoint it sends to (its ``dst_*`` labels)."""

    namespace: str
    service: str
    port: int
    pod: str = ""
    pod_ip: str = ""
    deployment: str = ""
    pod_template_hash: str = ""
    service_account: str = "default"
    control_plane_ns: str = "linkerd"


def outbound_labels(dst: Destination) -> Labels:
    """Target labels of the outbound series a client's proxy records per endpoint.

    A destination without a pod (the request failed before an endpoint was chosen) carries only
    the authority.
    """
    authority = ("authority", f"{dst.service}.{dst.namespace}.svc.{IDENTITY_DOMAIN}:{dst.port}")
    if not dst.pod:
        return (("direction", "outbound"), authority)
    dst_labels = [
        ("dst_control_plane_ns", dst.control_plane_ns),
        ("dst_deployment", dst.deployment),
        ("dst_namespace", dst.namespace),
        ("dst_pod", dst.pod),
        ("dst_pod_template_hash", dst.pod_template_hash),
        ("dst_service", dst.service),
        ("dst_serviceaccount", dst.service_account),
    ]
    return (
        ("direction", "outbound"),
        authority,
        ("target_addr", f"{dst.pod_ip}:{dst.port}"),
        ("target_ip", dst.pod_ip),
        ("target_port", str(dst.port)),
        ("tls", "true"),
        ("server_id", identity(dst.service_account, dst.namespace)),
        *((name, value) for name, value in dst_labels if value),
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_labels(labels: Labels) -> str:
    """``name="value",…`` in the given order, values escaped as the text format requires."""
    return ",".join(f'{name}="{_escape(value)}"' for name, value in labels)


def render(series: Iterable[tuple[Labels, Counters]]) -> str:
    """The proxy's metrics text for every label set that has seen a request."""
    active = [(format_labels(labels), counters) for labels, counters in series if counters.requests]
    out: list[str] = [
        "# HELP request_total Total count of HTTP requests.",
        "# TYPE request_total counter",
    ]
    out.extend(f"request_total{{{labels}}} {c.requests}" for labels, c in active)
    out.append(
        "# HELP response_latency_ms Elapsed times between a request's headers being received "
        "and its response stream completing"
    )
    out.append("# TYPE response_latency_ms histogram")
    for labels, counters in active:
        for status, histogram in sorted(counters.latency.items()):
            prefix = f'{labels},status_code="{status}"'
            out.extend(
                f'response_latency_ms_bucket{{{prefix},le="{le}"}} {n}'
                for le, n in zip(_LE, histogram.buckets, strict=True)
            )
            out.append(f"response_latency_ms_count{{{prefix}}} {histogram.count}")
            out.append(f"response_latency_ms_sum{{{prefix}}} {histogram.sum_ms}")
    out.append("# HELP response_total Total count of HTTP responses.")
    out.append("# TYPE response_total counter")
    for labels, counters in active:
        out.extend(_response_lines(labels, counters))
    out.append("# EOF")
    return "\n".join(out) + "\n"


def _response_lines(labels: str, counters: Counters) -> list[str]:
    """One line per HTTP status; HTTP 200 answers of gRPC pods split by ``grpc_status``."""
    lines: list[str] = []
    for status, n in sorted(counters.responses.items()):
        plain = n
        if status == SUCCESS_STATUS:
            for code, m in sorted(counters.grpc.items()):
                lines.append(_response_line(labels, status, str(code), is_grpc_failure(code), m))
                plain -= m
        if plain:
            lines.append(_response_line(labels, status, "", is_failure(status), plain))
    return lines


def _response_line(labels: str, status: int, grpc: str, failure: bool, n: int) -> str:
    classification = "failure" if failure else "success"
    return (
        f'response_total{{{labels},status_code="{status}",classification="{classification}",'
        f'grpc_status="{grpc}",error=""}} {n}'
    )
