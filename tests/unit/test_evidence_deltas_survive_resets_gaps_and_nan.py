"""Per-tick deltas from raw per-pod counters: resets, new and vanished pods, gaps, NaN."""

from __future__ import annotations

import math
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.core import evidence
from canary.core.evidence import PodCounters, PodKey
from canary.core.judge import Arm
from canary.model.linkerd import LATENCY_BUCKETS_MS

LE = ["+Inf" if math.isinf(b) else str(int(b)) for b in LATENCY_BUCKETS_MS]
CANARY = ("test", "podinfo-canary")
STABLE = ("test", "podinfo")


def pod(
    deployment: str, name: str, ok: float, failed: float, le: list[float] | None = None
) -> list[dict[str, object]]:
    """Samples one pod contributes to the tick query's result."""
    labels = {"namespace": "test", "deployment": deployment, "pod": name}
    out: list[dict[str, object]] = [
        {"metric": labels | {"classification": "success"}, "value": [1.0, str(ok)]},
        {"metric": labels | {"classification": "failure"}, "value": [1.0, str(failed)]},
    ]
    for bound, value in zip(LE, le or [], strict=False):
        out.append({"metric": labels | {"le": bound}, "value": [1.0, str(value)]})
    return out


def cumulative(per_bucket: dict[int, int]) -> list[float]:
    """Cumulative ``le`` values from a sparse per-bucket count."""
    running, out = 0, []
    for i in range(len(LE)):
        running += per_bucket.get(i, 0)
        out.append(float(running))
    return out


def test_first_snapshot_only_sets_the_baseline() -> None:
    """With no baseline (controller just started) every Deployment gets an empty Arm."""
    snap = evidence.parse(pod("podinfo", "a", 100, 5))
    baseline, deltas = evidence.advance(None, snap)
    assert deltas == {STABLE: Arm()}
    assert baseline[PodKey("test", "podinfo", "a")].requests == 105


def test_deltas_are_exact_differences_summed_by_deployment() -> None:
    """Two pods of one Deployment: the delta is the sum of their counter differences."""
    before = evidence.parse(pod("podinfo", "a", 100, 1) + pod("podinfo", "b", 50, 0))
    after = evidence.parse(pod("podinfo", "a", 130, 2) + pod("podinfo", "b", 70, 1))
    _, deltas = evidence.advance(before, after)
    assert deltas[STABLE] == Arm(requests=52, failures=2)


def test_latency_buckets_become_per_bucket_deltas() -> None:
    """Cumulative ``le`` counters turn into requests per bucket over the tick."""
    before = evidence.parse(pod("podinfo-canary", "c", 10, 0, cumulative({5: 10})))
    after = evidence.parse(pod("podinfo-canary", "c", 25, 0, cumulative({5: 20, 9: 5})))
    _, deltas = evidence.advance(before, after)
    expected = [0] * len(LE)
    expected[5], expected[9] = 10, 5
    assert deltas[CANARY].buckets == tuple(expected)


def test_counter_reset_counts_the_current_values() -> None:
    """A pod whose counters went down restarted: its current values are the delta."""
    before = evidence.parse(pod("podinfo", "a", 1000, 10, cumulative({3: 1010})))
    after = evidence.parse(pod("podinfo", "a", 40, 2, cumulative({3: 42})))
    _, deltas = evidence.advance(before, after)
    assert deltas[STABLE].requests == 42
    assert deltas[STABLE].failures == 2
    assert sum(deltas[STABLE].buckets) == 42


def test_new_pod_counts_everything_it_served() -> None:
    """A pod that appears after the baseline counts all of its counters."""
    before = evidence.parse(pod("podinfo", "a", 10, 0))
    after = evidence.parse(pod("podinfo", "a", 10, 0) + pod("podinfo-canary", "c", 7, 3))
    _, deltas = evidence.advance(before, after)
    assert deltas[CANARY] == Arm(requests=10, failures=3)
    assert deltas[STABLE] == Arm()


def test_vanished_pod_is_kept_and_diffed_when_it_returns() -> None:
    """A scrape gap hides a pod; when it comes back only the difference counts."""
    first = evidence.parse(pod("podinfo", "a", 100, 0) + pod("podinfo", "b", 100, 0))
    gap = evidence.parse(pod("podinfo", "a", 110, 0))
    back = evidence.parse(pod("podinfo", "a", 120, 0) + pod("podinfo", "b", 125, 1))
    baseline, deltas = evidence.advance(first, gap)
    assert deltas[STABLE].requests == 10
    assert baseline[PodKey("test", "podinfo", "b")].absent == 1
    _, deltas = evidence.advance(baseline, back)
    assert deltas[STABLE] == Arm(requests=36, failures=1)


