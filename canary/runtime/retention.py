"""Retention: delete the old finished Rollouts of each target, keeping the newest ``keep`` and
always the last Succeeded one (``canary.core.history.expired`` chooses).

Scheduled by the composition root while this replica leads (``canary run --keep-finished``; 0
turns it off, for when a GitOps tool owns the Rollouts). A Rollout changed since it was listed
(a retry given meanwhile) is left for the next run. Talks to the cluster only through ports.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from canary.core import history
from canary.errors import CanaryError, Conflict
from canary.ports import RolloutDeleter, RolloutStore

log = structlog.get_logger("canary.retention")


class Retention:
    """Deletes expired finished Rollouts; counts each through ``on_deleted``."""

    def __init__(
        self,
        store: RolloutStore,
        deleter: RolloutDeleter,
        *,
        keep: int,
        namespace: str | None = None,
        on_deleted: Callable[[], None] = lambda: None,
    ) -> None:
        self._store, self._deleter = store, deleter
        self._keep, self._namespace, self._on_deleted = keep, namespace, on_deleted

    def run(self) -> int:
        """One pass; returns how many Rollouts it deleted. Never raises a CanaryError."""
        try:
            doomed = history.expired(self._store.list(self._namespace), self._keep)
        except CanaryError as error:
            log.warning("retention_failed", error=str(error))
            return 0
        deleted = 0
        for rollout in doomed:
            meta = rollout.metadata
            try:
                self._deleter.delete(rollout)
            except Conflict:
                continue
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
