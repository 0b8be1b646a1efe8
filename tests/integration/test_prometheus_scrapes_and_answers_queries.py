"""The dev Prometheus is ready, evaluates PromQL, scrapes the targets the mesh emulator lists in
its file-discovery directory, and can be stopped and started again by tests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _query(cluster: Cluster, promql: str) -> list[dict[str, Any]]:
    status, body = _get(
        f"{cluster.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    )
    assert status == 200, body
    data = json.loads(body)
    assert data["status"] == "success"
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


def test_prometheus_is_ready_and_evaluates_a_query(cluster: Cluster) -> None:
    """/-/ready answers 200 and `vector(1) * 42` evaluates to 42."""
    assert _get(f"{cluster.prometheus_url}/-/ready")[0] == 200
    (sample,) = _query(cluster, "vector(1) * 42")
    assert float(sample["value"][1]) == 42.0


def test_linkerd_proxy_job_scrapes_targets_from_the_discovery_directory(cluster: Cluster) -> None:
    """A target file in the discovery directory is scraped by job linkerd-proxy with its labels."""
    marker = f"sd-{uuid.uuid4().hex[:8]}"
    address = urllib.parse.urlsplit(cluster.prometheus_url).netloc
    target_file = cluster.targets_dir / f"{marker}.json"
    target_file.write_text(
        json.dumps(
            [
                {
                    "targets": [address],
                    "labels": {"namespace": marker, "__metrics_path__": "/metrics"},
                }
            ]
        )
    )
    try:
        deadline = time.monotonic() + 30
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not result:
            result = _query(cluster, f'up{{job="linkerd-proxy", namespace="{marker}"}} == 1')
            time.sleep(1)
        assert result, "target was not scraped within 30 s"
        assert result[0]["metric"]["instance"] == address
    finally:
        target_file.unlink()


def test_prometheus_can_be_stopped_and_started_again_at_the_same_url(cluster: Cluster) -> None:
    """stop_prometheus makes the URL refuse connections; start_prometheus brings it back ready."""
    cluster.stop_prometheus()
    try:
        with pytest.raises(urllib.error.URLError):
            _get(f"{cluster.prometheus_url}/-/ready")
    finally:
        cluster.start_prometheus()
    assert _get(f"{cluster.prometheus_url}/-/ready")[0] == 200
    (sample,) = _query(cluster, "vector(7)")
    assert float(sample["value"][1]) == 7.0
