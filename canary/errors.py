"""The one exception tree of canary.

Every library's exceptions are translated into these at a single place (the adapter that calls
the library), so the runtime decides what to do from the class alone::

    CanaryError
    ├── ConfigError          the user's objects are wrong: report a status condition, do not retry
    │   └── InvalidSpec          a Rollout/RolloutPolicy that fails validation (has field paths)
    │       └── WriteRefused         the API server refused a write as invalid (400/422: its
    │                                validation, or an admission webhook such as Linkerd's)
    ├── TransientError       the world is briefly unavailable: retry with backoff
    │   ├── ApiUnavailable       the Kubernetes API answered 5xx, timed out, or was unreachable
    │   ├── Conflict             a write lost a resourceVersion race: re-read and decide again
    │   └── MetricsUnavailable   Prometheus unreachable or a query failed (never an SLO breach)
    └── TerminalError        canary itself cannot go on (bad install, missing CRD, no RBAC)

SLO outcomes are values (PASS / FAIL / NO_DATA, see ``canary.core.judge``), never exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass


class CanaryError(Exception):
    """Root of every error canary raises on purpose."""


class ConfigError(CanaryError):
    """The user's configuration is wrong; retrying will not help until they change it."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an object: where (a dotted field path), what, and how to fix it."""

    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{text} ({self.hint})" if self.hint else text


class InvalidSpec(ConfigError):
    """A Rollout or RolloutPolicy fails validation; ``problems`` lists each field at fault."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in problems))


class WriteRefused(InvalidSpec):
    """The API server refused a write as invalid: its own validation (422) or an admission
    webhook's answer (400, such as Linkerd's for a route it could not use). ``problems`` carry
    its reason; the same write fails again until the object (or one it builds on) changes."""


class TransientError(CanaryError):
    """Temporary trouble in the world outside; the same call may succeed after a backoff."""


class ApiUnavailable(TransientError):
    """The Kubernetes API server could not be reached or answered with a server error."""


class Conflict(TransientError):
    """A write raced another writer (resourceVersion mismatch); re-read and decide again."""


class MetricsUnavailable(TransientError):
    """Prometheus could not be queried. Never counted as an SLO breach, never lets a step pass."""


class TerminalError(CanaryError):
    """canary cannot work at all (for example a CRD or a permission is missing)."""
