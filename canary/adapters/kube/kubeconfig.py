"""What the kubeconfig says about the current context: its namespace and user.

Used by the CLI for its ``-n`` default (like kubectl) and to name who gave a command.
Never raises: a missing or unreadable kubeconfig simply says nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import config
from kubernetes.config.config_exception import ConfigException

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _context(kubeconfig: str | None, context: str | None) -> dict[str, Any]:
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except (ConfigException, OSError, ValueError, TypeError):
        return {}
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    return dict((chosen or {}).get("context") or {})


def namespace(kubeconfig: str | None = None, context: str | None = None) -> str:
    """The context's namespace; in a pod, the pod's; else ``default``."""
    found = _context(kubeconfig, context).get("namespace")
    if found:
        return str(found)
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def user(kubeconfig: str | None = None, context: str | None = None) -> str | None:
    """The name of the context's user entry, if there is one."""
    found = _context(kubeconfig, context).get("user")
    return str(found) if found else None
