"""Clients of the policy controller's ``OutboundPolicies`` API: which backends, at which weights,
Linkerd hands a proxy for an apex Service.

Who calls it: ``canary.emulator`` (to split its simulated load exactly as real proxies would) keeps
one ``Watch`` stream per loaded Service open through :class:`OutboundWatches`, as every client
proxy does, so a route change costs one pushed message and an idle Service nothing (asking
``Get`` for 1,000 Services every second took most of the emulator's CPU at N = 1000);
:class:`OutboundPolicies` asks ``Get`` once (tests use it to see what the controller serves).
What it must not do: interpret HTTPRoute objects itself (the answer is the policy controller's),
or let ``grpc`` errors escape: ``Get`` raises :class:`~canary.errors.ApiUnavailable`, a broken
stream is logged and opened again while the last answer stays in force (a proxy keeps its last
policy too).

The question is the one a client proxy asks (``TrafficSpec``: ``source_workload`` =
``<namespace>:<pod>``, ``authority`` = ``<service>.<namespace>.svc.cluster.local:<port>``). The
answer's HTTP routes are searched for the catch-all rule (a match on path prefix ``/`` and
nothing else, which is what a rule without matches becomes), and its distribution is read:
``random_available`` gives weighted backends, ``first_available`` the first one, ``empty`` none.
Without any route the proxy sends to the Service itself, and so does the answer for a Service
with no accepted HTTPRoute (the controller's default route has the Service as backend).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import grpc
import structlog

from canary.errors import ApiUnavailable

try:
    from canary.adapters.outbound._generated import outbound_pb2
except ImportError as _missing:  # pragma: no cover - an install that skipped the generation
    raise ImportError(
        "canary.adapters.outbound needs the messages generated from Linkerd's protobufs: run "
        "`python -m canary.adapters.outbound.generate PROTO_DIR` (make venv does)"
    ) from _missing

log = structlog.get_logger("canary.outbound")

GET = "/io.linkerd.proxy.outbound.OutboundPolicies/Get"
WATCH = "/io.linkerd.proxy.outbound.OutboundPolicies/Watch"
CLUSTER_DOMAIN = "cluster.local"

Backends = tuple[tuple[str, float], ...]
"""``(Service name, weight)`` pairs, in the order the policy lists them."""
Service = tuple[str, str]
"""``(namespace, name)`` of an apex Service."""
Asker = tuple[int, str]
"""``(port, source pod)``: the port asked for and the pod whose proxy asks."""

_pb: Any = outbound_pb2


def _catch_all(match: Any) -> bool:
    """A match every request satisfies: no headers, query or method; path prefix ``/``."""
    if match.headers or match.query_params or match.HasField("method"):
        return False
    if not match.HasField("path"):
        return True
    return match.path.WhichOneof("kind") == "prefix" and match.path.prefix in ("", "/")


def _service(route_backend: Any) -> str:
    metadata = route_backend.backend.metadata
    return str(metadata.resource.name) if metadata.WhichOneof("kind") == "resource" else ""


def _distribution(distribution: Any) -> Backends:
    kind = distribution.WhichOneof("kind")
    if kind == "random_available":
        return tuple(
            (_service(b.backend), float(b.weight)) for b in distribution.random_available.backends
        )
    if kind == "first_available" and distribution.first_available.backends:
        return ((_service(distribution.first_available.backends[0]), 1.0),)
    return ()


def _http_routes(policy: Any) -> list[Any]:
    protocol = policy.protocol
    kind = protocol.WhichOneof("kind")
    if kind == "detect":
        return list(protocol.detect.http1.routes)
    if kind in ("http1", "http2"):
        return list(getattr(protocol, kind).routes)
    return []


def backends_of(policy: Any) -> Backends | None:
    """The weighted backends of the catch-all rule of an ``OutboundPolicy``; None when the
    policy has no HTTP route with such a rule."""
    for route in _http_routes(policy):
        for rule in route.rules:
            if not rule.matches or any(_catch_all(m) for m in rule.matches):
                return _distribution(rule.backends)
    return None


def _spec(namespace: str, service: str, port: int, source_pod: str) -> Any:
    return _pb.TrafficSpec(
        source_workload=f"{namespace}:{source_pod}",
        authority=f"{service}.{namespace}.svc.{CLUSTER_DOMAIN}:{port}",
    )


def _answer(service: str, policy: Any) -> Backends:
    found = backends_of(policy)
    return ((service, 1.0),) if found is None else found


class OutboundPolicies:
    """``OutboundPolicies/Get`` on one policy controller (``host:port``, plaintext as the
    controller serves it to its own proxies' sidecar)."""

    def __init__(self, address: str, timeout: float = 2.0) -> None:
        self.address = address
        self._timeout = timeout
        self._channel = grpc.insecure_channel(address)
        self._get = self._channel.unary_unary(
            GET,
            request_serializer=_pb.TrafficSpec.SerializeToString,
            response_deserializer=_pb.OutboundPolicy.FromString,
        )

    def backends(self, namespace: str, service: str, port: int, source_pod: str) -> Backends:
        """What a proxy in pod ``namespace/source_pod`` is told for ``service:port``: its
        weighted backend Services (the Service itself when no route applies).

        Raises :class:`~canary.errors.ApiUnavailable` when the controller does not answer."""
        try:
            policy = self._get(_spec(namespace, service, port, source_pod), timeout=self._timeout)
        except grpc.RpcError as error:
            raise ApiUnavailable(
                f"OutboundPolicies/Get on {self.address} for {service}.{namespace}:{port} "
                f"failed: {error}"
            ) from error
        return _answer(service, policy)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


class OutboundWatches:
    """One ``OutboundPolicies/Watch`` stream per followed Service on one policy controller
    (``host:port``, plaintext), the way each client proxy keeps one: the controller pushes a new
    policy whenever its answer changes.

    The streams run on an asyncio loop in a thread of their own (``grpc.aio``); :meth:`follow`
    says which Services to watch, :meth:`answers` reads the latest answer of each, and
    ``changed`` is set whenever an answer changes. A stream that breaks is opened again after
    ``retry`` seconds, doubling up to ``max_retry``; its last answer stays in force meanwhile.
    A break is logged (``outbound_policy_watch_broken``, each time), and so is the first answer
    after it (``outbound_policy_watch_recovered``: how long it was broken, after how many
    attempts)."""

    def __init__(
        self,
        address: str,
        *,
        first_answer_timeout: float = 2.0,
        retry: float = 1.0,
        max_retry: float = 10.0,
    ) -> None:
        self.address = address
        self.changed = threading.Event()
        self._first_answer_timeout = first_answer_timeout
        self._retry = retry
        self._max_retry = max_retry
        self._lock = threading.Lock()
        self._answers: dict[Service, Backends] = {}
        self._streams: dict[Service, tuple[Asker, asyncio.Task[None]]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="outbound-watches", daemon=True
        )
        self._thread.start()
        self._channel, self._watch = self._run(self._open(), timeout=10.0)

    def follow(self, services: Mapping[Service, Asker]) -> None:
        """Watch exactly these Services (each asked for its port, from its source pod): open
        streams for new ones, close those no longer wanted and forget their answers. Waits up
        to ``first_answer_timeout`` for the new streams' first answers; a Service still without
        one is left unanswered until its stream delivers (``changed`` is set then)."""
        self._run(self._follow(dict(services)), timeout=self._first_answer_timeout + 5.0)

    def answers(self) -> dict[Service, Backends]:
        """The latest answer of every followed Service that has had one."""
        with self._lock:
            return dict(self._answers)

    def close(self) -> None:
        """Close every stream and the channel, and stop the loop's thread."""
        if not self._thread.is_alive():
            return
        try:
            self._run(self._close(), timeout=10.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10.0)
            self._loop.close()

    def _run(self, coroutine: Any, timeout: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise ApiUnavailable(f"the OutboundPolicies watches on {self.address} hung") from None

    async def _open(self) -> tuple[Any, Any]:
        channel = grpc.aio.insecure_channel(self.address)
        watch = channel.unary_stream(
            WATCH,
            request_serializer=_pb.TrafficSpec.SerializeToString,
            response_deserializer=_pb.OutboundPolicy.FromString,
        )
        return channel, watch

    async def _follow(self, wanted: dict[Service, Asker]) -> None:
        for key, (asker, task) in list(self._streams.items()):
            if wanted.get(key) != asker:
                task.cancel()
                del self._streams[key]
                with self._lock:
                    self._answers.pop(key, None)
        started = []
        for key, asker in wanted.items():
            if key not in self._streams:
                answered = asyncio.Event()
                task = asyncio.create_task(self._stream(key, asker, answered))
                self._streams[key] = (asker, task)
                started.append(answered.wait())
        if started:
            try:
                await asyncio.wait_for(asyncio.gather(*started), self._first_answer_timeout)
            except TimeoutError:
                log.warning(
                    "outbound_policy_slow",
                    address=self.address,
                    waiting=sum(1 for k in wanted if k not in self._answers),
                )

    async def _stream(self, key: Service, asker: Asker, answered: asyncio.Event) -> None:
        namespace, service = key
        port, source_pod = asker
        delay = self._retry
        broken: tuple[float, int] | None = None  # since when (loop time), attempts since
        while True:
            try:
                async for policy in self._watch(_spec(namespace, service, port, source_pod)):
                    self._set(key, _answer(service, policy))
                    answered.set()
                    delay = self._retry
                    if broken is not None:
                        log.info(
                            "outbound_policy_watch_recovered",
                            service=f"{namespace}/{service}",
                            broken_seconds=round(self._loop.time() - broken[0], 1),
                            attempts=broken[1],
                        )
                        broken = None
                reason = "the controller ended the stream"
            except grpc.aio.AioRpcError as error:
                reason = f"{error.code().name}: {error.details()}"
            log.warning(
                "outbound_policy_watch_broken",
                service=f"{namespace}/{service}",
                error=reason,
                retry_seconds=delay,
            )
            broken = (self._loop.time(), 0) if broken is None else broken
            await asyncio.sleep(delay)
            broken = (broken[0], broken[1] + 1)
            delay = min(2 * delay, self._max_retry)

    def _set(self, key: Service, backends: Backends) -> None:
        with self._lock:
            if self._answers.get(key) == backends:
                return
            self._answers[key] = backends
        self.changed.set()

    async def _close(self) -> None:
        tasks = [task for _, task in self._streams.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._streams.clear()
        await self._channel.close()
