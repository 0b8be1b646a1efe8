"""The worker's catch-all: no Rollout can stop the others.

``GuardedReconciler`` is the ``Reconciler`` the composition root gives the controller's single
worker. The reconciler handles the errors canary raises on purpose; anything else that escapes
one Rollout's reconcile (a bug, a library's unexpected exception) is caught here, logged with
its traceback, returned as a ``Result`` whose ``error`` is the exception's class (so it counts
in ``canary_reconcile_errors_total{error}``), reported on that Rollout — condition
``Reconciled=False`` with reason ``UnexpectedError`` and a Warning Event — and retried after
:data:`RETRY_UNEXPECTED`. The next reconcile of that Rollout that completes sets the condition
back to True. The message names the exception's class only: its text may quote a secret.

Liveness is the composition root's: ``/healthz`` fails when the worker thread is gone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from canary.core import vocabulary
from canary.core.vocabulary import Event
from canary.ports import Ref
from canary.runtime.reconciler import Measurement, Reconciler, Result

log = structlog.get_logger("canary.reconciler")

RETRY_UNEXPECTED = timedelta(seconds=30)
CONDITION = "Reconciled"


class GuardedReconciler(Reconciler):
    """A Reconciler that never lets an exception out of ``reconcile``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._failing: set[Ref] = set()

    def reconcile(self, ref: Ref, measurement: Measurement | None = None) -> Result:
        """Reconcile one Rollout; an unexpected exception is reported and retried later."""
        failing = self._failing
        try:
            result = super().reconcile(ref, measurement)
        except Exception as error:  # the catch-all: one Rollout must not stop the worker
            kind = type(error).__name__
            log.exception("reconcile_crashed", rollout=ref.name, namespace=ref.namespace)
            failing.add(ref)
            self._report(ref, False, f"{kind}: the controller hit an unexpected error; retrying")
            return Result(RETRY_UNEXPECTED, error=kind)
        if ref in failing and result.error is None:
            failing.discard(ref)
            self._report(ref, True, "reconciled again")
        return result

    def _report(self, ref: Ref, ok: bool, message: str) -> None:
        """Set the condition (and on failure record a Warning Event); best effort."""
        try:
            rollout = self._store.get(ref)
            if rollout is None:
                return
            status = rollout.status
            conditions = vocabulary.set_condition(
                status.conditions,
                CONDITION,
                status=ok,
                reason="Reconciled" if ok else "UnexpectedError",
                message=message,
                now=self._clock.now(),
            )
            self._store.write_status(rollout, status.model_copy(update={"conditions": conditions}))
            if not ok:
                self._events.record(rollout, Event("Warning", "ReconcileFailed", message))
        except Exception as error:  # reporting is best effort: the retry is what matters
            log.warning(
                "reconcile_error_unreported",
                rollout=ref.name,
                namespace=ref.namespace,
                error=type(error).__name__,
            )
