"""A tiny Prometheus registry: counters with labels, and the text exposition format.

The composition root makes one ``Registry`` and hands counters' ``inc`` to whoever counts (the
reconciler counts reconciles and errors); ``canary.api.server`` renders it at ``/metrics``
together with gauges computed at scrape time. Thread-safe. No dependency on
``prometheus_client``: canary exposes a handful of series, and the format is a few lines.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class Family:
    """One metric family at one moment: name, type, help, and samples by label set."""

    name: str
    type: str
    help: str
    samples: tuple[tuple[Mapping[str, str], float], ...]

    def render(self) -> str:
        """The family in the Prometheus text format (version 0.0.4)."""
        lines = [
            f"# HELP {self.name} {self.help.replace(chr(92), chr(92) * 2).replace(chr(10), ' ')}",
            f"# TYPE {self.name} {self.type}",
        ]
        lines += [f"{self.name}{_labels(labels)} {_number(v)}" for labels, v in self.samples]
        return "\n".join(lines) + "\n"


class Counter:
    """A monotonically increasing count per label set."""

    def __init__(self, name: str, help: str) -> None:
        self.name, self.help = name, help
        self._values: dict[tuple[tuple[str, str], ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` (default 1) to the series of ``labels``."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        """The current count of ``labels``."""
        with self._lock:
            return self._values.get(tuple(sorted(labels.items())), 0.0)

    def collect(self) -> Family:
        """The counter as a family (a counter never touched shows 0)."""
        with self._lock:
            samples = tuple((dict(k), v) for k, v in sorted(self._values.items()))
        return Family(self.name, "counter", self.help, samples or (({}, 0.0),))


class Registry:
    """The counters canary exposes."""

    def __init__(self) -> None:
        self.reconciles = Counter("canary_reconcile_total", "Reconciles run.")
        self.reconcile_errors = Counter(
            "canary_reconcile_errors_total", "Reconciles that ended in an error, by error class."
        )
        self.commands = Counter(
            "canary_api_commands_total", "Commands given through the HTTP API, by kind."
        )

    def collect(self) -> list[Family]:
        """Every counter's family."""
        return [c.collect() for c in (self.reconciles, self.reconcile_errors, self.commands)]


def render(families: Iterable[Family]) -> str:
    """The exposition of ``families``."""
    return "".join(f.render() for f in families)
