"""The informer's paged list against a scripted lister: every page is asked for with the
``PAGE`` limit and the previous page's continue token, cached and reported once; a continue
token the API server refuses as expired (410) ends the paging with one unpaged list, every
object cached once and reported once; objects missing from a paged relist are dropped. The
real API server's paging is covered by
tests/integration/test_cached_reads_agree_with_the_api_server.py."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from canary.adapters.kube import informer as informer_module
from canary.adapters.kube.informer import Informer
from canary.ports import Change
from tests.unit.test_informer_index_follows_adds_updates_and_deletes import NS, _obj, _Response


class _Pages:
    """A lister that serves ``items`` in pages of the ``limit`` asked for; with ``expire``, it
    refuses every continue token with 410 Gone. Its first watch stops the informer."""

    def __init__(self, items: list[dict[str, Any]], expire: bool = False) -> None:
        self.items, self.expire = items, expire
        self.calls: list[dict[str, Any]] = []
        self.stop = threading.Event()

    def __call__(self, **kwargs: Any) -> _Response:
        if kwargs.get("watch"):
            self.stop.set()
            return _Response(lines=[])
        self.calls.append(kwargs)
        token = kwargs.get("_continue")
        if token and self.expire:
            raise ApiException(status=410, reason="Expired")
        start = int(token or 0)
        limit = kwargs.get("limit") or len(self.items)
        end = start + limit
        more = {"continue": str(end)} if end < len(self.items) else {}
        page = self.items[start:end]
        return _Response({"metadata": {"resourceVersion": "9", **more}, "items": page})


def _run(lister: _Pages, informer: Informer, changes: list[Change]) -> None:
    lister.stop.clear()
    informer.run(changes.append, lister.stop)


@pytest.fixture(autouse=True)
def _small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer_module, "PAGE", 2)


def test_every_page_is_cached_and_reported_once() -> None:
    lister = _Pages([_obj(f"o{i}", "t", i + 1) for i in range(5)])
    informer, changes = Informer("Thing", [(NS, lister)]), list[Change]()
    _run(lister, informer, changes)
    assert [c.get("_continue") for c in lister.calls] == [None, "2", "4"]
    assert all(c["limit"] == 2 for c in lister.calls)
    assert len(informer) == 5
    assert sorted(c.name for c in changes) == [f"o{i}" for i in range(5)]


def test_an_expired_continue_token_lists_the_rest_unpaged() -> None:
    lister = _Pages([_obj(f"o{i}", "t", i + 1) for i in range(5)], expire=True)
    informer, changes = Informer("Thing", [(NS, lister)]), list[Change]()
    _run(lister, informer, changes)
    assert [("limit" in c, "_continue" in c) for c in lister.calls] == [
        (True, False),
        (True, True),
        (False, False),
    ]
    assert len(informer) == 5
    assert sorted(c.name for c in changes) == [f"o{i}" for i in range(5)]


def test_a_paged_relist_drops_what_no_page_has() -> None:
    lister = _Pages([_obj(f"o{i}", "t", i + 1) for i in range(5)])
    informer, changes = Informer("Thing", [(NS, lister)]), list[Change]()
    _run(lister, informer, changes)
    lister.items = [lister.items[0], lister.items[4]]
    changes.clear()
    _run(lister, informer, changes)
    assert sorted(v["metadata"]["name"] for v in informer.values(NS)) == ["o0", "o4"]
    assert sorted(c.name for c in changes) == ["o1", "o2", "o3"]
