"""bench.tick_cost sorts a counters answer's series into the latency buckets and the
success/failure counters (what the tick's answer is made of), and asks for what the tick asks
for over a scale round's apps."""

from __future__ import annotations

from bench import snapshot_memory, tick_cost
from canary.ports import Arms


def test_series_are_counted_by_family_and_pods_once() -> None:
    pod = {"namespace": "ns", "deployment": "app-1", "pod": "app-1-x"}
    other = {"namespace": "ns", "deployment": "app-1-canary", "pod": "app-1-canary-y"}
    result: list[dict[str, object]] = [
        {"metric": {**pod, "le": "1"}, "value": [0, "3"]},
        {"metric": {**pod, "le": "+Inf"}, "value": [0, "5"]},
        {"metric": {**pod, "classification": "success"}, "value": [0, "5"]},
        {"metric": {**other, "le": "+Inf"}, "value": [0, "1"]},
        {"metric": {**other, "classification": "failure"}, "value": [0, "1"]},
        {"metric": {"namespace": "ns"}, "value": [0, "1"]},
        {"value": [0, "1"]},  # no labels at all
    ]
    families, pods = tick_cost.breakdown(result)
    assert families == {"latency bucket": 3, "response counter": 2, "other": 2}
    assert pods == 2


def test_the_round_is_asked_for_as_the_tick_asks() -> None:
    assert snapshot_memory.arms(3, "scale-3-1") == [
        Arms("scale-3-1", "app-0", "app-0-canary"),
        Arms("scale-3-1", "app-1", "app-1-canary"),
        Arms("scale-3-1", "app-2", "app-2-canary"),
    ]
