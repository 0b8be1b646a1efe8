"""Turns the evidence measured during a rollout into a verdict: PASS, FAIL, NO_DATA, INCONCLUSIVE.

Called by ``canary.core.machine`` on every evaluation tick with the current step's accumulated
counts (and, in ``Evidence.earlier``, those of the rollout's earlier steps). Pure: it never
queries anything and never raises for an SLO outcome; infrastructure trouble never reaches it
(the machine holds instead of judging when metrics are unavailable).

Every statistical check is an anytime-valid e-value over the whole rollout (see
``canary.core.sequential`` and docs/analysis.md): the canary's error rate and latency against
the stable's, the success-rate floor, the latency ceiling, and whether the canary receives the
traffic routed to it. Their weighted mean is compared with ``1 / false_rollback_rate``: reaching
it is a FAIL at once, at any tick, and the chance of that happening to a canary that is as good as
stable (within the tolerances) and meets its SLOs is at most ``false_rollback_rate`` per rollout.
A step PASSes once it has ``min_requests`` canary requests, the custom checks pass, and no
check *holds*: a check holds while its evidence against the canary is above ``hold_above``, the
current step can still move it, and the step has not yet gathered enough data to tell a
regression of twice the tolerated size from none. Otherwise the step keeps collecting.

For the machine: pass the step's weight in ``Evidence.canary_weight`` and the rollout's earlier
steps in ``Evidence.earlier`` (both from ``status.steps``); without them the judge still works,
but sees only the current step and cannot notice a canary that receives no traffic.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from canary.core import latency, sequential
from canary.model import policy
from canary.model.linkerd import LATENCY_BUCKETS_MS
from canary.model.status import CheckResult, CheckVerdict

ERRORS_WEIGHT = 8.0
"""The error comparison's share of the false-rollback budget, against 1 for every other check."""
DESIGN_KAPPA = 2.0
DESIGN_LATENCY_KAPPA = 1.25
"""The regressions a step must be able to see before it stops holding: twice the tolerated error
rate (or the rate limit), a quarter more slow (or fewer fast) responses than allowed."""
MAX_REPORTED = 1e300
"""E-values beyond this are reported as this (they are far past any threshold anyway)."""
EARLY_SHARE = 0.1
"""The share of the false-rollback budget spent on early looks (:func:`evaluate_early`); the
settled windows get the rest (:func:`settled`)."""


class Verdict(StrEnum):
    """The outcome of judging a step (or one check of it)."""

    PASS = "Pass"
    FAIL = "Fail"
    NO_DATA = "NoData"
    INCONCLUSIVE = "Inconclusive"


@dataclass(frozen=True)
class Arm:
    """Counts measured for one arm over a period: requests, failures, latency histogram
    (requests per Linkerd bucket, not cumulative; empty when unknown)."""

    requests: int = 0
    failures: int = 0
    buckets: tuple[int, ...] = ()

    def __add__(self, other: Arm) -> Arm:
        mine, theirs = self.buckets, other.buckets
        if len(mine) == len(theirs) and not (other.requests or other.failures or any(theirs)):
            return self  # adding nothing (most ticks between two scrapes)
        if len(mine) != len(theirs):  # an unknown histogram counts as zeros
            width = max(len(mine), len(theirs))
            mine += (0,) * (width - len(mine))
            theirs += (0,) * (width - len(theirs))
        return Arm(
            requests=self.requests + other.requests,
            failures=self.failures + other.failures,
            buckets=tuple(map(operator.add, mine, theirs)),
        )


@dataclass(frozen=True)
class Thresholds:
    """The analysis settings the judge applies (defaults already filled in by the plan).

    ``error_rate_tolerance`` and ``latency_tolerance`` are ratios: 0.2 lets the canary be 20%
    worse than stable before the comparison counts it as a regression."""

    min_requests: int
    min_requests_scaled: bool = False
    """Whether ``min_requests`` is for 100% weight, a step needing its share of it
    (``canary.core.power.step_minimum``): the default when ``minRequestsPerStep`` is unset."""
    success_rate_min: float | None = None
    latency_percentile: float = policy.DEFAULT_LATENCY_PERCENTILE
    latency_max_ms: float | None = None
    custom: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    compare_with_stable: bool = True
    false_rollback_rate: float = policy.DEFAULT_FALSE_ROLLBACK_RATE
    error_rate_tolerance: float = policy.DEFAULT_ERROR_RATE_TOLERANCE
    latency_tolerance: float = policy.DEFAULT_LATENCY_TOLERANCE
    hold_above: float = policy.DEFAULT_HOLD_ABOVE
    detect_error_ratio: float | None = None
    """``analysis.detect.errorRatio``: the error regression the last shared step must be able
    to catch (``canary.core.power``); None when not asked for."""
    detect_power: float = policy.DEFAULT_DETECT_POWER


