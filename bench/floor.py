"""The theoretical floor of BENCHMARK.md §1: failed requests no sequential test beats on average.

Wald's bound for a sequential test of ``p0`` against ``p1`` with error rates α and β: the expected
number of observations under ``p1`` is at least ``kl(1−β‖α) / KL(p1‖p0)``, and each of them is a
failed request with probability ``p1``. This assumes ``p0`` known; a test that must also learn the
stable's rate from concurrent traffic needs more.
"""

from __future__ import annotations

import math


def bernoulli_kl(p: float, q: float) -> float:
    """``KL(Bernoulli(p) ‖ Bernoulli(q))`` in nats."""
    total = 0.0
    if p > 0:
        total += p * math.log(p / q)
    if p < 1:
        total += (1 - p) * math.log((1 - p) / (1 - q))
    return total


def failed_requests_floor(p0: float, p1: float, alpha: float = 0.05, beta: float = 0.05) -> float:
    """``p1 · kl(1−β‖α) / KL(p1‖p0)``."""
    return p1 * bernoulli_kl(1 - beta, alpha) / bernoulli_kl(p1, p0)
