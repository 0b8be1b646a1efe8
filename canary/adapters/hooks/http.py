"""The policy's hooks over HTTP: each call is a POST of the release's JSON, made on a small
thread pool so that no reconcile ever waits for a receiver.

Implements ``ports.HookCaller``. Who calls it: the reconciler (``start`` after writing the
status that records a call, ``answers`` when it observes). What it must not do: raise, follow
redirects, or call anything :func:`canary.core.outbound.check_hook` refuses — only Services of
the Rollout's own namespace or hosts the operator allows, never loopback, link-local or metadata
addresses; the connection goes to the address that was checked. Logs name the host only.

Answers live in memory, a bounded number per Rollout; a restart loses the running calls, which
the state machine then marks ``Lost`` and asks again (so a receiver may see a call twice: the
payload's ``key`` identifies it).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import structlog

from canary.core import notice, outbound
from canary.core.vocabulary import CallHook, Event, HookAnswer
from canary.model.rollout import Rollout
from canary.ports import Ref

log = structlog.get_logger("canary.hooks")

ANSWERS_PER_ROLLOUT = 32
MAX_ROLLOUTS = 4096
MAX_BODY = 4096
"""Bytes of the receiver's answer read (its start is kept as the attempt's message)."""


def payload(rollout: Rollout, call: CallHook, at: datetime) -> dict[str, Any]:
    """The JSON a hook receives: the notification document (``canary.core.notice``, schema
    ``canary.dev/notification/v1``) about the call, with ``hook`` saying which call it is.
    ``id`` is the call's key: the same on a repeated call, so a receiver can drop duplicates."""
    event = Event("Normal", "HookCalled", f"{call.type} hook {call.name} at {call.point}")
    document = notice.build(
        rollout, rollout.status, event, key=call.key, at=at, step_count=call.step_count
    )
    document["hook"] = {
        "name": call.name,
        "type": call.type,
        "point": call.point,
        "metadata": dict(call.metadata),
    }
    return document


class _Pinned(http.client.HTTPConnection):
    """HTTP to a host name, connected to the address that was checked."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    """HTTPS to a host name (certificate and SNI for the name), connected to a checked address."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def call(
    url: str, namespace: str, document: Any, timeout: float, policy: outbound.Policy
) -> tuple[str, int | None, str]:
    """POST ``document`` to a hook: (result, HTTP status, message). Never raises."""
    try:
        target = outbound.check_hook(policy, url, namespace)
        try:
            found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise outbound.Refused(f"{target.host} does not resolve") from None
        addresses = [str(info[4][0]) for info in found]
        for address in addresses:
            outbound.check_hook_address(target, address)
    except outbound.Refused as refused:
        return "Refused", None, str(refused)
    kind = _PinnedTLS if target.scheme == "https" else _Pinned
    connection = kind(target.host, target.port, addresses[0], timeout)
    try:
        connection.request(
            "POST",
            target.target,
            body=json.dumps(document).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "canary-hooks"},
        )
        response = connection.getresponse()
        text = response.read(MAX_BODY).decode("utf-8", "replace").strip()
        code = response.status
    except TimeoutError:
        return "TimedOut", None, f"no answer from {target.host} within {timeout:g}s"
    except (OSError, http.client.HTTPException, ValueError) as error:
        # The exception's text may quote the URL: report its kind only.
        return "Failed", None, f"{type(error).__name__} calling {target.host}"
    finally:
        connection.close()
    result = "Passed" if 200 <= code < 300 else "Failed"
    return result, code, " ".join(text.split())[:200]


class HTTPHooks:
    """Runs hook calls on a pool of ``workers`` threads and keeps their answers."""

    def __init__(
        self,
        policy: outbound.Policy,
        *,
        workers: int = 4,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        done: Callable[[Ref], None] = lambda _ref: None,
    ) -> None:
        self._policy, self._clock, self._done = policy, clock, done
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="canary-hook")
        self._lock = threading.Lock()
        self._started: set[str] = set()
        self._answers: OrderedDict[Ref, deque[HookAnswer]] = OrderedDict()

    def start(self, rollout: Rollout, call: CallHook) -> None:
        """Begin ``call`` on the pool unless it has begun already."""
        ref = Ref(rollout.metadata.namespace, rollout.metadata.name)
        with self._lock:
            if call.key in self._started:
                return
            self._started.add(call.key)
        self._pool.submit(self._run, ref, payload(rollout, call, self._clock()), call)

    def _run(self, ref: Ref, document: dict[str, Any], hook: CallHook) -> None:
        try:
            result, code, message = call(
                hook.url, ref.namespace, document, hook.timeout.total_seconds(), self._policy
            )
        except Exception as error:  # a worker thread must never die of one call
            result, code, message = "Failed", None, type(error).__name__
        host = urlsplit(hook.url).hostname
        log.info("hook_answered", hook=hook.name, point=hook.point, host=host, result=result)
        answer = HookAnswer(hook.key, result, code, message, self._clock())  # type: ignore[arg-type]
        with self._lock:
            self._started.discard(hook.key)
            kept = self._answers.setdefault(ref, deque(maxlen=ANSWERS_PER_ROLLOUT))
            kept.append(answer)
            self._answers.move_to_end(ref)
            while len(self._answers) > MAX_ROLLOUTS:
                self._answers.popitem(last=False)
        self._done(ref)

    def answers(self, ref: Ref) -> Sequence[HookAnswer]:
        """The answers of the Rollout's calls that have ended, oldest first."""
        with self._lock:
            return tuple(self._answers.get(ref, ()))

    def close(self) -> None:
        """Stop taking calls; running ones finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)
