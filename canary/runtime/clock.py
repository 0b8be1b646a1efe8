"""The wall clock (``ports.Clock``) for the running controller; tests inject their own."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """The system's UTC time."""

    def now(self) -> datetime:
        """Now, timezone-aware UTC."""
        return datetime.now(UTC)
