"""A write's answer goes into the informer's cache at once when the cache still holds a version
the write was based on: the one read, or this process's own earlier step of the same write (a
Rollout's target label, set just before its first status write, whose watch event may come in
first). Over a version someone else wrote, it is never cached: the next event brings it."""

from __future__ import annotations

from canary.adapters.kube.informer import Informer
from tests.unit.test_informer_index_follows_adds_updates_and_deletes import NS, _obj, _run, _Script


def _versions(informer: Informer) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in informer.values(NS)}


def test_a_write_is_cached_over_a_version_it_was_based_on_and_never_over_anothers() -> None:
    """a: the cache holds the version read; b: it holds the label step's event (the write was
    based on 2, then 3); c: it holds 5, which this process did not write."""
    informer = _run(_Script([_obj("a", "web", 2), _obj("b", "web", 3), _obj("c", "web", 5)]))
    informer.offer(_obj("a", "web", 4), "2", "3")
    informer.offer(_obj("b", "web", 4), "2", "3")
    informer.offer(_obj("c", "web", 4), "2", "3")
    assert _versions(informer) == {"a": "4", "b": "4", "c": "5"}
    informer.offer(_obj("a", "web", 6), "2")  # based on a version the cache has moved past
    assert _versions(informer)["a"] == "4"
