"""The informer's index files each object under its key and follows every add, update and
delete: the objects of one key are found without a scan, and a key left with no object is
dropped (no entry outlives the objects it filed). Driven by a scripted lister standing in for
the API server's list and watch; the real API server's side is covered by
tests/integration/test_cached_reads_agree_with_the_api_server.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from canary.adapters.kube.informer import Informer

NS = "test"


def _obj(name: str, target: str, version: int, namespace: str = NS) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(version)},
        "spec": {"target": target},
    }


class _Response:
    """A raw (not preloaded) answer of the kubernetes client: a list's body, or watch lines."""

    def __init__(self, body: dict[str, Any] | None = None, lines: list[Any] | None = None) -> None:
        self.data = json.dumps(body or {}).encode()
        self._lines = lines or []

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        yield b"".join(json.dumps(line).encode() + b"\n" for line in self._lines)

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class _Script:
    """One list, then one watch per batch of events; past the last batch, the informer is
    stopped (so ``run`` returns with every batch applied, no waiting)."""

    def __init__(self, items: list[dict[str, Any]], *batches: list[dict[str, Any]]) -> None:
        self.items, self.batches = items, list(batches)
        self.stop = threading.Event()

    def __call__(self, **kwargs: Any) -> _Response:
        if not kwargs.get("watch"):
            return _Response({"metadata": {"resourceVersion": "1"}, "items": self.items})
        if not self.batches:
            self.stop.set()
            return _Response(lines=[])
        return _Response(lines=self.batches.pop(0))


def _target(obj: dict[str, Any]) -> str | None:
    return str(obj["spec"]["target"]) if obj["spec"]["target"] else None


def _run(script: _Script) -> Informer:
    informer = Informer("Thing", [(NS, script)], index=_target)
    informer.run(None, script.stop)
    return informer


def _names(informer: Informer, key: str, namespace: str | None = NS) -> list[str]:
    return [obj["metadata"]["name"] for obj in informer.values(namespace, key)]


def test_the_index_finds_the_objects_of_one_key_in_name_order() -> None:
    """After the first list, each key gives exactly its objects, sorted by name."""
    informer = _run(_Script([_obj("b", "web", 2), _obj("a", "web", 3), _obj("c", "api", 4)]))
    assert _names(informer, "web") == ["a", "b"]
    assert _names(informer, "api") == ["c"]
    assert _names(informer, "none") == []
    assert informer.index_keys() == 2


def test_an_update_moves_an_object_to_its_new_key_and_a_delete_takes_it_out() -> None:
    """A changed key refiles the object; a deleted object leaves the index; a key with no
    object left is dropped."""
    events = [
        {"type": "MODIFIED", "object": _obj("b", "api", 5)},
        {"type": "DELETED", "object": _obj("a", "web", 6)},
        {"type": "ADDED", "object": _obj("d", "web", 7)},
    ]
    informer = _run(
        _Script([_obj("a", "web", 2), _obj("b", "web", 3), _obj("c", "api", 4)], events)
    )
    assert _names(informer, "web") == ["d"]
    assert _names(informer, "api") == ["b", "c"]
    assert informer.index_keys() == 2


def test_deleting_every_object_leaves_an_empty_index() -> None:
    """Objects created and deleted again and again leave nothing behind in the index."""
    batches = [
        [
            {"type": "ADDED", "object": _obj(f"r-{i}", f"t-{i % 3}", 10 + 2 * i)},
            {"type": "DELETED", "object": _obj(f"r-{i}", f"t-{i % 3}", 11 + 2 * i)},
        ]
        for i in range(30)
    ]
    informer = _run(
        _Script(
            [_obj("a", "web", 2)], *batches, [{"type": "DELETED", "object": _obj("a", "web", 99)}]
        )
    )
    assert len(informer) == 0
    assert informer.index_keys() == 0
    assert informer.values(NS, "web") == []


def test_a_relist_drops_what_is_gone_from_the_index() -> None:
    """Objects missing from a new list (deleted while the watch was down) leave the index."""
    script = _Script([_obj("a", "web", 2), _obj("b", "api", 3)])
    informer = _run(script)
    script.items = [_obj("b", "api", 3)]
    script.stop.clear()
    informer.run(None, script.stop)
    assert _names(informer, "web") == []
    assert _names(informer, "api") == ["b"]
    assert informer.index_keys() == 1


def test_unindexed_objects_are_kept_but_filed_under_no_key() -> None:
    """An object the index gives no key is still cached, and in no key's answer."""
    informer = _run(_Script([_obj("a", "", 2), _obj("b", "web", 3)]))
    assert len(informer) == 2
    assert _names(informer, "web") == ["b"]
    assert informer.index_keys() == 1


def test_keys_are_per_namespace_and_can_be_read_across_namespaces() -> None:
    """The same key in two namespaces files each object in its own; without a namespace the
    answer is every namespace's, in namespace order."""
    script = _Script([_obj("a", "web", 2, "two"), _obj("b", "web", 3, "one")])
    informer = Informer("Thing", [(None, script)], index=_target)
    informer.run(None, script.stop)
    assert _names(informer, "web", "one") == ["b"]
    assert _names(informer, "web", None) == ["b", "a"]
