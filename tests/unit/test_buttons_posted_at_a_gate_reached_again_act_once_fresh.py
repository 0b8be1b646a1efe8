"""A release that reaches the same approval gate again after a retry: the buttons and signed
links posted from the outbox for the new pass act, those posted for the earlier pass do not,
whatever the clock of the person who gave the commands says (a command's 'at' is theirs)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from canary.adapters.notifiers.slack import SlackNotifier
from canary.core import chat, commands, links, outbox, vocabulary
from canary.core.vocabulary import CommandKind, Event
from canary.model.rollout import Rollout
from tests.unit.fake_cluster import make_rollout
from tests.unit.test_reconciler_and_controller_drive_releases import World

KEY = "chat-key"
API = "https://canary.example"


def _world() -> World:
    rollout = make_rollout(
        approvals={"beforePromotion": {"required": True}},
        notifications=[{"type": "slack", "url": "https://hooks.slack.com/services/x"}],
    )
    meta = rollout.metadata.model_copy(update={"uid": "uid-1"})
    return World(rollout=rollout.model_copy(update={"metadata": meta}))


def _stored(world: World) -> Rollout:
    found = world.store.get(world.ref)
    assert found is not None
    return found


def _until(world: World, phase: str) -> Rollout:
    for _ in range(200):
        world.tick()
        if world.phase() == phase:
            return _stored(world)
    raise AssertionError(f"never {phase}; {world.phase()}")


def _give(world: World, kind: CommandKind, skew: timedelta) -> None:
    """``kind`` given by someone whose clock is ``skew`` ahead of the controller's."""
    command = vocabulary.Command(kind, world.clock.now() + skew, actor="ana")
    ((key, value),) = commands.encode(command).items()
    world.store.annotate(world.ref, key, value)


def _posted(world: World) -> tuple[chat.Ticket, chat.Ticket]:
    """The Approve tickets of what the outbox sends for the latest AwaitingApproval event: the
    Slack button (with interactivity) and the signed link (without), as the notifier makes
    them, from the status as the event left it."""
    rollout = _stored(world)
    entry = [e for e in rollout.status.outbox.pending if e.event.reason == "AwaitingApproval"][-1]
    after = rollout.model_copy(update={"status": outbox.as_of(rollout.status, entry)})
    event = Event(entry.event.type, entry.event.reason, entry.event.message)
    clock = world.clock.now
    button = SlackNotifier("", link_secret=KEY, interactive=True, clock=clock).message(after, event)
    values = {e["action_id"]: e["value"] for e in button["blocks"][2]["elements"]}
    pressed = chat.read(KEY, values["canary-approve"])
    linked = SlackNotifier("", api_url=API, link_secret=KEY, clock=clock).message(after, event)
    url = next(e["url"] for e in linked["blocks"][1]["elements"] if "/approve?" in e["url"])
    text = parse_qs(urlsplit(url).query)["t"][0]
    meta = rollout.metadata
    followed = links.ticket(KEY, text, namespace=meta.namespace, name=meta.name, kind="approve")
    assert pressed is not None
    assert followed is not None
    return pressed, followed


@pytest.mark.parametrize("skew", [timedelta(minutes=2), timedelta(0), timedelta(minutes=-2)])
def test_a_gate_reached_again_after_a_retry_takes_its_fresh_buttons_only(
    skew: timedelta,
) -> None:
    """After abort and retry, the second pass's button and link act; the first pass's do not."""
    world = _world()
    _until(world, "WaitingApproval")
    first = _posted(world)
    _give(world, "abort", skew)
    _until(world, "Aborted")
    _give(world, "retry", skew)
    again = _until(world, "WaitingApproval")
    fresh = _posted(world)
    now = world.clock.now()
    for ticket in fresh:
        assert ticket.stage == chat.stage(again.status) == "beforePromotion#2"
        assert chat.refusal(ticket, again, now) is None
    for old in first:
        assert old.stage == "beforePromotion#0"
        refused = chat.refusal(old, again, now) or ""
        assert refused.startswith("already aborted by ana at ")
