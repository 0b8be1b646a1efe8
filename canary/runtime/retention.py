"""Retention keeps the promotion history tidy: every Rollout carries the ``canary.dev/target``
label (``kubectl get ro -l canary.dev/target=NAME``), and old finished Rollouts are deleted,
keeping the newest ``keep`` of each target and always its last Succeeded one
(``canary.core.history`` chooses both). The controller's first status write sets the label
(``ports.RolloutStore.write_status``); retention labels only finished Rollouts that lack it (they
finished before the controller did that), so its patch never lands under a reconcile writing a
Rollout's status (such a race costs that write a GET).

Scheduled by the composition root while this replica leads. ``keep=0`` (``canary run
--keep-finished 0``) deletes nothing, for when a GitOps tool owns the Rollouts; labelling goes
on (a label added by another writer does not fight GitOps tools). A Rollout changed since it
was listed (a retry given meanwhile) is left for the next run. Talks to the cluster only through
ports.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from canary.core import history
from canary.errors import CanaryError, Conflict
from canary.ports import Ref, RolloutJanitor, RolloutStore

log = structlog.get_logger("canary.retention")


class Retention:
    """Labels Rollouts with their target and deletes expired finished ones, counting each
    deletion through ``on_deleted``."""

    def __init__(
        self,
        store: RolloutStore,
        janitor: RolloutJanitor,
        *,
        keep: int,
        namespace: str | None = None,
        on_deleted: Callable[[], None] = lambda: None,
    ) -> None:
        self._store, self._janitor = store, janitor
        self._keep, self._namespace, self._on_deleted = keep, namespace, on_deleted

    def run(self) -> int:
        """One pass; returns how many Rollouts it deleted. Never raises a CanaryError."""
        try:
            rollouts = self._store.list(self._namespace)
            unlabelled = history.unlabelled(rollouts)
            for rollout in unlabelled:
                meta = rollout.metadata
                target = rollout.spec.target_ref.name
                self._janitor.label(Ref(meta.namespace, meta.name), history.TARGET_LABEL, target)
            if unlabelled and self._keep > 0:
                rollouts = self._store.list(self._namespace)  # labelling changed their versions
        except CanaryError as error:
            log.warning("retention_failed", error=str(error))
            return 0
        if self._keep <= 0:
            return 0
        deleted = 0
        for rollout in history.expired(rollouts, self._keep):
            meta = rollout.metadata
            try:
                self._janitor.delete(rollout)
            except Conflict:
                continue  # changed since listed: the next run decides again
            except CanaryError as error:
                log.warning("retention_failed", rollout=meta.name, error=str(error))
                return deleted
            deleted += 1
            self._on_deleted()
            log.info(
                "rollout_deleted",
                rollout=meta.name,
                namespace=meta.namespace,
                phase=rollout.status.phase,
                keep=self._keep,
            )
        return deleted
