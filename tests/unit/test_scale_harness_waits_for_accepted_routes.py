"""The scale harness's warm-up waits for the mesh to accept each route (bench/scale.py)."""

from typing import Any

from bench import scale


def _route(*conditions: tuple[str, str]) -> dict[str, Any]:
    parent = {"conditions": [{"type": t, "status": s} for t, s in conditions]}
    return {"status": {"parents": [parent]}}


def test_a_route_counts_once_a_parent_accepted_it_and_resolved_its_backends() -> None:
    assert scale._accepted(_route(("ResolvedRefs", "True"), ("Accepted", "True")))
    assert not scale._accepted(_route(("Accepted", "False")))
    assert not scale._accepted(_route(("ResolvedRefs", "True")))
    assert not scale._accepted(_route(("Accepted", "True")))
    assert not scale._accepted(_route(("Accepted", "True"), ("ResolvedRefs", "False")))
    assert not scale._accepted({"status": {}})
    assert not scale._accepted({})