def test_vanished_pod_is_forgotten_after_a_while() -> None:
    """A pod absent for KEEP_ABSENT snapshots leaves the baseline (bounded memory)."""
    baseline: dict[PodKey, PodCounters] = dict(evidence.parse(pod("podinfo", "a", 1, 0)))
    for _ in range(evidence.KEEP_ABSENT):
        baseline, deltas = evidence.advance(baseline, {})
        assert deltas == {}
    assert baseline == {}


@pytest.mark.parametrize(
    "value",
    ["NaN", "+Inf", "-Inf", "-3", "not-a-number"],
)
def test_unusable_values_are_ignored(value: str) -> None:
    """NaN, infinite, negative and garbled sample values are dropped, not counted."""
    labels = {"namespace": "test", "deployment": "podinfo", "pod": "a"}
    samples = [
        {"metric": labels | {"classification": "success"}, "value": [1, value]},
        {"metric": labels | {"classification": "failure"}, "value": [1, "2"]},
    ]
    assert evidence.parse(samples)[PodKey("test", "podinfo", "a")] == PodCounters(2, 2)


@pytest.mark.parametrize(
    "sample",
    [
        {},
        {"metric": "nope", "value": [1, "1"]},
        {"metric": {"namespace": "test", "deployment": "podinfo"}, "value": [1, "1"]},
        {"metric": {"namespace": "test", "deployment": "", "pod": "a"}, "value": [1, "1"]},
        {"metric": {"namespace": "t", "deployment": "d", "pod": "a", "le": "7"}, "value": [1, "1"]},
        {"metric": {"namespace": "t", "deployment": "d", "pod": "a", "le": "x"}, "value": [1, "1"]},
        {"metric": {"namespace": "t", "deployment": "d", "pod": "a"}, "value": "1"},
        {"metric": {"namespace": "t", "deployment": "d", "pod": "a"}, "value": [1]},
    ],
)
def test_malformed_samples_are_ignored(sample: dict[str, object]) -> None:
    """Samples without the needed labels, with unknown bounds or odd shapes give no pod."""
    assert evidence.parse([sample]) == {}


def test_empty_result_gives_empty_snapshot_and_no_deltas() -> None:
    """An empty Prometheus result changes nothing and counts nothing."""
    baseline = evidence.parse(pod("podinfo", "a", 5, 0))
    kept, deltas = evidence.advance(baseline, evidence.parse([]))
    assert deltas == {}
    assert kept[PodKey("test", "podinfo", "a")].requests == 5


def test_bucket_gaps_and_float_bounds_are_understood() -> None:
    """Prometheus 3 prints ``le="1.0"``; a missing bucket between two present ones takes the
    value below it, and the buckets missing above the highest finite one present the ``+Inf``
    count (the counters query leaves out the buckets equal to it)."""
    labels = {"namespace": "t", "deployment": "d", "pod": "a"}
    samples = [
        {"metric": labels | {"classification": "success"}, "value": [1, "4"]},
        {"metric": labels | {"le": "1.0"}, "value": [1, "1"]},
        {"metric": labels | {"le": "3"}, "value": [1, "3"]},
        {"metric": labels | {"le": "+Inf"}, "value": [1, "4"]},
    ]
    counters = evidence.parse(samples)[PodKey("t", "d", "a")]
    assert counters.buckets == (1, 1, 3, *(4,) * (len(LE) - 3))


def test_without_an_inf_bucket_missing_buckets_take_the_value_below() -> None:
    """An answer without the ``+Inf`` bucket (not canary's query's) has nothing to fill the top
    from: every gap takes the bucket below, as a non-decreasing count must."""
    labels = {"namespace": "t", "deployment": "d", "pod": "a"}
    samples = [
        {"metric": labels | {"classification": "success"}, "value": [1, "4"]},
        {"metric": labels | {"le": "2"}, "value": [1, "2"]},
        {"metric": labels | {"le": "5"}, "value": [1, "3"]},
    ]
    counters = evidence.parse(samples)[PodKey("t", "d", "a")]
    assert counters.buckets == (0, 2, 2, 2, *(3,) * (len(LE) - 4))


HISTOGRAMS = st.tuples(
    st.lists(st.integers(0, 10**9), min_size=len(LE), max_size=len(LE)),
    st.integers(0, len(LE) - 1),
).map(lambda drawn: cumulative(dict(enumerate(drawn[0][: drawn[1] + 1]))))
"""Cumulative buckets of a pod whose slowest response fell in a drawn bucket: every bucket
from there up equals ``+Inf``, as a real service's do."""


