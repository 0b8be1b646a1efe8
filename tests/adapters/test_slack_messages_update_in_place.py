"""With the Slack app's bot token, a slack notification naming a channel is one message per
Rollout: posted once with chat.postMessage (its ts remembered), then replaced with chat.update
for every later event; without a token it falls back to the incoming-webhook URL. Checked
against a local server playing Slack's Web API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from canary.adapters.notifiers.policy import PolicyNotifier
from canary.adapters.notifiers.slack import SlackWebApi
from canary.core import chat
from canary.core.vocabulary import Event
from canary.model.policy import Notification
from canary.model.rollout import Rollout
from tests.adapters.test_notifiers_post_and_never_raise import NOW, ROLLOUT, WAITING, entries
from tests.slack import FakeSlack

APPROVED = Event("Normal", "Approved", "beforeStart approved by slack:U1 (al) as alice")


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    try:
        yield fake
    finally:
        fake.stop()


def _rollout() -> Rollout:
    return ROLLOUT.model_copy(
        update={"metadata": ROLLOUT.metadata.model_copy(update={"uid": "uid-7"})}
    )


def test_one_message_is_posted_then_updated_in_place(slack: FakeSlack) -> None:
    """The first delivery posts and remembers the ts; later ones update that message, even
    from a read of the Rollout made before the ts reached its status."""
    remembered: list[tuple[str, str, str]] = []
    notifications = [Notification(type="slack", channel="C0RELEASES")]
    courier = PolicyNotifier(
        lambda _: notifications,
        lambda _ns, _ref: None,
        link_secret="k",
        interactive=True,
        clock=lambda: NOW,
        web=SlackWebApi("xoxb-1", base_url=slack.url + "/api/"),
        remember=lambda r, channel, ts: remembered.append((r.metadata.uid or "", channel, ts)),
    )
    rollout = _rollout()
    for event in (WAITING, APPROVED):
        (entry,) = entries(notifications, event)
        assert courier.deliver(rollout, entry).ok
    (posted,) = slack.calls("chat.postMessage")
    assert (posted["channel"], posted["_auth"]) == ("C0RELEASES", "Bearer xoxb-1")
    assert posted["blocks"][2]["elements"][0]["action_id"] == "canary-approve"
    ((uid, channel, ts),) = remembered
    assert (uid, channel) == ("uid-7", "C0RELEASES")
    (updated,) = slack.calls("chat.update")
    assert (updated["channel"], updated["ts"]) == ("C0RELEASES", ts)
    assert "Approved" in updated["text"]

    restarted = PolicyNotifier(
        lambda _: notifications,
        lambda _ns, _ref: None,
        web=SlackWebApi("xoxb-1", base_url=slack.url + "/api/"),
    )
    known = rollout.model_copy(
        update={"status": chat.with_message(rollout.status, "C0RELEASES", ts)}
    )
    (entry,) = entries(notifications, APPROVED)
    assert restarted.deliver(known, entry).ok
    assert len(slack.calls("chat.postMessage")) == 1
    assert [u["ts"] for u in slack.calls("chat.update")] == [ts, ts]


def test_without_a_bot_token_a_channel_falls_back_to_the_url(slack: FakeSlack) -> None:
    """No token: the URL gets the message; a channel alone is a failed delivery, not a crash."""
    with_url = [Notification(type="slack", channel="C0RELEASES", url="https://hooks.invalid/x")]
    courier = PolicyNotifier(
        lambda _: with_url, lambda _ns, _ref: None, web=SlackWebApi(None, base_url=slack.url)
    )
    (entry,) = entries(with_url, WAITING)
    attempt = courier.deliver(_rollout(), entry)
    assert not attempt.ok  # it tried the webhook URL, which does not resolve
    assert slack.received == []
    alone = [Notification(type="slack", channel="C0RELEASES")]
    courier = PolicyNotifier(lambda _: alone, lambda _ns, _ref: None)
    (entry,) = entries(alone, WAITING)
    attempt = courier.deliver(_rollout(), entry)
    assert (attempt.ok, attempt.error) == (
        False,
        "no URL: the Secret could not be read, or no bot token",
    )