@dataclass(frozen=True)
class Evidence:
    """What was measured in a step: both arms' accumulated counts, the latest value of each
    custom metric (None when its query returned nothing), the canary's route weight in percent
    during the step (None when unknown), and the same for the rollout's earlier steps, oldest
    first (their own ``earlier`` is ignored)."""

    canary: Arm
    stable: Arm
    custom: Mapping[str, float | None] = field(default_factory=dict)
    canary_weight: float | None = None
    earlier: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class Judgement:
    """A verdict and the individual checks that produced it."""

    verdict: Verdict
    checks: tuple[CheckResult, ...]
    reason: str


@dataclass(frozen=True)
class _Sequential:
    name: str
    log_e: float
    weight: float
    message: str
    moving: bool = True
    """Whether the current step adds to this check (a check that cannot move does not hold)."""
    information: float = 0.0
    """What the current step's data could tell a design-size regression apart by (nats)."""
    comparison: bool = False
    """A comparison with stable (these are e-detectors, see ``_change_points``)."""
    whole_log_e: float | None = None
    """The log e-value of the check over the whole rollout, before the change-point mixture:
    what holding looks at (None: ``log_e`` is that)."""


def success_rate(arm: Arm) -> float | None:
    """Percent of requests that succeeded, or None without requests."""
    if arm.requests <= 0:
        return None
    return 100.0 * (arm.requests - min(arm.failures, arm.requests)) / arm.requests


