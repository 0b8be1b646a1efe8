"""Who may do what through the HTTP API, named as Kubernetes RBAC permissions.

The API asks the cluster (a SubjectAccessReview, through ``ports.AccessReview``) whether the
caller holds the permission an action needs: reading is ``get``/``list`` on ``rollouts``; a
command is ``command_permission(kind)``, the one place that names it, so that RBAC roles and the
API agree. Also the validation of Kubernetes names the API receives. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GROUP = "canary.dev"

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Permission:
    """An RBAC permission: a verb on a resource (and subresource) of an API group."""

    verb: str
    resource: str = "rollouts"
    subresource: str = ""
    group: str = GROUP


READ = Permission("get")
"""Reading one Rollout."""

LIST = Permission("list")
"""Listing the Rollouts of a namespace (or, asked without one, of every namespace)."""

CREATE = Permission("create")
"""Creating a Rollout: a release, and so an undo."""


def command_permission(kind: str) -> Permission:
    """The permission that lets a person give command ``kind`` (approve, promote, abort, retry)
    on a Rollout: ``create`` on the virtual subresource ``rollouts/<kind>``."""
    return Permission("create", subresource=kind)


def is_namespace(text: str) -> bool:
    """Whether ``text`` is a valid namespace name (an RFC 1123 DNS label)."""
    return bool(_LABEL.fullmatch(text))


def is_name(text: str) -> bool:
    """Whether ``text`` is a valid object name (an RFC 1123 DNS subdomain)."""
    return len(text) <= 253 and bool(_SUBDOMAIN.fullmatch(text))
