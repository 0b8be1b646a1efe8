"""The ts of a posted Slack message is stored in its Rollout's status, through write conflicts,
and never on another Rollout of the same name."""

from __future__ import annotations

from canary.model.rollout import Rollout
from canary.ports import Ref
from canary.runtime.messages import MessageLedger
from tests.fake_store import MemoryRolloutStore, make

REF = Ref("test", "web-2")


def _with_uid(uid: str) -> Rollout:
    rollout = make("web-2", phase="WaitingApproval")
    return rollout.model_copy(update={"metadata": rollout.metadata.model_copy(update={"uid": uid})})


def _messages(store: MemoryRolloutStore) -> list[tuple[str, str]]:
    found = store.get(REF)
    assert found is not None
    return [(m.channel, m.ts) for m in found.status.chat.slack]


def test_a_posted_message_is_remembered_despite_two_conflicts() -> None:
    """Two lost races are retried; the third write lands."""
    store = MemoryRolloutStore(_with_uid("uid-1"))
    store.conflicts = 2
    MessageLedger(store).remember(_with_uid("uid-1"), "C0RELEASES", "1795248000.000100")
    assert _messages(store) == [("C0RELEASES", "1795248000.000100")]


def test_a_recreated_or_deleted_rollout_is_left_alone_and_endless_conflicts_give_up() -> None:
    """Another UID or no Rollout: nothing written; conflicts beyond the attempts: nothing."""
    store = MemoryRolloutStore(_with_uid("uid-2"))
    MessageLedger(store).remember(_with_uid("uid-1"), "C0RELEASES", "1.1")
    assert _messages(store) == []
    MessageLedger(MemoryRolloutStore()).remember(_with_uid("uid-1"), "C0RELEASES", "1.1")
    store = MemoryRolloutStore(_with_uid("uid-1"))
    store.conflicts = 5
    MessageLedger(store, attempts=3).remember(_with_uid("uid-1"), "C0RELEASES", "1.1")
    assert _messages(store) == []