@given(st.lists(st.tuples(HISTOGRAMS, st.integers(0, 10**6)), min_size=1, max_size=4), st.randoms())
def test_leaving_out_the_buckets_equal_to_inf_reads_the_same_counters(
    pods: list[tuple[list[float], int]], random: Random
) -> None:
    """The counters query leaves out every bucket equal to the pod's ``+Inf`` bucket (all above
    its slowest response); parsing that answer, in any order, gives exactly the counters the
    whole answer gives."""
    whole: list[dict[str, object]] = []
    short: list[dict[str, object]] = []
    for i, (le, drawn_failures) in enumerate(pods):
        failed = min(drawn_failures, int(le[-1]))
        samples = pod("podinfo", f"p{i}", le[-1] - failed, failed, le)
        whole += samples
        short += [s for s in samples if not _equal_to_inf(s, le[-1])]
    random.shuffle(short)
    assert (len(short) < len(whole)) == any(le[-2] == le[-1] for le, _ in pods)
    assert evidence.parse(short) == evidence.parse(whole)


def _equal_to_inf(sample: dict[str, object], inf: float) -> bool:
    """Whether ``sample`` is a finite bucket holding ``inf`` (its pod's ``+Inf`` count)."""
    labels, pair = sample["metric"], sample["value"]
    assert isinstance(labels, dict)
    assert isinstance(pair, list)
    return labels.get("le") not in (None, "+Inf") and float(pair[1]) == inf


def test_single_huge_tick_is_counted_exactly() -> None:
    """Counters in the billions (a long scrape gap, a busy service) stay exact integers."""
    before = evidence.parse(pod("podinfo", "a", 1, 0))
    after = evidence.parse(pod("podinfo", "a", 4e12, 3e9))
    _, deltas = evidence.advance(before, after)
    assert deltas[STABLE] == Arm(requests=4_003_000_000_000 - 1, failures=3_000_000_000)


def test_buckets_first_seen_on_a_known_pod_are_its_baseline() -> None:
    """A pod known without buckets (none asked for) that comes with them: they are its
    lifetime's, so they become its baseline and the tick serves its requests only."""
    before = evidence.parse(pod("podinfo", "a", 5, 0))
    after = evidence.parse(pod("podinfo", "a", 9, 0, cumulative({2: 9})))
    kept, deltas = evidence.advance(before, after)
    assert deltas[STABLE] == Arm(requests=4)
    later = evidence.parse(pod("podinfo", "a", 12, 0, cumulative({2: 12})))
    _, deltas = evidence.advance(kept, later)
    assert deltas[STABLE] == Arm(requests=3, buckets=tuple(3 if i == 2 else 0 for i in range(26)))


def test_a_pod_without_buckets_keeps_its_last_ones_until_they_come_again() -> None:
    """A snapshot without a pod's buckets serves its requests; the next one with them serves
    every response since the last, once."""
    first = evidence.parse(pod("podinfo", "a", 5, 0, cumulative({2: 5})))
    kept, deltas = evidence.advance(first, evidence.parse(pod("podinfo", "a", 9, 1)))
    assert deltas[STABLE] == Arm(requests=5, failures=1)
    assert kept[PodKey("test", "podinfo", "a")].buckets == tuple(cumulative({2: 5}))
    _, deltas = evidence.advance(
        kept, evidence.parse(pod("podinfo", "a", 11, 1, cumulative({2: 8, 3: 4})))
    )
    assert deltas[STABLE].requests == 2
    assert deltas[STABLE].buckets[2:4] == (3, 4)
    assert sum(deltas[STABLE].buckets) == 12 - 5


def test_a_reset_without_buckets_drops_the_kept_ones() -> None:
    """The proxy restarted on a tick without its buckets: the kept ones are from before it,
    so the next buckets are a baseline, and no request is counted twice."""
    first = evidence.parse(pod("podinfo", "a", 50, 0, cumulative({2: 50})))
    kept, deltas = evidence.advance(first, evidence.parse(pod("podinfo", "a", 3, 0)))
    assert deltas[STABLE] == Arm(requests=3)
    assert kept[PodKey("test", "podinfo", "a")].buckets == ()
    _, deltas = evidence.advance(
        kept, evidence.parse(pod("podinfo", "a", 7, 0, cumulative({2: 7})))
    )
    assert deltas[STABLE] == Arm(requests=4)


