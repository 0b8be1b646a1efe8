"""The controller's /metrics report its caches' sizes by kind, read at each scrape: what the
soak (bench/scale.py) reads to show that deleted objects leave the caches."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from canary.api.metrics import ControllerMetrics


def _samples(metrics: ControllerMetrics) -> dict[tuple[str, str], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, sample.labels.get("kind", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("canary_cache_")
    }


def test_cache_objects_and_index_keys_are_read_at_each_scrape() -> None:
    """Each kind's objects and index keys are exported, and follow the caches between scrapes."""
    sizes = {"Rollout": (3, 2), "Deployment": (7, 0)}
    metrics = ControllerMetrics(caches=lambda: sizes)
    assert _samples(metrics) == {
        ("canary_cache_objects", "Deployment"): 7,
        ("canary_cache_objects", "Rollout"): 3,
        ("canary_cache_index_keys", "Deployment"): 0,
        ("canary_cache_index_keys", "Rollout"): 2,
    }
    sizes["Rollout"] = (0, 0)
    assert _samples(metrics)[("canary_cache_objects", "Rollout")] == 0
    assert _samples(metrics)[("canary_cache_index_keys", "Rollout")] == 0


def test_without_caches_no_cache_series_are_exported() -> None:
    """A registry built without caches (the CLI's API server alone) exports none."""
    assert _samples(ControllerMetrics()) == {}
