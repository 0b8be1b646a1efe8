"""Where the controller remembers the chat messages it keeps up to date: the Slack message of a
Rollout in a channel (its ``ts``) is stored in the Rollout's status (``status.chat.slack``), so
that every later event updates that message in place, also after a restart.

Called by the Slack notifier (through a callable the composition root passes) right after it
posted a message. The write is guarded by resourceVersion and retried on a conflict; a Rollout
deleted or recreated meanwhile (another UID) is left alone. Never raises.
"""

from __future__ import annotations

import structlog

from canary.core import chat
from canary.errors import CanaryError, Conflict
from canary.model.rollout import Rollout
from canary.ports import Ref, RolloutStore

log = structlog.get_logger("canary.messages")


class MessageLedger:
    """Stores posted messages' channel and ts in their Rollouts' status."""

    def __init__(self, store: RolloutStore, attempts: int = 3) -> None:
        self._store, self._attempts = store, attempts

    def remember(self, rollout: Rollout, channel: str, ts: str) -> None:
        """Record that ``rollout``'s message in ``channel`` is ``ts``."""
        ref = Ref(rollout.metadata.namespace, rollout.metadata.name)
        for _ in range(self._attempts):
            try:
                found = self._store.get(ref)
                if found is None or found.metadata.uid != rollout.metadata.uid:
                    return
                self._store.write_status(found, chat.with_message(found.status, channel, ts))
            except Conflict:
                continue
            except CanaryError as error:
                log.warning("slack_message_unremembered", rollout=str(ref), error=str(error))
            return
        log.warning("slack_message_unremembered", rollout=str(ref), error="conflicts")
