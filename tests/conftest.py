"""What every test shares: logging configured by one test (a benchmark keeps the controller's
logs below critical) is put back after it, so that a later test capturing logs sees them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _structlog_restored() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
