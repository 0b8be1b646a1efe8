"""``canary loadtest``: a small, bounded HTTP load generator for services with too little
organic traffic to judge a canary (run it as a Job beside a release: docs/hooks.md).

Who calls it: ``canary.cli`` only. Sends ``rate`` requests a second for ``duration`` from
``concurrency`` threads, each keeping one connection open, and summarises what came back. Each
request has a due time (start + i/rate), so a slow target makes requests late, never more.
It is a person's (or their Job's) tool, not the controller's: no outbound URL policy applies.
"""

from __future__ import annotations

import http.client
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_RATE = 1000.0
MAX_DURATION = 3600.0
MAX_CONCURRENCY = 64


@dataclass(frozen=True)
class Load:
    """What to send: to ``url``, ``rate`` per second for ``duration`` seconds."""

    url: str
    rate: float
    duration: float
    concurrency: int
    timeout: float = 5.0
    method: str = "GET"

    def problems(self) -> list[str]:
        """What is wrong with the settings (empty: nothing)."""
        found = []
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            found.append("the URL must be http(s)://host[:port]/path")
        if not 0 < self.rate <= MAX_RATE:
            found.append(f"--rate must be above 0 and at most {MAX_RATE:g} per second")
        if not 0 < self.duration <= MAX_DURATION:
            found.append(f"--duration must be above 0 and at most {MAX_DURATION:g}s (1h)")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            found.append(f"--concurrency must be from 1 to {MAX_CONCURRENCY}")
        if not 0 < self.timeout <= 60:
            found.append("--timeout must be above 0 and at most 60s")
        return found


@dataclass
class Tally:
    """What came back: per outcome (HTTP status, or the error's kind) and latencies (ms)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def requests(self) -> int:
        """Requests sent."""
        return sum(self.outcomes.values())

    @property
    def failed(self) -> int:
        """Requests answered 5xx or not answered at all."""
        return sum(n for k, n in self.outcomes.items() if not k.isdigit() or k.startswith("5"))


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (nearest rank) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run(load: Load) -> Tally:
    """Send the load and tally the answers. Blocks for about ``load.duration`` seconds."""
    total = max(1, round(load.rate * load.duration))
    parts = urlsplit(load.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    tally = Tally()
    lock = threading.Lock()
    next_ticket = [0]
    start = time.monotonic()

    def connect() -> http.client.HTTPConnection:
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        return kind(parts.hostname or "", parts.port, timeout=load.timeout)

    def worker() -> None:
        connection = connect()
        while True:
            with lock:
                ticket = next_ticket[0]
                next_ticket[0] += 1
            if ticket >= total:
                break
            delay = start + ticket / load.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.monotonic()
            try:
                connection.request(load.method, target, headers={"User-Agent": "canary-loadtest"})
                response = connection.getresponse()
                response.read()
                outcome = str(response.status)
            except (OSError, http.client.HTTPException) as error:
                outcome = type(error).__name__
                connection.close()
                connection = connect()
            took = (time.monotonic() - sent) * 1000
            with lock:
                tally.outcomes[outcome] += 1
                tally.latencies_ms.append(took)
        connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(load.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally.elapsed = time.monotonic() - start
    return tally


def summary(load: Load, tally: Tally) -> str:
    """A kubectl-like table of the run, and the answers by status."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}ms"

    rate = tally.requests / tally.elapsed if tally.elapsed else 0.0
    header = ("TARGET", "REQUESTS", "RATE", "FAILED", "P50", "P90", "P99")
    row = (
        load.url,
        str(tally.requests),
        f"{rate:.1f}/s",
        f"{tally.failed} ({100 * tally.failed / max(1, tally.requests):.1f}%)",
        ms(percentile(tally.latencies_ms, 50)),
        ms(percentile(tally.latencies_ms, 90)),
        ms(percentile(tally.latencies_ms, 99)),
    )
    widths = [max(len(a), len(b)) for a, b in zip(header, row, strict=True)]
    lines = [
        "   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in (header, row)
    ]
    answers = ", ".join(f"{k}: {n}" for k, n in sorted(tally.outcomes.items()))
    lines.append(f"answers: {answers or 'none'}")
    return "\n".join(lines)
