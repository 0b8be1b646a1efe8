"""Renders docs/benchmarks.md from a run of ``bench.gates``: command, machine, date, table,
scenarios with their theoretical floors, and the targets of BENCHMARK.md §1 checked."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Protocol

from bench import late_regression_cost
from bench.scenarios import BY_KEY, Scenario
from bench.world import SCRAPE_INTERVAL_S


class Run(Protocol):
    """What the report reads from one run."""

    @property
    def result(self) -> str: ...

    @property
    def ended_s(self) -> float: ...

    @property
    def full_s(self) -> float | None: ...

    @property
    def failed(self) -> int: ...


Results = Mapping[tuple[str, str], Sequence[Run]]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _show(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.1f}{unit}"


def _power_and_healthy(results: Results, keys: set[str]) -> list[str]:
    """The power targets (2× caught, with and without detect) and the healthy ones at low
    traffic and under a flapping dependency."""
    lines: list[str] = []

    def runs(key: str, gate: str) -> Sequence[Run]:
        return results.get((key, gate), ())

    for key in sorted(k for k in keys if k.startswith("S3-2x")):
        for gate, label in (("ours", ""), ("ours-detect", " with detect {2, 0.95}")):
            all_runs = runs(key, gate)
            if all_runs:
                caught = _rate(all_runs)
                lines.append(
                    f"- {key} caught in ≥ 95%{label}: {100 * caught:.1f}% → {_ok(caught >= 0.95)}"
                )
    for key in sorted(k for k in keys if k != "S1" and k in BY_KEY and not BY_KEY[k].bad):
        lines += _healthy(key, runs(key, "ours"), runs(key, "ours-detect"))
    return lines


def _rate(runs: Sequence[Run]) -> float:
    return sum(r.result == "rolled_back" for r in runs) / len(runs)


def _healthy(key: str, ours: Sequence[Run], detect: Sequence[Run]) -> list[str]:
    """The default policy's false rollbacks on one healthy scenario (a target), and detect's
    (reported: an opt-in setting)."""
    if not ours:
        return []
    rate = _rate(ours)
    full = _median([r.full_s for r in ours if r.full_s is not None])
    line = (
        f"- {key}: false rollbacks ≤ 1%: {100 * rate:.2f}% → {_ok(rate <= 0.01)}; "
        f"median time to 100% {_show(full, ' s')}"
    )
    if detect:
        line += f" (with detect {{2, 0.95}}: {100 * _rate(detect):.2f}%)"
    return [line]


def healthy_match(scenario: Scenario, scenarios: Sequence[Scenario]) -> Scenario | None:
    """The healthy scenario on the same service as ``scenario`` (same stable, same traffic, no
    flapping dependency, bad stable pod or swing): where a gate's false rollbacks are weighed
    against what it catches. None when the run has none."""
    for other in scenarios:
        plain = other.flap is None and other.bad_stable_pod is None and other.swing is None
        same = other.stable == scenario.stable and other.rps == scenario.rps
        if not other.bad and plain and same:
            return other
    return None


def _failed(runs: Sequence[Run]) -> tuple[float, float]:
    """Median and 95th percentile of the failed requests over every run, a missed regression
    counting as the worst (infinite): promoted, it fails its users' requests from then on, so
    stopping its count at the promotion would reward a gate for missing."""
    values = sorted(float(r.failed) if r.result == "rolled_back" else math.inf for r in runs)
    return statistics.median(values), values[min(len(values) - 1, int(0.95 * len(values)))]


def _count(value: float) -> str:
    return "missed" if math.isinf(value) else f"{value:g}"


def dominance(
    results: Results, scenarios: Sequence[Scenario], baselines: Mapping[str, str]
) -> list[str]:
    """Issue 15's dominance target: on every bad scenario ours serves no more failed requests
    (median and p95 over every run, a missed regression the worst) than any baseline whose
    false-rollback rate on the healthy scenario of the same service is no higher than ours. A
    bad scenario without a healthy one on its service is weighed on S1."""
    lines: list[str] = []
    fallback = next((s for s in scenarios if s.key == "S1"), None)
    for scenario in scenarios:
        ours = results.get((scenario.key, "ours"), ())
        healthy = healthy_match(scenario, scenarios) or fallback
        if not scenario.bad or not ours or healthy is None:
            continue
        safe_ours = results.get((healthy.key, "ours"), ())
        if not safe_ours:
            continue
        limit = _rate(safe_ours)
        mine = _failed(ours)
        rivals: list[str] = []
        met = True
        for gate, name in baselines.items():
            theirs, safe = (
                results.get((scenario.key, gate), ()),
                results.get((healthy.key, gate), ()),
            )
            if not theirs or not safe or _rate(safe) > limit:
                continue
            other = _failed(theirs)
            met = met and mine[0] <= other[0] and mine[1] <= other[1]
            rivals.append(f"{name} {_count(other[0])} / {_count(other[1])}")
        against = "; ".join(rivals) if rivals else "no baseline is"
        lines.append(
            f"- {scenario.key}: no more failed requests (median / p95, every run, a miss the "
            "worst) than a "
            f"baseline as safe on {healthy.key} (false rollbacks ≤ ours, "
            f"{100 * limit:.1f}%): ours {_count(mine[0])} / {_count(mine[1])}; {against} → "
            f"{_ok(met)}"
        )
    return lines


def targets(
    results: Results, scenarios: Sequence[Scenario], baselines: Mapping[str, str] | None = None
) -> list[str]:
    """One line per target of issue 15 (which supersedes BENCHMARK.md §1's) that this run can
    check, with the figure; ``baselines`` (gate key: name) are the gates the dominance target
    weighs ours against. BENCHMARK.md §1's "≥ 5× fewer failed requests than Flagger-style"
    follows, as a figure."""
    keys = {s.key for s in scenarios}
    lines: list[str] = []

    def runs(key: str, gate: str) -> Sequence[Run]:
        return results.get((key, gate), ())

    if "S1" in keys and runs("S1", "ours"):
        s1 = runs("S1", "ours")
        rate = _rate(s1)
        lines.append(f"- False rollbacks on S1 ≤ 1%: {100 * rate:.2f}% → {_ok(rate <= 0.01)}")
        ours = _median([r.full_s for r in s1 if r.full_s is not None])
        flagger = _median([r.full_s for r in runs("S1", "flagger") if r.full_s is not None])
        if ours is not None and flagger is not None:
            lines.append(
                f"- Healthy release at 100% no later than Flagger-style (median): ours "
                f"{ours:.0f} s, Flagger-style {flagger:.0f} s → {_ok(ours <= flagger)}"
            )
    for key in sorted(k for k in keys if k.startswith("S3-20x")):
        rolled = [r for r in runs(key, "ours") if r.result == "rolled_back"]
        failed = _median([r.failed for r in rolled])
        seconds = _median([r.ended_s for r in rolled])
        met = failed is not None and seconds is not None and failed <= 5 and seconds <= 30
        lines.append(
            f"- {key} rolled back with median ≤ 5 failed requests and ≤ 30 s: "
            f"{_show(failed)} failed, {_show(seconds, ' s')} → {_ok(met)}"
        )
    if "S2-errors" in keys and runs("S2-errors", "ours"):
        rolled = [r for r in runs("S2-errors", "ours") if r.result == "rolled_back"]
        failed = _median([r.failed for r in rolled])
        lines.append(
            f"- S2-errors rolled back with median ≤ 20 failed requests: {_show(failed)} → "
            f"{_ok(failed is not None and failed <= 20)}"
        )
    start = _median([r.failed for r in runs("S3-20x-0.1%", "ours")])
    for key in sorted(k for k in keys if k.startswith("S8-")):
        late = _median([r.failed for r in runs(key, "ours")])
        if late is not None and start is not None:
            lines.append(
                f"- {key}: failed requests within 2× of the same regression from the start "
                f"(S3-20x-0.1%, median): {late:.0f} vs {start:.0f} → {_ok(late <= 2 * start)}"
            )
    lines += _power_and_healthy(results, keys)
    lines += dominance(results, scenarios, baselines or {})
    ratios: list[str] = []
    for scenario in scenarios:
        if not scenario.bad:
            continue
        ours = _median([r.failed for r in runs(scenario.key, "ours")])
        flagger = _median([r.failed for r in runs(scenario.key, "flagger")])
        if ours is None or flagger is None:
            continue
        ratio = flagger / ours if ours else float("inf")
        ratios.append(
            f"- {scenario.key}: ≥ 5× fewer failed requests than Flagger-style (median over all "
            f"runs, missed ones counted until they ended): ours {ours:.0f}, Flagger-style "
            f"{flagger:.0f} ({'∞' if ours == 0 else f'{ratio:.1f}'}×) → {_ok(ratio >= 5)}"
        )
    if ratios:
        lines += ["", "BENCHMARK.md §1's ratio to Flagger-style (superseded by the above):", ""]
    return lines + ratios


SECTION = "## Gate quality (BENCHMARK.md §1)"


def twenty_x_note() -> str:
    """Why a 20x regression from the start is not caught within 5 failed requests and 30 s,
    with the figures ``bench.late_regression_cost`` computes for the first step."""
    first = late_regression_cost.CASES[0]
    found = late_regression_cost.cost(first)
    rates = [
        scenario.rps * first.weight / 100.0 * scenario.canary.error_rate
        for scenario in (BY_KEY["S3-20x-0.1%"], BY_KEY["S3-20x-0.5%"])
    ]
    return (
        "- **20× regressions with ≤ 5 failed requests in ≤ 30 s.** Out of reach at a first "
        f"step of {first.weight:g}%: on 0.1% by the statistics at the judge's bar, on 0.5% by "
        "the loop. A canary "
        f"failure at a {first.weight:g}% share carries {found.per_failure:.2f} nats of "
        "evidence of a 20× regression in the comparison, whatever the base rate (it depends "
        f"on the share and the ratio only), and the first step's bar is {found.bar:,.0f}: an "
        f"oracle that knows the ratio needs {found.oracle:.1f} canary failures on average, the "
        "judge's e-value "
        f"{found.judge:.1f} (`python -m bench.late_regression_cost`). On 0.1% the canary fails "
        f"{rates[0]:g} requests a second at weight {first.weight:g}, so those take "
        f"{found.oracle / rates[0]:.0f} s (oracle) and {found.judge / rates[0]:.0f} s (judge) "
        f"on average before any loop, past 30 s. On 0.5% it fails {rates[1]:g} a second, so "
        f"{found.judge / rates[1]:.0f} s; but the 10 s scrape alone leaves about "
        f"{SCRAPE_INTERVAL_S / 2 * rates[1]:g} failures unseen on average before the tick and "
        "the route change, "
        "past 5. The canary keeps its pods until the route change has taken effect "
        '(docs/operations.md, "The canary\'s last ten seconds"), so the requests it gets '
        "meanwhile fail at its own rate: before, with the canary scaled to zero at once, they "
        "all failed, about half of the failed requests of a 20× regression on 0.1%."
    )


def late_regression_note() -> str:
    """Why a regression starting at 50% costs more than 2x the failed requests of the same
    regression from the start, with the figures ``bench.late_regression_cost`` computes."""
    first, last = late_regression_cost.CASES[0], late_regression_cost.CASES[-1]
    start, late = late_regression_cost.cost(first), late_regression_cost.cost(last)
    return (
        "- **Late regressions within 2× of the same regression from the start.** Out of reach "
        f"at {last.weight:g}% for any test that compares the arms in the same windows, with "
        "this false-rollback budget. The comparison conditions on the failures both arms "
        "served: under the null a failure is the canary's with its share of the requests, so "
        f"at {last.weight:g}% a canary failure carries {late.per_failure:.2f} nats of evidence "
        f"of a 20× regression, at {first.weight:g}% {start.per_failure:.2f}; and the test "
        f"restarted at step {last.step + 1} has a smaller prior weight in the e-detector, so a "
        f"bar of {late.bar:,.0f} against {start.bar:,.0f}. An oracle that knows the ratio needs "
        f"{late.oracle:.1f} canary failures on average at {last.weight:g}% and "
        f"{start.oracle:.1f} at {first.weight:g}%; the judge's mixture e-value, every failure "
        f"seen at once, {late.judge:.1f} and {start.judge:.1f} "
        "(`python -m bench.late_regression_cost`, which also gives 10% and 20%, and the "
        "twin's counts: the loop adds the rest). A test against the stable's rate in the "
        "earlier steps would not be bound so, but a dependency that starts failing mid-release "
        "would read as the canary's regression. The runs not rolled back passed the 50% step on "
        "its first window before the evidence was in, and at 100% the success-rate floor cannot "
        "fail them: with no stable traffic left there is nothing to subtract a shared "
        "dependency's failures from. `detect: {errorRatio: 20}` holds the 50% step long enough "
        'to catch them (docs/analysis.md, "Power on request").'
    )


NOTES = (
    "- **100% errors with ≤ 20 failed requests.** At 100 req/s and weight 5 the canary fails "
    "5 requests a second. Prometheus scrapes every 10 s, so about 5 s of its failures (≈ 25) "
    "are served on average before any scrape can show one; then half a tick (2 s, ≈ 5) and the "
    "route change (1–3 s, ≈ 10). The early look fails the canary on the first scrape that shows "
    "a handful of failures, so 35–40 failed requests is what this data path allows; ≤ 20 needs "
    "a faster scrape (5 s halves it) or a smaller first weight (1% divides it by five). At "
    "1 req/s (S5-errors-1rps) the same path serves a handful, within the ≤ 5 of the low-traffic "
    "default.",
    "- **2× caught in ≥ 95%.** Telling 0.2% from 0.1% takes tens of thousands of canary "
    "requests; the default favours speed and catches a fraction. `detect: {errorRatio: 2, "
    "power: 0.95}` holds the 50% step for what the test needs (about 19,000 canary requests at "
    "0.5%, 95,000 at 0.1%; docs/analysis.md has the arithmetic and why that is about 14× the "
    "floor, not within 1.5×).",
    "- **S5 (low traffic).** A step needs 200 canary requests or, after four minutes, its "
    "weight's share; at 1 req/s a healthy release takes about four minutes a step.",
    "- **S6 flapping dependency and noisy services (S9).** The absolute checks count only as "
    "far as the canary is also worse than the stable (each capped at the comparison's e-value "
    "on the same measure, which conditions on the failures both arms served) and ignore the "
    "full-weight step; on the twin (seeds 0–999, 2026-12-02) S6-flapping's rollbacks left, 2 "
    "of 1000, are the error comparison's own, in settled windows at 5% and 10%, within its "
    "budget. Before the cap the floor subtracted the stable's evidence only, and on S9's "
    "services, where both arms break the 99% floor, the difference of the two rolled back 3–4% "
    "of healthy releases (20% with detect).",
)


def splice(document: str, section: str) -> str:
    """``document`` with its gate-quality section replaced by ``section`` (appended if absent);
    the other sections are left as they are."""
    if not document.strip():
        document = "# Benchmark results\n"
    start = document.find(SECTION)
    if start < 0:
        return document.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    end = document.find("\n## ", start + len(SECTION))
    rest = "" if end < 0 else document[end:]
    return document[:start] + section.rstrip("\n") + "\n" + rest


def _ok(met: bool) -> str:
    return "**met**" if met else "**not met**"


def render(
    *,
    table: str,
    scenarios: Sequence[Scenario],
    results: Results,
    command: str,
    machine: str,
    when: str,
    elapsed: float,
    seeds: Mapping[str, int],
    baselines: Mapping[str, str] | None = None,
) -> str:
    """The whole of docs/benchmarks.md."""
    floors = [
        f"| {s.key} | {s.title} | {seeds.get(s.key, 0) or '—'} | "
        + ("—" if s.floor is None else f"{s.floor:.2f}")
        + " |"
        for s in scenarios
    ]
    return "\n".join(
        [
            SECTION,
            "",
            "Generated by `make bench-gates`, which rewrites this section only.",
            "",
            f"- Command: `{command}`",
            f"- Machine: {machine}",
            f"- Date: {when}",
            f"- Runtime: {elapsed / 60:.1f} min",
            "- Traffic: `canary.sim.traffic.Mesh` (Poisson arrivals, weighted split, per-pod "
            "Linkerd counters); 3 stable pods; canary pods as the controller scales them "
            "(one for the baselines); stable 0.1% errors, latency "
            "log-normal p50 50 ms / p99 250 ms unless the scenario says otherwise.",
            "- Scrapes every 10 s ± 0.5 s, 2% of scrapes lost; weight changes take effect "
            "after 1–3 s. Steps 5, 10, 20, 50, 100%. R = 100 req/s unless the scenario says.",
            "- ours: the digital twin (`bench/twin.py`): canary's real `Controller`, "
            "`Reconciler`, state machine, measuring windows (`canary.core.measuring`) and judge "
            "in virtual time against simulated ports (route with the actuation delay, canary "
            "pods ready 5 s after they are asked for — a crash-looping canary's crash 5 s "
            "later and stay not ready —, Prometheus answering from the newest "
            "scrape), measuring tick 2 s, settle 12 s, early looks; default analysis "
            "(minRequestsPerStep unset: 200 canary requests a step, or the weight's share of "
            "200 once the step has run four minutes), success rate ≥ "
            "99%, p99 ≤ 500 ms; `ours, detect 2× at 0.95` adds "
            "`detect: {errorRatio: 2, power: 0.95}`. Flagger-style and "
            "Argo-style: 1 m interval, "
            "the same two thresholds, rules as in BENCHMARK.md §1.",
            "",
            "Healthy scenarios report the false-rollback rate with its 95% Wilson interval and "
            "the time until 100% of traffic is on the new version; bad ones the share of "
            "missed regressions (promoted, or still open after 6 h) and, over the runs that "
            "rolled back, the time until traffic was back on stable and the failed requests "
            "the canary served (or that failed on their way to it) until then. The floor is "
            "`p1·kl(1−β‖α)/KL(p1‖p0)` failed requests (α = β = 0.05): what no sequential test "
            "can beat on average even knowing the stable's rate.",
            "",
            table,
            "",
            "### Targets (ours, defaults, R = 100 req/s)",
            "",
            *targets(results, scenarios, baselines),
            "",
            "### Why some targets are out of reach",
            "",
            *NOTES,
            twenty_x_note(),
            late_regression_note(),
            "",
            "### Scenarios and theoretical floors",
            "",
            "| scenario | what | seeds | floor (failed requests) |",
            "|---|---|---|---|",
            *floors,
            "",
        ]
    )
