"""Shared informers: local copies of cluster objects, kept current by list + watch.

An ``Informer`` caches one kind of object in the watched namespaces (or in all): it lists them
once, then watches from the list's resourceVersion (with bookmarks, so a quiet watch still moves
its resourceVersion forward), and relists when the API server answers ``410 Gone`` (the
resourceVersion it watched from was compacted). Every change it applies is reported as a
``ports.Change`` to whoever runs it; ``canary.runtime.controller.resync`` walks the cache every
minute as the safety net under the watches. Objects are kept as the wire's JSON dicts, passed
through a ``keep`` function that trims them to the fields the controller reads (the memory of
thousands of Deployments) or parses them (a Rollout is parsed once per resourceVersion, not once
per read). An optional ``index`` function files each kept value under a key (a Rollout under
the Deployment it targets), so that the few objects of one key are found without a scan; the
index follows every add, update and delete, and a key with no object left is dropped.

Readers (``canary.adapters.kube.cached``) never call the API server; writers still do, guarded
by resourceVersion, so a stale copy can cause a ``Conflict`` but never a wrong write. Only this
module watches; it never writes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import structlog
import urllib3
from kubernetes import watch as kube_watch
from kubernetes.client.exceptions import ApiException

from canary.adapters.kube.client import translated
from canary.errors import ApiUnavailable, CanaryError
from canary.ports import Change, StopSignal

log = structlog.get_logger("canary.informer")

WATCH_SECONDS = 50
"""How long one watch request lasts before it is renewed from the last resourceVersion seen."""

PAGE = 100
"""Objects a list asks for at once. A list holds its page's wire JSON and parsed dicts while it
caches them, and the memory they took stays with the process after they are freed (the
allocator's arenas are pinned by the cached objects allocated between them): a first list of
1000 apps (Deployments, Services, HTTPRoutes, Rollouts) left the process at 112.7 MB unpaged,
108.8 MB in pages of 500 (client-go's pager default) and 104.1 MB in pages of 100
(``make bench-list-memory``, docs/benchmarks.md), for 10 requests a kind instead of 1."""

Lister = Callable[..., Any]
"""A kubernetes client ``list_*`` method with its positional arguments bound."""

Scope = tuple[str | None, Lister]
"""The namespace a lister lists (None: every namespace), and the lister."""

Keep = Callable[[dict[str, Any]], Any]

Index = Callable[[Any], str | None]
"""The key a kept value is filed under (None: not indexed)."""


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class _Expired(Exception):
    """A list's continue token is too old (410): the rest of the list comes unpaged."""


def _identity(obj: dict[str, Any]) -> Any:
    return obj


class Informer:
    """One kind of object, in one scope per ``Lister`` (a namespace each, or the cluster)."""

    def __init__(
        self, kind: str, scopes: list[Scope], keep: Keep = _identity, index: Index | None = None
    ) -> None:
        self.kind = kind
        self._scopes = scopes
        self._keep = keep
        self._index_of = index
        self._lock = threading.Lock()
        # namespace -> name -> (resourceVersion, kept value, labels)
        self._objects: dict[str, dict[str, tuple[str, Any, dict[str, str]]]] = {}
        # namespace -> index key -> names; only keys with an object, only namespaces with a key
        self._index: dict[str, dict[str, set[str]]] = {}
        self._synced = [threading.Event() for _ in scopes]
        self.error: CanaryError | None = None

    # -- reading ---------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Any | None:
        """The kept value of an object, or None when the cache has no such object."""
        with self._lock:
            found = self._objects.get(namespace, {}).get(name)
        return None if found is None else found[1]

    def values(self, namespace: str | None = None, key: str | None = None) -> list[Any]:
        """Every kept value (of one namespace, or of all), in namespace and name order; with
        ``key``, only those the index files under it (found without a scan)."""
        with self._lock:
            namespaces = [namespace] if namespace is not None else sorted(self._objects)
            if key is None:
                return [
                    scope[name][1]
                    for scope in (self._objects.get(ns, {}) for ns in namespaces)
                    for name in sorted(scope)
                ]
            return [
                self._objects[ns][name][1]
                for ns in namespaces
                for name in sorted(self._index.get(ns, {}).get(key, ()))
            ]

    def index_keys(self) -> int:
        """How many index keys are held (each has at least one object): what the index costs."""
        with self._lock:
            return sum(len(keys) for keys in self._index.values())

    def __len__(self) -> int:
        with self._lock:
            return sum(len(scope) for scope in self._objects.values())

    def synced(self) -> bool:
        """Whether every scope has been listed at least once."""
        return all(event.is_set() for event in self._synced)

    def wait_synced(self, timeout: float) -> None:
        """Block until synced; raise the last API error (or ApiUnavailable) if not in time."""
        for event in self._synced:
            if not event.wait(timeout):
                raise self.error or ApiUnavailable(f"the cache of {self.kind} is not synced yet")

    def offer(self, obj: dict[str, Any], *based_on: str | None) -> None:
        """An object this process has just written (the API server's answer): cache it now, if
        the cached copy is still one of the versions the write was based on (the one read, or
        this process's own earlier step of the same write: no one else's event came first), so
        the next reconcile does not read its own write as stale."""
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        with self._lock:
            current = self._objects.get(namespace, {}).get(name)
            if current is not None and current[0] in based_on:
                self._store(namespace, name, obj)

    # -- keeping current -------------------------------------------------------------------

    def run(self, on_change: Callable[[Change], None] | None, stop: StopSignal) -> None:
        """List and watch every scope until ``stop`` (one thread per scope); blocks."""
        threads = [
            threading.Thread(
                target=self._loop,
                args=(i, on_change, stop),
                daemon=True,
                name=f"informer-{self.kind}-{i}",
            )
            for i in range(len(self._scopes))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _loop(self, i: int, on_change: Callable[[Change], None] | None, stop: StopSignal) -> None:
        backoff = 1.0
        while not stop.is_set():
            try:
                version = self._relist(i, on_change)
                self._synced[i].set()
                self.error = None
                backoff = 1.0
                while not stop.is_set():
                    version = self._watch(i, version, on_change)
            except Gone:
                log.info("informer_relisted", kind=self.kind, reason="resource version expired")
            except CanaryError as error:
                if stop.is_set():
                    return  # the connection was closed under the watch on the way out
                self.error = error
                log.warning("informer_restarted", kind=self.kind, error=str(error))
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _relist(self, i: int, on_change: Callable[[Change], None] | None) -> str:
        """List scope ``i`` page by page, caching each page as it comes (so a relist of
        thousands of objects holds one page of wire JSON at a time, not all of them), then drop
        what the list no longer has. Returns the list's resourceVersion, to watch from."""
        seen: set[tuple[str, str]] = set()
        changed: list[Change] = []
        version = ""
        for body in self._pages(i):
            with self._lock:
                for obj in body.get("items") or []:
                    meta = obj["metadata"]
                    namespace, name = meta.get("namespace", ""), meta["name"]
                    seen.add((namespace, name))
                    current = self._objects.get(namespace, {}).get(name)
                    if current is None or current[0] != meta.get("resourceVersion"):
                        self._store(namespace, name, obj)
                        changed.append(Change(self.kind, namespace, name, _labels(obj)))
            version = str((body.get("metadata") or {}).get("resourceVersion", ""))
            del body  # the next page is read without this one held
        with self._lock:
            for key in self._scope_keys(i) - seen:
                labels = self._objects[key[0]][key[1]][2]
                self._remove(*key)
                changed.append(Change(self.kind, key[0], key[1], labels))
        if on_change is not None:
            for change in changed:
                on_change(change)
        return version

    def _pages(self, i: int) -> Iterator[dict[str, Any]]:
        """The list of scope ``i`` in pages of ``PAGE`` objects (one consistent snapshot: every
        page is read at the first one's resourceVersion). A continue token that expires before
        the last page (the list outlived etcd's compaction) ends the paging with one full
        list, as client-go's pager does; objects already cached are then merely seen again."""
        token: str | None = None
        while True:
            try:
                body = self._list(i, limit=PAGE, **({"_continue": token} if token else {}))
            except _Expired:
                log.info("informer_list_unpaged", kind=self.kind, reason="continue token expired")
                yield self._list(i)
                return
            yield body
            token = (body.get("metadata") or {}).get("continue") or None
            del body
            if token is None:
                return

    def _list(self, i: int, **paging: Any) -> dict[str, Any]:
        with translated(f"list {self.kind}"):
            try:
                response = self._scopes[i][1](_preload_content=False, **paging)
            except ApiException as error:
                if error.status == 410 and "_continue" in paging:
                    raise _Expired() from error
                raise
            try:
                body: dict[str, Any] = json.loads(response.data)
            except ValueError as error:
                raise ApiUnavailable(f"list {self.kind}: not JSON: {error}") from error
        return body

    def _scope_keys(self, i: int) -> set[tuple[str, str]]:
        """The cached keys scope ``i`` answers for: one namespace, or all of them."""
        namespace = self._scopes[i][0]
        namespaces = set(self._objects) if namespace is None else {namespace}
        return {(ns, name) for ns in namespaces for name in self._objects.get(ns, {})}

    def _watch(self, i: int, version: str, on_change: Callable[[Change], None] | None) -> str:
        with translated(f"watch {self.kind}"):
            try:
                response = self._scopes[i][1](
                    watch=True,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    _preload_content=False,
                )
            except ApiException as error:
                if error.status == 410:
                    raise Gone() from error
                raise
            try:
                for event in _events(response):
                    version = self._apply(event, on_change) or version
            finally:
                response.close()
                response.release_conn()
        return version

    def _apply(self, event: dict[str, Any], on_change: Callable[[Change], None] | None) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise ApiUnavailable(f"watch {self.kind}: {obj.get('message', obj)}")
        meta = obj.get("metadata") or {}
        version = str(meta.get("resourceVersion", ""))
        if kind == "BOOKMARK":
            return version
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        with self._lock:
            if kind == "DELETED":
                self._remove(namespace, name)
            else:
                self._store(namespace, name, obj)
        if on_change is not None:
            on_change(Change(self.kind, namespace, name, _labels(obj)))
        return version

    def _store(self, namespace: str, name: str, obj: dict[str, Any]) -> None:
        version = str(obj["metadata"].get("resourceVersion", ""))
        current = self._objects.get(namespace, {}).get(name)
        if current is not None and _older(version, current[0]):
            return  # a lagging watch event behind a write this process has already cached
        kept = (version, self._keep(obj), _labels(obj))
        if current is not None:
            self._unindex(namespace, name, current[1])
        self._objects.setdefault(namespace, {})[name] = kept
        key = self._key(kept[1])
        if key is not None:
            self._index.setdefault(namespace, {}).setdefault(key, set()).add(name)

    def _remove(self, namespace: str, name: str) -> None:
        scope = self._objects.get(namespace)
        if scope is not None:
            gone = scope.pop(name, None)
            if gone is not None:
                self._unindex(namespace, name, gone[1])
            if not scope:
                del self._objects[namespace]  # no empty dict left per deleted namespace

    def _key(self, kept: Any) -> str | None:
        return None if self._index_of is None else self._index_of(kept)

    def _unindex(self, namespace: str, name: str, kept: Any) -> None:
        """Take ``name`` out of the index, dropping a key (and a namespace) left empty."""
        key = self._key(kept)
        keys = self._index.get(namespace)
        if key is None or keys is None or key not in keys:
            return
        keys[key].discard(name)
        if not keys[key]:
            del keys[key]
            if not keys:
                del self._index[namespace]


def _older(version: str, than: str) -> bool:
    """Whether ``version`` is older than ``than``. resourceVersions are opaque to clients in
    general; the API server over etcd gives integers (etcd revisions) and only then are they
    compared, so a non-integer version is never taken for an older one."""
    return version.isdigit() and than.isdigit() and int(version) < int(than)


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _events(response: Any) -> Iterator[dict[str, Any]]:
    """The watch events of a raw (not preloaded) watch response, one JSON object a line."""
    try:
        for line in kube_watch.watch.iter_resp_lines(response):
            if line:
                yield json.loads(line)
    except (urllib3.exceptions.HTTPError, ValueError) as error:
        raise ApiUnavailable(f"watch interrupted: {error}") from error
