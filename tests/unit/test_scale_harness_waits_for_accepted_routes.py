"""The scale harness's warm-up waits for the mesh to accept each route (bench/scale.py), as the
controller does: Linkerd's policy controller accepted it for the app's apex Service port and
resolved its backends (``canary.adapters.routers.httproute.accepted_for``)."""

from typing import Any

from bench import scale
from canary.adapters.routers.httproute import POLICY_CONTROLLER

APEX = {"group": "core", "kind": "Service", "name": "app-3", "port": scale.APP_PORT}


def _route(*conditions: tuple[str, str], **parent: Any) -> dict[str, Any]:
    status = {
        "controllerName": POLICY_CONTROLLER,
        "parentRef": APEX,
        "conditions": [{"type": t, "status": s} for t, s in conditions],
        **parent,
    }
    return {"metadata": {"name": "app-3", "generation": 1}, "status": {"parents": [status]}}


def test_a_route_counts_once_linkerd_accepted_it_and_resolved_its_backends() -> None:
    ok = (("ResolvedRefs", "True"), ("Accepted", "True"))
    assert scale._accepted(_route(*ok), "ns")
    assert not scale._accepted(_route(("Accepted", "False")), "ns")
    assert not scale._accepted(_route(("ResolvedRefs", "True")), "ns")
    assert not scale._accepted(_route(("Accepted", "True")), "ns")
    assert not scale._accepted(_route(("Accepted", "True"), ("ResolvedRefs", "False")), "ns")
    assert not scale._accepted({"metadata": {"name": "app-3"}, "status": {}}, "ns")
    assert not scale._accepted({"metadata": {"name": "app-3"}}, "ns")


def test_another_controllers_or_another_parents_acceptance_does_not_count() -> None:
    ok = (("ResolvedRefs", "True"), ("Accepted", "True"))
    assert not scale._accepted(_route(*ok, controllerName="example.com/gateway"), "ns")
    assert not scale._accepted(_route(*ok, parentRef={**APEX, "name": "app-4"}), "ns")
    assert not scale._accepted(_route(*ok, parentRef={**APEX, "port": 80}), "ns")
