"""Signed chat links point at one command on one Rollout: the link's ticket reads back only
under its key and only for the command and Rollout it names (its expiry, UID, stage and single
use are the ticket's rules: tests/unit/test_chat_tickets_act_once_for_their_stage.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from canary.core import chat, links

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
TICKET = chat.Ticket("test", "web-2", "uid-1", "step-1#0", "approve", int(NOW.timestamp()))


def _ticket(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def test_a_link_points_at_the_command_endpoint_and_verifies() -> None:
    """The URL is the API path of the command; its ticket reads back under the key."""
    url = links.link("https://canary.example/", "s3cret", TICKET)
    assert url.startswith("https://canary.example/api/v1/namespaces/test/rollouts/web-2/approve?t=")
    assert urlsplit(url).path == links.path("test", "web-2", "approve")
    found = links.ticket("s3cret", _ticket(url), namespace="test", name="web-2", kind="approve")
    assert found == TICKET


def test_a_link_allows_nothing_else() -> None:
    """Another command, Rollout or namespace, another key, an empty key or an edit is refused."""
    text = _ticket(links.link("http://x", "s3cret", TICKET))
    where = {"namespace": "test", "name": "web-2", "kind": "approve"}
    assert links.ticket("s3cret", text, **{**where, "kind": "abort"}) is None
    assert links.ticket("s3cret", text, **{**where, "name": "web-3"}) is None
    assert links.ticket("s3cret", text, **{**where, "namespace": "prod"}) is None
    assert links.ticket("other", text, **where) is None
    assert links.ticket("", text, **where) is None
    assert links.ticket("s3cret", "x" + text, **where) is None


def test_a_ticket_that_is_not_ascii_is_refused_not_raised() -> None:
    """'²', '٣', a 13-digit number and junk are refused, never an error."""
    for text in ("²", "٣.00", "1" * 13, "-1", "", "é" * 70 + "." + "0" * 64):
        assert links.ticket("s3cret", text, namespace="test", name="web-2", kind="approve") is None
