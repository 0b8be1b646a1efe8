"""The one error the dev environment raises: what went wrong and which log file explains it.

Raised by every module of `devenv`; the CLI prints it and exits non-zero, the pytest fixture
lets it fail the session. It carries no behaviour beyond its message.
"""

from __future__ import annotations

from pathlib import Path


class DevEnvError(Exception):
    """A tool is missing, a build failed, or a component did not become ready."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log = log

    def __str__(self) -> str:
        if self.log is None:
            return self.message
        return f"{self.message}\n  look at: {self.log}"
