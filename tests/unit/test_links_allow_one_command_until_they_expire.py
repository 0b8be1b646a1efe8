"""Signed chat links allow exactly one command on one Rollout until they expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from canary.core import links

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def _query(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return parts.path, query["expires"][0], query["sig"][0]


def _valid(secret: str, name: str, kind: str, signed: tuple[str, str], now: datetime) -> bool:
    expires, sig = signed
    return links.valid(
        secret, namespace="test", name=name, kind=kind, expires=expires, sig=sig, now=now
    )


def test_a_link_points_at_the_command_endpoint_and_verifies() -> None:
    """The URL is the API path of the command; its signature is valid before it expires."""
    url = links.link(
        "https://canary.example/",
        "s3cret",
        namespace="test",
        name="web-2",
        kind="approve",
        expires=NOW,
    )
    path, expires, sig = _query(url)
    assert url.startswith("https://canary.example/api/v1/namespaces/test/rollouts/web-2/approve?")
    assert path == links.path("test", "web-2", "approve")
    assert _valid("s3cret", "web-2", "approve", (expires, sig), NOW - timedelta(1))


def test_a_link_allows_nothing_else() -> None:
    """Another command, Rollout, key, expiry, or a late or empty key is refused."""
    url = links.link(
        "http://x", "s3cret", namespace="test", name="web-2", kind="approve", expires=NOW
    )
    _, expires, sig = _query(url)
    early = NOW - timedelta(minutes=1)
    assert not _valid("s3cret", "web-2", "abort", (expires, sig), early)
    assert not _valid("s3cret", "web-3", "approve", (expires, sig), early)
    assert not _valid("other", "web-2", "approve", (expires, sig), early)
    assert not _valid("s3cret", "web-2", "approve", (str(int(expires) + 1), sig), early)
    assert not _valid("s3cret", "web-2", "approve", ("soon", sig), early)
    assert not _valid("s3cret", "web-2", "approve", (expires, sig), NOW + timedelta(1))
    assert not _valid("", "web-2", "approve", (expires, sig), early)


def test_an_expiry_that_is_not_ascii_digits_is_refused_not_raised() -> None:
    """'²' and '٣' pass str.isdigit() but are not times: the link is refused, never an error."""
    for expires in ("²", "٣", "1" * 13, "-1", ""):
        assert not _valid("s3cret", "web-2", "approve", (expires, "00"), NOW)
