"""Periodic jobs of the controller (the measuring tick, the resync), on apscheduler.

The only module that imports apscheduler. Jobs never overlap with themselves and a late run is
coalesced rather than repeated, so a slow Prometheus never piles up ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler


class Scheduler:
    """Runs functions every so often in a background thread."""

    def __init__(self) -> None:
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            timezone="UTC",
        )

    def every(self, interval: timedelta, job: Callable[[], object], name: str) -> None:
        """Run ``job`` every ``interval`` (first run after one interval)."""
        self._scheduler.add_job(
            job, "interval", seconds=interval.total_seconds(), id=name, name=name
        )

    def start(self) -> None:
        """Start running the jobs."""
        self._scheduler.start()

    def stop(self) -> None:
        """Stop; jobs that are running finish first."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