@given(st.lists(st.tuples(st.integers(0, 50), st.booleans()), min_size=1, max_size=30))
def test_buckets_asked_now_and_then_count_every_response_between_once(
    ticks: list[tuple[int, bool]],
) -> None:
    """Asked for on some ticks only, a pod's buckets served add up to the responses between
    the first and the last snapshot that held them, and its requests to all it served."""
    total = 0
    baseline = evidence.parse(pod("podinfo", "a", 0, 0, cumulative({1: 0})))
    seen, asked_at = Arm(), [0]
    for ok, asked in ticks:
        total += ok
        snap = evidence.parse(
            pod("podinfo", "a", total, 0, cumulative({1: total}) if asked else None)
        )
        baseline, deltas = evidence.advance(baseline, snap)
        seen = seen + deltas.get(STABLE, Arm())
        if asked:
            asked_at.append(total)
    assert seen.requests == total
    assert sum(seen.buckets) == asked_at[-1]


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.integers(0, 5), st.booleans()), min_size=1, max_size=30
    )
)
def test_deltas_add_up_to_everything_served(ticks: list[tuple[int, int, bool]]) -> None:
    """Whatever the resets, the deltas sum to exactly the requests the pod served."""
    served = failed = 0
    counter_ok = counter_failed = 0
    baseline = evidence.parse(pod("podinfo", "a", 0, 0))
    seen = Arm()
    for ok, bad, restart in ticks:
        if restart:
            counter_ok = counter_failed = 0
        counter_ok += ok
        counter_failed += bad
        served += ok + bad
        failed += bad
        snap = evidence.parse(pod("podinfo", "a", counter_ok, counter_failed))
        baseline, deltas = evidence.advance(baseline, snap)
        seen = seen + deltas.get(STABLE, Arm())
    # A restart between two snapshots whose new counters already exceed the old ones is
    # indistinguishable from no restart; the generator only restarts from scratch, so the
    # deltas may undercount by what was lost then, never overcount.
    assert seen.requests <= served
    assert seen.failures <= failed
    if not any(restart for _, _, restart in ticks[1:]):
        assert seen == Arm(served, failed)


def test_samples_that_are_not_objects_are_skipped() -> None:
    """A result holding strings, numbers or nulls among its samples keeps the pods it names."""
    samples: list[object] = ["x", 1, None, [], *pod("podinfo", "a", 3, 1)]
    assert evidence.parse(samples) == evidence.parse(pod("podinfo", "a", 3, 1))  # type: ignore[arg-type]


ARMS = st.builds(
    Arm,
    requests=st.integers(0, 10**6),
    failures=st.integers(0, 10**6),
    buckets=st.one_of(
        st.just(()),
        st.lists(st.integers(0, 10**6), min_size=len(LE), max_size=len(LE)).map(tuple),
        st.lists(st.integers(0, 10**6), max_size=len(LE)).map(tuple),
    ),
)


@given(ARMS, ARMS)
def test_adding_arms_sums_every_count_and_pads_a_shorter_histogram(a: Arm, b: Arm) -> None:
    """``a + b`` sums requests, failures and each bucket (a missing bucket counts as zero),
    whether or not one side is empty."""
    width = max(len(a.buckets), len(b.buckets))
    padded = [(*x.buckets, *(0,) * (width - len(x.buckets))) for x in (a, b)]
    total = a + b
    assert total == Arm(
        a.requests + b.requests,
        a.failures + b.failures,
        tuple(x + y for x, y in zip(*padded, strict=True)),
    )
    assert b + a == total


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=4))
def test_a_repeated_snapshot_gives_empty_deltas_of_the_same_width(
    pods: list[tuple[int, int]],
) -> None:
    """Asking twice between two scrapes: every Deployment served nothing, with as many (empty)
    buckets as its counters have, and the baseline is unchanged."""
    samples = []
    for i, (ok, failed) in enumerate(pods):
        le = cumulative({3: ok + failed}) if i % 2 else None
        samples += pod("podinfo" if i < 2 else "podinfo-canary", f"p{i}", ok, failed, le)
    snap = evidence.parse(samples)
    baseline, _ = evidence.advance(None, snap)
    again, deltas = evidence.advance(baseline, snap)
    assert again == baseline
    for target, arm in deltas.items():
        widths = {len(c.buckets) for k, c in snap.items() if k.target == target}
        assert arm == Arm(buckets=(0,) * max(widths))


def test_a_pod_back_in_the_snapshot_is_no_longer_counted_absent() -> None:
    """Counters handed in with an absence count (a caller's own bookkeeping) are kept as
    present: the next gap starts counting from zero."""
    key = PodKey("test", "podinfo", "a")
    stale = {key: PodCounters(requests=10, absent=3)}
    kept, deltas = evidence.advance({}, stale)
    assert kept == {key: PodCounters(requests=10)}
    assert deltas == {STABLE: Arm(requests=10)}
