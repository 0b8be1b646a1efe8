"""How rollouts look to a person: kubectl-like tables and ages, the progress bar and the live
view of ``canary watch``.

Called by ``canary.console`` (``canary get`` and ``canary watch``). Pure: values in, text
out; the caller passes ``now`` and prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from canary.model.rollout import Rollout
from canary.model.status import TERMINAL_PHASES, ArmStats, RolloutStatus, StepStatus

_PADDING = 3
_MIN_WIDTH = 6


def age(elapsed: timedelta) -> str:
    """A duration the way kubectl's AGE column shows it: 45s, 5m12s, 42m, 3h5m, 20h, 2d4h, 30d."""
    seconds = int(elapsed.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 10:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours, mins = divmod(minutes, 60)
    if hours < 8:
        return f"{hours}h{mins}m" if mins else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days, hrs = divmod(hours, 24)
    if hours < 24 * 8:
        return f"{days}d{hrs}h" if hrs else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years, rest = divmod(days, 365)
    if years < 8:
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns three spaces apart, like kubectl's tab writer."""
    lines = [list(headers), *[list(r) for r in rows]]
    widths = [
        max(_MIN_WIDTH, max(len(line[i]) for line in lines) + _PADDING) for i in range(len(headers))
    ]
    return "\n".join(
        "".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def headers(*, wide: bool, all_namespaces: bool) -> list[str]:
    """The columns of ``canary get``."""
    columns = ["NAME", "TARGET", "PHASE", "WEIGHT", "STEP", "AGE"]
    if all_namespaces:
        columns.insert(0, "NAMESPACE")
    if wide:
        columns.append("MESSAGE")
    return columns


def step_label(status: RolloutStatus, total: int | None) -> str:
    """Which step a rollout is at, 1-based: ``3/5`` (``3`` when the step count is unknown),
    ``-`` before the first step starts."""
    if not status.steps:
        return "-" if total is None else f"0/{total}"
    current = status.current_step_index + 1
    if total is None:
        return str(current)
    return f"{min(current, total)}/{total}"


def row(
    rollout: Rollout, now: datetime, total: int | None, *, wide: bool, all_namespaces: bool
) -> list[str]:
    """One line of ``canary get``, matching ``headers``."""
    meta, status = rollout.metadata, rollout.status
    created = meta.creation_timestamp
    cells = [
        meta.name,
        f"{rollout.spec.target_ref.kind}/{rollout.spec.target_ref.name}",
        status.phase,
        f"{status.canary_weight}%",
        step_label(status, total),
        age(now - created) if created is not None else "<unknown>",
    ]
    if all_namespaces:
        cells.insert(0, meta.namespace)
    if wide:
        cells.append(status.message)
    return cells


def progress_bar(weight: int, width: int = 20) -> str:
    """``[##########----------]  50%``: the canary's share of traffic."""
    filled = round(width * max(0, min(weight, 100)) / 100)
    return f"[{'#' * filled}{'-' * (width - filled)}] {weight:>3}%"


def arm(name: str, stats: ArmStats, percentile: float) -> str:
    """One arm's figures: ``canary  99.52% ok  p99 120ms  1204 req``."""
    if stats.requests == 0:
        return f"{name}  no requests yet"
    rate = f"{stats.success_rate:.2f}% ok" if stats.success_rate is not None else "-% ok"
    latency = f"{stats.latency_ms:.0f}ms" if stats.latency_ms is not None else "-"
    return f"{name}  {rate}  p{percentile:g} {latency}  {stats.requests} req"


def latest_step(status: RolloutStatus) -> StepStatus | None:
    """The step record being measured now, or the last one measured."""
    return status.steps[-1] if status.steps else None


def _check_lines(step: StepStatus) -> list[str]:
    lines = []
    for check in step.checks:
        figure = "" if check.value is None else f" {check.value:g}"
        limit = "" if check.limit is None else f" (limit {check.limit:g})"
        detail = f" {check.message}" if check.message else ""
        lines.append(f"  {check.verdict:<12} {check.name}{figure}{limit}{detail}")
    return lines


def frame(rollout: Rollout, total: int | None, percentile: float, now: datetime) -> list[str]:
    """The screen of ``canary watch`` on a terminal: header, bar, figures, verdicts."""
    meta, status = rollout.metadata, rollout.status
    since = status.started_at or meta.creation_timestamp
    elapsed = f"  ({age(now - since)})" if since is not None else ""
    target = rollout.spec.target_ref
    lines = [
        f"rollout.canary.dev/{meta.name}  {target.kind}/{target.name}  {status.phase}{elapsed}",
        f"{progress_bar(status.canary_weight)}  step {step_label(status, total)}",
    ]
    step = latest_step(status)
    if step is not None:
        lines.append(arm("canary", step.canary, percentile))
        lines.append(arm("stable", step.stable, percentile))
    if status.message:
        lines.append(status.message)
    if step is not None:
        lines.extend(_check_lines(step))
    return lines


def line(rollout: Rollout, total: int | None, percentile: float) -> str:
    """The one-line summary ``canary watch`` prints per change when stdout is not a terminal."""
    status = rollout.status
    parts = [
        f"{status.phase:<15}",
        f"{progress_bar(status.canary_weight)}  step {step_label(status, total)}",
    ]
    step = latest_step(status)
    if step is not None:
        parts.append(arm("canary", step.canary, percentile))
        parts.append(arm("stable", step.stable, percentile))
    if status.message:
        parts.append(status.message)
    return "  |  ".join(parts)


def exit_code(phase: str) -> int | None:
    """What ``canary watch`` exits with: 0 Succeeded, 1 another finished phase, None while the
    rollout is still going."""
    if phase == "Succeeded":
        return 0
    return 1 if phase in TERMINAL_PHASES else None
