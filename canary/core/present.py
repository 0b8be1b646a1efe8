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
        columns += ["ETA", "MESSAGE"]
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
        cells += [step_eta(status, now), status.message]
    return cells


def _waiting_step(status: RolloutStatus) -> StepStatus | None:
    """The weight step still short of the canary requests it needs, if the rollout is at one
    (a pause or an approval waits for time or a person, not for requests)."""
    step = latest_step(status)
    if status.phase != "Progressing" or step is None or step.verdict != "Running":
        return None
    if step.needs is None or step.canary.requests >= step.needs:
        return None
    return step


def step_eta(status: RolloutStatus, now: datetime) -> str:
    """The ETA column: how long until the current step has the canary requests it needs at the
    traffic seen so far (``4m``, ``1h2m (detect)`` when analysis.detect asks for them), ``-``
    when it is not waiting for requests or no rate is known yet."""
    step = _waiting_step(status)
    if step is None or step.eta is None:
        return "-"
    why = " (detect)" if step.needed_for == "detect" else ""
    return age(max(step.eta - now, timedelta(0))) + why


def waiting(status: RolloutStatus, now: datetime | None) -> str:
    """Why the current step waits for requests, in words: ``needs 9300 canary requests for
    analysis.detect (1204 so far), about 12m more`` — or, without ``now``, ``… expected at
    08:12:30Z`` (a line that does not change while nothing else does); "" when it is not
    waiting for them."""
    step = _waiting_step(status)
    if step is None or step.needs is None:
        return ""
    source = "analysis.detect" if step.needed_for == "detect" else "minRequestsPerStep"
    text = f"needs {step.needs} canary requests for {source} ({step.canary.requests} so far)"
    if step.eta is not None and now is not None:
        text += f", about {age(max(step.eta - now, timedelta(0)))} more"
    elif step.eta is not None:
        text += f", expected at {step.eta:%H:%M:%S}Z"
    return text


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


def just_passed(status: RolloutStatus, percentile: float) -> str:
    """While a new step has no canary requests yet, the step before it, when it passed:
    ``step 2 (10%) passed: canary 99.95% ok  p99 80ms  410 req; stable …`` — so a change of
    step does not hide what the previous one measured; "" otherwise."""
    if len(status.steps) < 2 or status.steps[-1].canary.requests > 0:
        return ""
    before = status.steps[-2]
    if before.verdict != "Passed":
        return ""
    weight = "" if before.weight is None else f" ({before.weight}%)"
    figures = (
        f"{arm('canary', before.canary, percentile)}; {arm('stable', before.stable, percentile)}"
    )
    return f"step {before.index + 1}{weight} passed: {figures}"


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
    if passed := just_passed(status, percentile):
        lines.append(passed)
    if status.message:
        lines.append(status.message)
    if needed := waiting(status, now):
        lines.append(needed)
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
    if passed := just_passed(status, percentile):
        parts.append(passed)
    if status.message:
        parts.append(status.message)
    if needed := waiting(status, None):
        parts.append(needed)
    return "  |  ".join(parts)


def exit_code(phase: str) -> int | None:
    """What ``canary watch`` exits with: 0 Succeeded, 1 another finished phase, None while the
    rollout is still going."""
    if phase == "Succeeded":
        return 0
    return 1 if phase in TERMINAL_PHASES else None
