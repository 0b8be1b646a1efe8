"""Facts about Linkerd's proxy metrics that both the controller and the emulator rely on."""

from __future__ import annotations

LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
    1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000, float("inf"),
)  # fmt: skip
"""Upper bounds (ms) of ``response_latency_ms`` buckets, ``+Inf`` last: 26 buckets."""
