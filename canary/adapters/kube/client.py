"""Connecting to the API server and translating the client's exceptions into canary's errors.

Every module in this package calls the API inside ``translated()``, so that the runtime only
ever sees ``canary.errors`` (Conflict, ApiUnavailable, TerminalError, WriteRefused). A
refusal (400 from an admission webhook, 422 from validation) is never retried as if the API
server were unavailable: the same write would be refused again.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from canary.errors import ApiUnavailable, Conflict, Problem, TerminalError, WriteRefused


class RateLimiter:
    """A token bucket: ``qps`` requests a second on average, bursts of up to ``burst`` (the
    client-side limit client-go and controller-runtime apply toward the API server)."""

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"qps must be > 0 and burst >= 1 (got qps={qps}, burst={burst})")
        self._qps, self._burst = qps, burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until it is there; the seconds slept."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
            self._last = now
            self._tokens -= 1  # reserved now: later callers queue behind this one
            wait = -self._tokens / self._qps if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


@dataclass(frozen=True)
class Request:
    """What one API request was, in the API server's own terms (``apiserver_request_total``'s
    labels): so the controller's figures and the API server's can be read side by side."""

    verb: str
    """GET, LIST, WATCH, POST, PUT, PATCH or DELETE."""
    resource: str
    """The resource's plural (``deployments``, ``rollouts``); empty for discovery."""
    subresource: str = ""


def request_of(method: str, url: str) -> Request:
    """The verb and resource of a request to ``url`` (a GET of a collection is a LIST, or a
    WATCH with ``watch=true``; discovery is a GET of no resource)."""
    split = urllib.parse.urlsplit(url)
    parts = [p for p in split.path.split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return Request(method.upper(), "")
    if len(rest) > 2 and rest[0] == "namespaces":
        rest = rest[2:]
    resource = rest[0] if rest else ""
    named = len(rest) > 1
    verb = method.upper()
    if verb == "GET" and resource and not named:
        query = urllib.parse.parse_qs(split.query)
        watch = any(v.lower() in ("true", "1") for v in query.get("watch", []))
        verb = "WATCH" if watch else "LIST"
    return Request(verb, resource, rest[2] if len(rest) > 2 else "")


RequestObserver = Callable[[Request, str, float, float], None]
"""Hears each request: what it was, its HTTP status code (``"error"``: no answer), the seconds
to its answer's headers, and the seconds the client-side rate limit held it back."""


class LimitedApiClient(client.ApiClient):
    """An API client whose every request (a watch counts when it starts) takes a token, and
    whose requests an ``observer`` hears of (the controller's metrics)."""

    limiter: RateLimiter | None = None
    observer: RequestObserver | None = None

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        waited = self.limiter.acquire() if self.limiter is not None else 0.0
        if self.observer is None:
            return super().call_api(method, url, *args, **kwargs)
        started = time.perf_counter()
        code = "error"
        try:
            response = super().call_api(method, url, *args, **kwargs)
            code = str(response.status)
            return response
        finally:
            self.observer(request_of(method, url), code, time.perf_counter() - started, waited)


def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    limiter: RateLimiter | None = None,
    user_agent: str | None = None,
) -> LimitedApiClient:
    """An API client from a kubeconfig file (or $KUBECONFIG, ~/.kube/config), else in-cluster;
    with ``limiter``, its requests are rate limited; ``user_agent`` is what the API server's
    audit log records for its requests."""
    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        else:
            try:
                config.load_kube_config(context=context, client_configuration=configuration)
            except (ConfigException, OSError):
                config.load_incluster_config(client_configuration=configuration)
    except (ConfigException, OSError) as error:
        raise TerminalError(
            f"cannot find a cluster: {error}; pass --kubeconfig or set KUBECONFIG"
        ) from error
    configuration.retries = urllib3.Retry(total=2, backoff_factor=0.2)
    api = LimitedApiClient(configuration)
    api.limiter = limiter
    if user_agent is not None:
        api.user_agent = user_agent
    return api


def _message(error: ApiException) -> str:
    try:
        body: dict[str, Any] = json.loads(error.body or "{}")
    except ValueError:
        return str(error.reason)
    return str(body.get("message") or error.reason)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run API calls, turning the client's exceptions into canary's error tree."""
    try:
        yield
    except ApiException as error:
        status = error.status or 0
        message = f"{what}: {_message(error)}"
        if status == 409:
            raise Conflict(message) from error
        if status in (400, 422):
            raise WriteRefused([Problem("", message)]) from error
        if status in (401, 403):
            raise TerminalError(
                f"{message} (check canary's RBAC: charts/canary, deploy/canary.yaml)"
            ) from error
        if status == 404:
            raise TerminalError(f"{message} (is the CRD installed?)") from error
        raise ApiUnavailable(message) from error
    except ResourceNotFoundError as error:
        raise TerminalError(f"{what}: {error} (is the CRD installed?)") from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ApiUnavailable(f"{what}: {error}") from error


def whoami(api: client.ApiClient) -> str:
    """The username the API server authenticates this client as (a SelfSubjectReview): the
    name the admission policy requires as a command's actor."""
    with translated("self subject review"):
        review = client.AuthenticationV1Api(api).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
    info = review.status.user_info if review.status else None
    if info is None or not info.username:
        raise TerminalError("the API server did not say who this client is")
    return str(info.username)
