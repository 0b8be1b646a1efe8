"""Prometheus, read the way the Linkerd proxies report (``ports.MetricProvider``).

Called by the runtime once per tick: ``snapshot`` runs ONE instant query for the inbound
counters of every active rollout (built by ``canary.core.promql``) and hands the samples to
``canary.core.evidence.parse``; ``value`` runs a user's custom PromQL check. The only module
that imports ``prometheus_api_client``, and the one place its exceptions (and those of the HTTP
stack under it) become ``MetricsUnavailable``: an unreachable Prometheus, an HTTP error or a
query error is never an SLO breach. It judges nothing and keeps no state between ticks.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from canary.core import evidence, promql
from canary.errors import MetricsUnavailable
from canary.ports import Arms

TIMEOUT_SECONDS = 10
"""How long one query may take; well inside a tick."""

_HTTP_ERROR = re.compile(r"(HTTP Status Code \d+) \((b'.*'|b\".*\")\)", re.DOTALL)


def _reason(error: PrometheusApiClientException) -> str:
    """Prometheus' own error message when the answer carries one ("parse error at ...").
    The client reports ``HTTP Status Code <n> (<repr of the body>)``."""
    text = str(error)
    found = _HTTP_ERROR.fullmatch(text)
    if found is None:
        return text
    try:
        body = json.loads(ast.literal_eval(found[2]))
        return f"{found[1]}: {body['error']}"
    except (ValueError, SyntaxError, TypeError, KeyError):
        return text


class PrometheusMetrics:
    """Queries one Prometheus server over its HTTP API."""

    def __init__(
        self,
        url: str,
        *,
        timeout: int = TIMEOUT_SECONDS,
        disable_ssl: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # One quick retry for a dropped connection or a restarting server; the tick after
        # this one is the real retry. POST because a batched selector can be long.
        retry = Retry(
            total=1,
            backoff_factor=0.2,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
        )
        self._prometheus = PrometheusConnect(
            url=self.url,
            headers=dict(headers or {}),
            disable_ssl=disable_ssl,
            retry=retry,
            timeout=timeout,
            method="POST",
        )

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except PrometheusApiClientException as error:
            raise MetricsUnavailable(
                f"{what}: Prometheus at {self.url} answered {_reason(error)}"
            ) from error
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            # Before OSError: requests' JSONDecodeError is both. RecursionError: JSON nested
            # deeper than the decoder can follow.
            raise MetricsUnavailable(
                f"{what}: {self.url} did not answer like Prometheus: {error!r:.200}"
            ) from error
        except OSError as error:  # requests' exceptions are OSErrors
            raise MetricsUnavailable(
                f"{what}: cannot reach Prometheus at {self.url}: {error}"
            ) from error

    def _query(self, what: str, query: str) -> Any:
        with self._translated(what):
            return self._prometheus.custom_query(query)

    def snapshot(self, targets: Sequence[Arms]) -> evidence.Snapshot:
        """The cumulative inbound counters of every pod of both arms of every rollout in
        ``targets``, from one query. Raises MetricsUnavailable when Prometheus cannot answer and
        InvalidSpec for a name that is not a Kubernetes name."""
        pairs = sorted({(a.namespace, name) for a in targets for name in (a.stable, a.canary)})
        if not pairs:
            return {}
        result = self._query("counters query", promql.counters_query(pairs))
        if not isinstance(result, list) or not all(isinstance(s, dict) for s in result):
            raise MetricsUnavailable(f"counters query: not an instant vector: {result!r:.200}")
        # The selector is a product of namespaces and names; keep only the pairs asked for.
        wanted = set(pairs)
        return {
            key: counters
            for key, counters in evidence.parse(result).items()
            if key.target in wanted
        }

    def value(self, query: str) -> float | None:
        """The single number ``query`` returns; None for an empty result or NaN. Raises
        MetricsUnavailable when Prometheus cannot answer or the answer is not one number."""
        return promql.single_value(self._query("metric query", query))

    def close(self) -> None:
        """Release the HTTP connections."""
        self._prometheus.close()
