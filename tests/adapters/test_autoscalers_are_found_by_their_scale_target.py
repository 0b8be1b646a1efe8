"""The target's HorizontalPodAutoscaler is the one whose scaleTargetRef is the Deployment
(whatever its name), and the canary's is derived from it: its metrics and behavior copied, its
target the canary Deployment, its bounds the ones the machine chose."""

from __future__ import annotations

from typing import Any

from canary.adapters.kube.autoscalers import autoscaler_of, bounds, canary_autoscaler_spec
from canary.core.vocabulary import Autoscaler
from tests.unit.fake_cluster import make_plan


def _hpa(name: str, kind: str, target: str, **spec: Any) -> dict[str, Any]:
    group = "apps/v1" if kind == "Deployment" else "argoproj.io/v1alpha1"
    return {
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": group, "kind": kind, "name": target},
            "maxReplicas": 10,
            **spec,
        },
    }


def test_the_autoscaler_is_found_by_its_scale_target_not_its_name() -> None:
    """Named differently, or next to autoscalers of other kinds and names: the right one."""
    mine = _hpa("web-autoscaler", "Deployment", "podinfo", minReplicas=3)
    others = [
        _hpa("podinfo", "Rollout", "podinfo"),
        _hpa("other", "Deployment", "other"),
        _hpa("podinfo-canary", "Deployment", "podinfo-canary"),
    ]
    assert autoscaler_of([*others, mine], "podinfo") is mine
    assert autoscaler_of(others[:1], "podinfo") is None
    assert bounds(mine) == Autoscaler(3, 10)
    assert bounds(_hpa("x", "Deployment", "podinfo")) == Autoscaler(1, 10)  # the API's default


def test_the_canary_autoscaler_copies_metrics_and_behavior() -> None:
    """Metrics and behavior as the stable's (copies, not shared), the canary as the target."""
    metrics: list[dict[str, Any]] = [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 60}}
    stable = _hpa("podinfo", "Deployment", "podinfo", metrics=metrics, behavior=behavior)
    spec = canary_autoscaler_spec(stable, make_plan(), Autoscaler(2, 5))
    assert spec == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-canary"},
        "minReplicas": 2,
        "maxReplicas": 5,
        "metrics": metrics,
        "behavior": behavior,
    }
    spec["metrics"][0]["resource"]["name"] = "memory"
    assert metrics[0]["resource"]["name"] == "cpu"
    bare = canary_autoscaler_spec(
        _hpa("podinfo", "Deployment", "podinfo"), make_plan(), Autoscaler(1, 1)
    )
    assert "behavior" not in bare
    assert "metrics" not in bare