def percentile_ms(buckets: Sequence[int], percentile: float) -> float | None:
    """The percentile of a Linkerd latency histogram, interpolated linearly inside the bucket
    as Prometheus' ``histogram_quantile`` does; None for an empty histogram. A percentile in
    the ``+Inf`` bucket reports the highest finite bound."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = percentile / 100.0 * total
    seen = 0.0
    lower = 0.0
    for count, upper in zip(buckets, LATENCY_BUCKETS_MS, strict=False):
        if count and seen + count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = upper
    return lower


def _e(log_e: float) -> float:
    return min(math.exp(min(log_e, 700.0)), MAX_REPORTED)


def _failures(arm: Arm) -> int:
    return min(max(arm.failures, 0), arm.requests)


def _share(canary: int, stable: int) -> float:
    total = canary + stable
    return canary / total if total > 0 else 0.0


def _comparing(step: Evidence) -> bool:
    """Whether the step can still add to a comparison: at full weight the stable's few requests
    are leftovers from before the route changed."""
    return step.canary_weight is None or step.canary_weight < 100.0


def _errors(t: Thresholds, steps: Sequence[Evidence]) -> _Sequential:
    triples = [
        (_failures(s.canary), _failures(s.stable), _share(s.canary.requests, s.stable.requests))
        for s in steps
    ]
    rho0 = 1.0 + t.error_rate_tolerance
    log_e = sequential.comparison_log_e(triples, rho0, sequential.ERROR_MIXTURE)
    now = steps[-1]
    message = (
        f"canary {_failures(now.canary)}/{now.canary.requests} failed, "
        f"stable {_failures(now.stable)}/{now.stable.requests} this step; "
        f"tolerance {t.error_rate_tolerance:g}"
    )
    moving = _comparing(now) and now.canary.requests > 0 and now.stable.requests > 0
    events, share = triples[-1][0] + triples[-1][1], triples[-1][2]
    information = sequential.comparison_information(events, share, rho0, DESIGN_KAPPA)
    return _Sequential(
        "errors-vs-stable", log_e, ERRORS_WEIGHT, message, moving, information, comparison=True
    )


def _latency_band(t: Thresholds, steps: Sequence[Evidence], band: latency.Band) -> _Sequential:
    slow: list[tuple[int, int, float]] = []
    fast: list[tuple[int, int, float]] = []
    message = "no stable histogram to compare with yet"
    counts: latency.SlowCounts | None = None
    for step in steps:
        counts = latency.slow_counts(
            step.canary.buckets, step.stable.buckets, band, t.latency_tolerance
        )
        if counts is None:
            continue
        (fast if counts.fast else slow).append(
            (counts.canary_events, counts.stable_events, counts.share)
        )
        word = "at most" if counts.fast else "above"
        message = (
            f"canary {counts.canary_events}/{counts.canary_total} {word} "
            f"{counts.canary_bound_ms:g} ms, stable {counts.stable_events}/{counts.stable_total} "
            f"{word} {counts.stable_bound_ms:g} ms; tolerance {t.latency_tolerance:g}"
        )
    log_e = sequential.comparison_log_e(slow, 1.0, sequential.SLOW_MIXTURE) + (
        sequential.comparison_log_e(fast, 1.0, sequential.FAST_MIXTURE)
    )
    information = 0.0
    if counts is not None:
        kappa = 1.0 / DESIGN_LATENCY_KAPPA if counts.fast else DESIGN_LATENCY_KAPPA
        events = counts.canary_events + counts.stable_events
        information = sequential.comparison_information(events, counts.share, 1.0, kappa)
    moving = _comparing(steps[-1]) and counts is not None
    return _Sequential(band.name, log_e, 1.0, message, moving, information, comparison=True)


def _slo(
    name: str,
    steps: Sequence[Evidence],
    limit: float,
    count: Callable[[Arm], tuple[int, int]],
) -> tuple[float, float, str]:
    """Log e-value that the canary breaks an absolute limit on the rate of some event, less the
    evidence that the stable breaks it too over the same recent steps (a breach both arms share
    — a failing dependency — is not the release's doing). Returns the log e-value, the current
    step's information and a note.

    Only steps shared with the stable count (a rollout without one counts every step): at full
    weight no stable traffic is left to show that a burst of failures is shared, and a flapping
    dependency would roll healthy releases back. The stable's evidence is the largest over the
    runs of steps ending now (the steps since step ``j``, for every ``j``), so a dependency that
    fails only during the latest steps, where the canary has most of its requests, is matched by
    the stable's evidence over those steps and not diluted by its earlier, quiet ones. Dividing
    the canary's e-value by any number of at least 1 only lowers it, so the guarantee holds."""
    shared = [s for s in steps if _comparing(s)] or list(steps)
    canary = [count(s.canary) for s in shared]
    stable = [count(s.stable) for s in shared]
    log_c = sequential.rate_log_e(sum(e for e, _ in canary), sum(n for _, n in canary), limit)
    log_s = max(
        sequential.rate_log_e(sum(e for e, _ in stable[j:]), sum(n for _, n in stable[j:]), limit)
        for j in range(len(stable))
    )
    information = sequential.rate_information(count(steps[-1].canary)[1], limit, DESIGN_KAPPA)
    note = "; stable breaches it too" if log_s > 0 else ""
    return log_c - max(log_s, 0.0), information, note


def _slo_moving(steps: Sequence[Evidence]) -> bool:
    """Whether the current step adds to an absolute check (see ``_slo``: a full-weight step
    after shared ones does not)."""
    return _comparing(steps[-1]) or not any(_comparing(s) for s in steps)


def _success_floor(steps: Sequence[Evidence], floor: float) -> _Sequential:
    def count(arm: Arm) -> tuple[int, int]:
        return _failures(arm), max(arm.requests, 0)

    log_e, information, note = _slo("success-rate", steps, 1.0 - floor / 100.0, count)
    failed = sum(_failures(s.canary) for s in steps)
    served = sum(max(s.canary.requests, 0) for s in steps)
    rate = success_rate(Arm(served, failed))
    shown = "n/a" if rate is None else f"{rate:.2f}%"
    message = f"canary {shown} of {served} requests; floor {floor:g}%{note}"
    moving = _slo_moving(steps)
    return _Sequential("success-rate", log_e, 1.0, message, moving, information)


def _latency_ceiling(t: Thresholds, steps: Sequence[Evidence], ceiling: float) -> _Sequential:
    def count(arm: Arm) -> tuple[int, int]:
        return latency.count_above(arm.buckets, ceiling), sum(arm.buckets)

    limit = 1.0 - t.latency_percentile / 100.0
    log_e, information, note = _slo("latency", steps, limit, count)
    slow = sum(latency.count_above(s.canary.buckets, ceiling) for s in steps)
    seen = sum(sum(s.canary.buckets) for s in steps)
    p = percentile_ms(steps[-1].canary.buckets, t.latency_percentile)
    shown = "n/a" if p is None else f"{p:.0f} ms"
    message = (
        f"p{t.latency_percentile:g} {shown} this step; {slow}/{seen} canary requests "
        f"above {ceiling:g} ms{note}"
    )
    return _Sequential("latency", log_e, 1.0, message, _slo_moving(steps), information)


def _traffic_share(steps: Sequence[Evidence]) -> _Sequential:
    triples = [
        (s.canary.requests, s.stable.requests, s.canary_weight / 100.0)
        for s in steps
        if s.canary_weight is not None
    ]
    now = steps[-1]
    message = (
        f"canary received {now.canary.requests} of "
        f"{now.canary.requests + now.stable.requests} requests at weight {now.canary_weight}%"
    )
    return _Sequential("traffic-share", sequential.share_log_e(triples), 1.0, message)


def _sequential_checks(t: Thresholds, steps: Sequence[Evidence]) -> list[_Sequential]:
    makers: list[Callable[[], _Sequential]] = []
    if t.compare_with_stable:
        makers.append(lambda: _errors(t, steps))
        makers.append(lambda: _latency_band(t, steps, latency.MEDIAN))
        makers.append(lambda: _latency_band(t, steps, latency.TAIL))
    if t.success_rate_min is not None:
        floor = t.success_rate_min
        makers.append(lambda: _success_floor(steps, floor))
    if t.latency_max_ms is not None:
        ceiling = t.latency_max_ms
        makers.append(lambda: _latency_ceiling(t, steps, ceiling))
    if steps[-1].canary_weight is not None:
        makers.append(lambda: _traffic_share(steps))
    return [make() for make in makers]


def _change_points(t: Thresholds, steps: Sequence[Evidence]) -> list[_Sequential]:
    """The sequential checks as e-detectors: each check's e-value mixes the check run on the
    whole rollout with the check restarted at each later step (``sequential.change_point_log_e``).
    Messages, holding and information are those of the whole rollout's check.

    Only the comparisons with stable restart: they condition on the events both arms saw, so a
    failure both share (a flapping dependency) is no evidence. The absolute SLO checks keep the
    whole rollout's evidence: restarted at the 100% step, where no stable traffic is left to
    show that a burst of failures is shared, they would roll back healthy releases more often."""
    found = _sequential_checks(t, steps)
    restarted = [_sequential_checks(t, steps[j:]) for j in range(1, len(steps))]
    mixed = [
        replace(
            s,
            log_e=sequential.change_point_log_e([s.log_e, *(r[i].log_e for r in restarted)]),
            whole_log_e=s.log_e,
        )
        if s.comparison
        else s
        for i, s in enumerate(found)
    ]
    return _no_worse_than_stable(mixed, steps)


CAPPED_BY: Mapping[str, tuple[tuple[str, ...], Callable[[Arm], int]]] = {
    "success-rate": (("errors-vs-stable",), lambda arm: arm.requests),
    "latency": ((latency.MEDIAN.name, latency.TAIL.name), lambda arm: sum(arm.buckets)),
}
"""Each absolute SLO check: the comparisons with stable on the same measure, and what the stable
must have served on a shared step for them to say anything (requests, timed requests)."""


def _no_worse_than_stable(
    found: Sequence[_Sequential], steps: Sequence[Evidence]
) -> list[_Sequential]:
    """Caps each absolute SLO check at the evidence that the canary is worse than the stable on
    the same measure (the mean of those comparisons' e-values), when the rollout compares with
    stable and the stable was measured on a step shared with the canary (without that, nothing
    tells a breach both arms share from the release's, and the canary is held to its SLOs
    alone, see ``_slo``).

    Rolling back for an SLO breach is meant for a breach that is the release's doing; on a
    service whose stable breaks the floor too (a noisy service, a failing dependency) a canary
    no worse than the stable is not rolled back. Subtracting the stable's evidence (``_slo``)
    does not guarantee that: the two arms' evidence against the floor both grow with their
    requests, and their difference swings by more than the bar (the benchmark's S9-92%-healthy,
    an 8% failure rate on both arms against a 99% floor, rolled back 4.2% of healthy releases).
    The minimum of the SLO's e-value and the comparisons' is an e-value under either null —
    "the canary meets the SLO" or "the canary is no worse than the stable" — so the bound holds
    for a canary that satisfies either, and a canary is rolled back on this check only on
    evidence of both."""
    by_name = {s.name: s for s in found}
    out: list[_Sequential] = []
    for check in found:
        if check.name not in CAPPED_BY:
            out.append(check)
            continue
        names, served = CAPPED_BY[check.name]
        peers = [by_name[n] for n in names if n in by_name]
        worse = sequential.log_mean_exp([p.log_e for p in peers]) if peers else math.inf
        measured = any(_comparing(step) and served(step.stable) > 0 for step in steps)
        if worse < check.log_e and measured:
            note = f"; {NO_WORSE}" if check.log_e > 0.0 else ""
            check = replace(check, log_e=worse, message=check.message + note)  # noqa: PLW2901
        out.append(check)
    return out


NO_WORSE = "counted only as far as the canary is worse than the stable"


def errors_limit(thresholds: Thresholds) -> float:
    """The e-value at which the error comparison alone fails a settled window: the ``limit`` its
    check reports, for a step that shares traffic with the stable."""
    t = settled(thresholds)
    found = _sequential_checks(t, [Evidence(Arm(), Arm(), canary_weight=50.0)])
    total = sum(s.weight for s in found)
    return total / (ERRORS_WEIGHT * t.false_rollback_rate)


def settled(thresholds: Thresholds) -> Thresholds:
    """The thresholds for the settled windows when early looks (:func:`evaluate_early`) take
    ``EARLY_SHARE`` of the false-rollback budget: together they keep ``false_rollback_rate``."""
    rate = thresholds.false_rollback_rate * (1.0 - EARLY_SHARE)
    return replace(thresholds, false_rollback_rate=rate)


def early_rate(thresholds: Thresholds, step: int) -> float:
    """The false-rollback rate an early look at step ``step`` (0-based) may spend: step ``k``
    gets ``EARLY_SHARE·w_k`` of the budget, ``w_k`` the change-point weights (½, ¼, ⅛…), whose
    sum stays below 1 — so all early looks of a rollout together stay below
    ``EARLY_SHARE·false_rollback_rate`` (0.1% at the default 1%)."""
    weight = sequential.change_point_weight(step)
    return thresholds.false_rollback_rate * EARLY_SHARE * weight


def evaluate_early(thresholds: Thresholds, counts: Evidence, step: int) -> Judgement | None:
    """A fail-only look at the counts a step has served since its weight changed, before they
    make a settled window (during the settle time, on windows shorter than a scrape interval):
    a FAIL when they alone are enough evidence against the canary, else None.

    The counts may include a little traffic from before the weight change and from pods
    scraped at different moments; the comparisons with stable condition on the requests each
    arm actually served, so stay valid, and the absolute checks subtract what stable shows
    too. The look is an e-process over this step's counts only, with its own budget
    (:func:`early_rate`); custom metrics, ``minRequestsPerStep`` and the traffic share play no
    part, and a step at full weight, with no stable traffic left to compare with, is not looked
    at early. Nor, when the Rollout compares with stable, are counts without the stable's
    requests (its pods not scraped yet since the weight changed: Prometheus scrapes each pod at
    its own moment): the absolute checks would judge the canary alone, and on a service whose
    stable breaks them too (8% failures against a 99% floor) roll back a canary no worse than
    it (7.2% of such healthy releases on the twin with staggered scrapes)."""
    weight = counts.canary_weight
    if weight is None or not 0.0 < weight < 100.0 or counts.canary.requests <= 0:
        return None
    if thresholds.compare_with_stable and counts.stable.requests <= 0:
        return None  # nothing yet tells a breach both arms share from the release's
    rate = early_rate(thresholds, step)
    # No weight is passed on, so the traffic-share check stays out: counts since the weight
    # changed hold traffic split the old way while the mesh takes up the new weights (seconds;
    # the settle time covers it), which that check would read as a canary receiving too little.
    found = evaluate(
        replace(thresholds, false_rollback_rate=rate, custom={}),
        Evidence(counts.canary, counts.stable),
    )
    if found.verdict is not Verdict.FAIL:
        return None
    return replace(found, reason=f"early look: {found.reason}")


def _point_check(name: str, value: float | None, lo: float | None, hi: float | None) -> CheckResult:
    if value is None or math.isnan(value):
        return CheckResult(name=name, verdict="NoData", message="no data")
    if lo is not None and value < lo:
        return CheckResult(name=name, verdict="Fail", value=value, limit=lo, message="below min")
    if hi is not None and value > hi:
        return CheckResult(name=name, verdict="Fail", value=value, limit=hi, message="above max")
    limit = lo if lo is not None else hi
    return CheckResult(name=name, verdict="Pass", value=value, limit=limit, message=_within(lo, hi))


def _within(lo: float | None, hi: float | None) -> str:
    """A passing custom check's message: the bounds its value is within."""
    if lo is not None and hi is not None:
        return f"within {lo:g} to {hi:g}"
    if lo is not None:
        return f"at least {lo:g}"
    return "no bound" if hi is None else f"at most {hi:g}"


def evaluate(thresholds: Thresholds, evidence: Evidence) -> Judgement:
    """Judge the current step from the rollout's evidence so far.

    FAIL as soon as the combined evidence against the canary reaches ``1/false_rollback_rate``
    (or a custom metric is out of bounds once the step has its minimum requests); NO_DATA while
    the canary has served nothing; INCONCLUSIVE until ``min_requests`` and while any check's
    evidence is above ``hold_above``; PASS otherwise."""
    t = thresholds
    steps = (*evidence.earlier, evidence)
    found = _change_points(t, steps)
    total = sum(s.weight for s in found)
    limit = 1.0 / t.false_rollback_rate
    checks: list[CheckResult] = []
    hold = t.hold_above
    for s in found:
        own_limit = limit * total / s.weight
        e = _e(s.log_e)
        whole = e if s.whole_log_e is None else _e(s.whole_log_e)
        holding = s.moving and whole > hold and s.information < math.log(own_limit)
        verdict: CheckVerdict = "Fail" if e >= own_limit else "Inconclusive" if holding else "Pass"
        checks.append(
            CheckResult(
                name=s.name,
                verdict=verdict,
                value=e,
                limit=own_limit,
                message=f"{s.message}; e-value {e:.3g} (fails at {own_limit:.3g})",
            )
        )
    combined = (
        sequential.log_mean_exp([s.log_e + math.log(s.weight * len(found) / total) for s in found])
        if found
        else 0.0
    )
    if found and combined >= math.log(limit):
        worst = max(found, key=lambda s: s.log_e + math.log(s.weight))
        reason = (
            f"evidence against the canary {_e(combined):.3g} ≥ {limit:g} "
            f"(mostly {worst.name}: {worst.message})"
        )
        return Judgement(Verdict.FAIL, tuple(checks), reason)
    canary = evidence.canary
    if canary.requests <= 0:
        return Judgement(Verdict.NO_DATA, tuple(checks), "no canary requests yet")
    for name, (lo, hi) in sorted(t.custom.items()):
        checks.append(_point_check(name, evidence.custom.get(name), lo, hi))
    if canary.requests < t.min_requests:
        reason = f"{canary.requests}/{t.min_requests} canary requests so far"
        return Judgement(Verdict.INCONCLUSIVE, tuple(checks), reason)
    failed = [c.name for c in checks if c.verdict == "Fail"]
    if failed:
        return Judgement(Verdict.FAIL, tuple(checks), "failed: " + ", ".join(failed))
    if any(c.verdict == "NoData" for c in checks):
        return Judgement(Verdict.NO_DATA, tuple(checks), "a check has no data")
    held = [c.name for c in checks if c.verdict == "Inconclusive"]
    if held:
        reason = f"holding: evidence against the canary above {hold:.3g} in " + ", ".join(held)
        return Judgement(Verdict.INCONCLUSIVE, tuple(checks), reason)
    return Judgement(Verdict.PASS, tuple(checks), "every check passed")
