"""Signed links for chats without interactivity (Slack incoming webhooks, Teams cards): a URL
that opens the page from which a person gives one command to one Rollout.

A link is only a pointer: its query carries a chat ticket (``canary.core.chat``) bound to the
Rollout's UID and the stage of the release it was posted for, signed with the controller's chat
key (a Secret of its own), with an expiry. The HTTP API shows a confirmation page for a valid
ticket; the command itself needs the person's own reviewed token and RBAC permission, and the
ticket acts at most once (its nonce is recorded in status). So a link preview fetching the URL,
or anyone else holding it, never gives the command. Pure.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from canary.core import chat


def path(namespace: str, name: str, kind: str) -> str:
    """The API path of a command on a Rollout."""
    return f"/api/v1/namespaces/{quote(namespace)}/rollouts/{quote(name)}/{quote(kind)}"


def link(base_url: str, key: str, ticket: chat.Ticket) -> str:
    """A URL that gives the ticket's command when followed and confirmed."""
    where = path(ticket.namespace, ticket.name, ticket.kind)
    return f"{base_url.rstrip('/')}{where}?{urlencode({'t': chat.sign(key, ticket)})}"


def ticket(key: str, text: str, *, namespace: str, name: str, kind: str) -> chat.Ticket | None:
    """The ticket of a link followed to ``kind`` on ``namespace/name``; None when it is not
    signed with ``key`` or points elsewhere."""
    found = chat.read(key, text)
    if found is None or (found.namespace, found.name, found.kind) != (namespace, name, kind):
        return None
    return found
