"""Charts of a release as inline SVG, drawn here so the dashboard fetches nothing at run time
(air-gapped clusters) and needs no JavaScript to show them.

``timeline`` draws the canary weight over time as a step line; ``paired`` draws one figure per
step for the canary beside the stable (success rate, latency, requests), with an optional limit
line; ``evidence`` draws each check's value against its limit on a log scale. Every chart is an
``<svg role="img">`` with a ``<title>`` and a text description; the release page also shows the
same figures in a table, for screen readers and for copying. Pure: strings in, a string out.
Used by ``canary.api.pages``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

CANARY = "#a34700"
"""The canary's colour: 5.5:1 against white."""
STABLE = "#1f5aa6"
"""The stable's colour: 6.6:1 against white."""
INK = "#222"
GRID = "#d0d0d0"

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 36


@dataclass(frozen=True)
class Check:
    """One check of a step: its name, its value and its limit, and the verdict."""

    name: str
    value: float | None
    limit: float | None
    verdict: str


def _fmt(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 10_000:
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{value:.2g}"


def _open(title: str, description: str, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" class="chart" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>",
    ]


def _legend(x: float) -> str:
    return (
        f'<g font-size="12" fill="{INK}">'
        f'<rect x="{x}" y="2" width="10" height="10" fill="{CANARY}"/>'
        f'<text x="{x + 14}" y="11">canary</text>'
        f'<rect x="{x + 70}" y="2" width="10" height="10" fill="{STABLE}"/>'
        f'<text x="{x + 84}" y="11">stable</text></g>'
    )


def _y_axis(lo: float, hi: float, unit: str, height: int = HEIGHT) -> list[str]:
    parts = []
    plot = height - TOP - BOTTOM
    for i in range(5):
        value = lo + (hi - lo) * i / 4
        y = TOP + plot - plot * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{INK}">{_fmt(value)}{escape(unit)}</text>'
        )
    return parts


