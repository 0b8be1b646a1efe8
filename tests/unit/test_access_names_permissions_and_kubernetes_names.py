"""The API's permissions are RBAC permissions on rollouts, and its names Kubernetes names."""

from __future__ import annotations

import pytest

from canary.core import access


def test_commands_need_create_on_their_virtual_subresource() -> None:
    """approve needs create on rollouts/approve in canary.dev; reading needs get and list."""
    assert access.command_permission("approve") == access.Permission(
        "create", "rollouts", "approve", "canary.dev"
    )
    assert (access.READ.verb, access.LIST.verb) == ("get", "list")


@pytest.mark.parametrize(
    ("text", "namespace", "name"),
    [
        ("test", True, True),
        ("web-2.v1", False, True),
        ("..", False, False),
        ("", False, False),
        ("-a", False, False),
        ("A", False, False),
        ("a" * 63, True, True),
        ("a" * 64, False, True),
        ("a" * 254, False, False),
        ("é", False, False),
        ("a/b", False, False),
    ],
)
def test_names_follow_rfc_1123(text: str, namespace: bool, name: bool) -> None:
    """Namespaces are DNS labels, object names DNS subdomains (at most 253 characters)."""
    assert (access.is_namespace(text), access.is_name(text)) == (namespace, name)
