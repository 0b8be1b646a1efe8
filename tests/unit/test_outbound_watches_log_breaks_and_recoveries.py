"""``OutboundWatches`` logs a broken stream each time it breaks and the first answer after it,
so that a reader of the emulator's log sees when its split follows the policy controller again
(stop 51 misread a chaos failure for want of that line)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from structlog.testing import capture_logs

from canary.adapters.outbound._generated import outbound_pb2
from canary.adapters.outbound.client import OutboundWatches

pb: Any = outbound_pb2


def _unavailable() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "restarting"
    )


def test_a_broken_watch_is_logged_and_so_is_its_recovery() -> None:
    """A stream answers, breaks, fails to reopen once, then answers again: two breaks logged,
    then one recovery after two attempts; the Service's answer is there after it."""
    opened: list[object] = []

    def watch(spec: object) -> AsyncIterator[Any]:
        opened.append(spec)

        async def stream() -> AsyncIterator[Any]:
            if len(opened) == 2:
                raise _unavailable()
            yield pb.OutboundPolicy()
            if len(opened) == 1:
                raise _unavailable()
            await asyncio.Event().wait()  # the third stream stays open

        return stream()

    watches = OutboundWatches("127.0.0.1:1", retry=0.05, max_retry=0.05)
    watches._watch = watch  # the stream the policy controller would serve
    try:
        with capture_logs() as logs:
            watches.follow({("shop", "web"): (80, "web-loadgen")})
            deadline = time.monotonic() + 10
            while not any(e["event"] == "outbound_policy_watch_recovered" for e in logs):
                assert time.monotonic() < deadline, logs
                time.sleep(0.01)
        assert watches.answers() == {("shop", "web"): (("web", 1.0),)}
    finally:
        watches.close()
    events = [e for e in logs if e["event"].startswith("outbound_policy_watch")]
    assert [e["event"] for e in events] == [
        "outbound_policy_watch_broken",
        "outbound_policy_watch_broken",
        "outbound_policy_watch_recovered",
    ]
    assert events[0]["error"] == "UNAVAILABLE: restarting"
    assert events[2]["service"] == "shop/web"
    assert events[2]["attempts"] == 2
    assert 0.1 <= events[2]["broken_seconds"] < 5
    assert len(opened) == 3