def timeline(
    points: Sequence[tuple[datetime, int]], now: datetime, labels: Sequence[tuple[datetime, str]]
) -> str:
    """The canary weight over time: ``points`` are (time, weight from then on), oldest first;
    the line ends at ``now``; ``labels`` mark when steps began."""
    if not points:
        return '<p class="empty">No step has started yet.</p>'
    start = points[0][0]
    span = max((now - start).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + plot_w * min(max((at - start).total_seconds() / span, 0.0), 1.0)

    def y(weight: int) -> float:
        return TOP + plot_h * (1 - weight / 100)

    path = [f"M{x(points[0][0]):.1f},{y(points[0][1]):.1f}"]
    for (_, before), (at, weight) in itertools.pairwise(points):
        path.append(f"L{x(at):.1f},{y(before):.1f} L{x(at):.1f},{y(weight):.1f}")
    path.append(f"L{x(now):.1f},{y(points[-1][1]):.1f}")
    said = ", ".join(f"{w}% at +{(at - start).total_seconds():.0f}s" for at, w in points)
    parts = _open("Canary weight over time", f"Weight changes: {said}.")
    parts += _y_axis(0, 100, "%")
    for at, text in labels:
        parts.append(
            f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" '
            f'stroke="{GRID}" stroke-dasharray="3 3"/>'
            f'<text x="{x(at) + 3:.1f}" y="{TOP + 10}" font-size="11" fill="{INK}" '
            f'class="step-mark">{escape(text)}</text>'
        )
    parts.append(
        f'<path d="{" ".join(path)}" fill="none" stroke="{CANARY}" stroke-width="2.5" '
        'class="weight-line"/>'
    )
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11" fill="{INK}">0s</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" font-size="11" fill="{INK}" '
        f'text-anchor="end">+{span:.0f}s</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def paired(
    title: str,
    steps: Sequence[str],
    canary: Sequence[float | None],
    stable: Sequence[float | None],
    unit: str = "",
    *,
    floor: float | None = None,
    limit: float | None = None,
) -> str:
    """Canary beside stable per step as bars; ``floor`` is the bottom of the scale (default 0,
    so that a success rate can start near its floor), ``limit`` a dashed line."""
    known = [v for v in (*canary, *stable, limit) if v is not None]
    if not known:
        return f'<p class="empty">{escape(title)}: nothing measured yet.</p>'
    lo = min(floor if floor is not None else 0.0, *known)
    hi = max(known)
    hi = hi if hi > lo else lo + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group = plot_w / max(len(steps), 1)
    bar = min(group * 0.35, 40)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - (value - lo) / (hi - lo))

    said = "; ".join(
        f"{step}: canary {_fmt(c) if c is not None else 'n/a'}{unit}, "
        f"stable {_fmt(s) if s is not None else 'n/a'}{unit}"
        for step, c, s in zip(steps, canary, stable, strict=True)
    )
    parts = _open(title, said)
    parts += _y_axis(lo, hi, unit)
    parts.append(_legend(WIDTH - RIGHT - 130))
    for i, (step, c, s) in enumerate(zip(steps, canary, stable, strict=True)):
        middle = LEFT + group * (i + 0.5)
        for offset, value, colour, arm in ((-bar, c, CANARY, "canary"), (0, s, STABLE, "stable")):
            if value is None:
                continue
            top = y(value)
            parts.append(
                f'<rect x="{middle + offset:.1f}" y="{top:.1f}" width="{bar:.1f}" '
                f'height="{max(y(lo) - top, 1):.1f}" fill="{colour}" class="bar {arm}">'
                f"<title>{escape(step)} {arm}: {_fmt(value)}{escape(unit)}</title></rect>"
            )
        parts.append(
            f'<text x="{middle:.1f}" y="{HEIGHT - BOTTOM + 16}" font-size="11" fill="{INK}" '
            f'text-anchor="middle">{escape(step)}</text>'
        )
    if limit is not None:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
            f'stroke="{INK}" stroke-width="1.5" stroke-dasharray="6 4" class="limit"/>'
            f'<text x="{LEFT + 4}" y="{y(limit) - 4:.1f}" font-size="11" fill="{INK}">'
            f"limit {_fmt(limit)}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def evidence(checks: Sequence[Check]) -> str:
    """Each check's value as a share of its limit, on a log scale from 1/100 to 10×, with the
    figures beside it: the dashed line is the limit (the judge's e-values fail at or above it;
    a custom check with a minimum fails below it)."""
    shown = [c for c in checks if c.value is not None and c.limit]
    if not shown:
        return '<p class="empty">The judge has no evidence for this step yet.</p>'
    row = 28
    height = TOP + row * len(shown) + 24
    left, right = 150, 150
    plot_w = WIDTH - left - right

    def x(ratio: float) -> float:
        scaled = (math.log10(min(max(ratio, 0.01), 10.0)) + 2) / 3
        return left + plot_w * scaled

    said = "; ".join(
        f"{c.name} {_fmt(c.value or 0)} against limit {_fmt(c.limit or 0)} ({c.verdict})"
        for c in shown
    )
    parts = _open("The judge's evidence against its limits", said, height)
    for i, check in enumerate(shown):
        assert check.value is not None
        assert check.limit is not None
        top = TOP + i * row
        ratio = abs(check.value / check.limit)
        colour = CANARY if check.verdict == "Fail" else STABLE
        parts.append(
            f'<text x="{left - 6}" y="{top + 15}" font-size="12" fill="{INK}" '
            f'text-anchor="end">{escape(check.name)}</text>'
            f'<rect x="{left}" y="{top + 4}" width="{max(x(ratio) - left, 1):.1f}" height="14" '
            f'fill="{colour}" class="evidence"><title>{escape(check.name)}: '
            f"{_fmt(check.value)} (limit {_fmt(check.limit)}, {escape(check.verdict)})"
            "</title></rect>"
            f'<text x="{WIDTH - right + 8}" y="{top + 15}" font-size="12" fill="{INK}">'
            f"{_fmt(check.value)} / {_fmt(check.limit)} {escape(check.verdict)}</text>"
        )
    limit_x = x(1.0)
    bottom = TOP + row * len(shown)
    parts.append(
        f'<line x1="{limit_x:.1f}" x2="{limit_x:.1f}" y1="{TOP}" y2="{bottom}" stroke="{INK}" '
        f'stroke-width="1.5" stroke-dasharray="6 4" class="limit"/>'
        f'<text x="{left}" y="{bottom + 16}" font-size="11" fill="{INK}">1/100 of the limit</text>'
        f'<text x="{limit_x:.1f}" y="{bottom + 16}" font-size="11" fill="{INK}" '
        f'text-anchor="middle">limit</text>'
        f'<text x="{WIDTH - right}" y="{bottom + 16}" font-size="11" fill="{INK}" '
        f'text-anchor="end">10×</text></svg>'
    )
    return "".join(parts)
