"""Fuzz the evidence parser and the custom-query reader: any Prometheus-shaped (or not) answer
becomes counters, None, or MetricsUnavailable, and deltas are never negative."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.core import evidence, promql
from canary.errors import MetricsUnavailable
from canary.model.linkerd import LATENCY_BUCKETS_MS
from tests.fuzz.budget import FUZZ
from tests.fuzz.strategies import JSON, NUMBERS

LABEL = st.sampled_from(["a", "b", "", "web", "web-canary"])
SAMPLE: st.SearchStrategy[Any] = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {
            "metric": st.one_of(
                JSON,
                st.fixed_dictionaries(
                    {"namespace": LABEL, "deployment": LABEL, "pod": LABEL},
                    optional={
                        "classification": st.sampled_from(["success", "failure", "x"]),
                        "le": st.one_of(
                            st.sampled_from([str(b) for b in LATENCY_BUCKETS_MS]),
                            st.sampled_from(["+Inf", "nan", "abc", "1e400"]),
                        ),
                    },
                ),
            ),
            "value": st.one_of(
                JSON,
                st.tuples(st.floats(), st.one_of(st.text(max_size=10), NUMBERS.map(str))).map(list),
            ),
        }
    ),
)


@FUZZ
@given(st.lists(SAMPLE, max_size=20), st.lists(SAMPLE, max_size=20))
def test_any_two_answers_give_non_negative_deltas(first: list[Any], second: list[Any]) -> None:
    """Two snapshots from arbitrary samples advance into counts that are never negative."""
    baseline, _ = evidence.advance(None, evidence.parse(first))
    _, deltas = evidence.advance(baseline, evidence.parse(second))
    for arm in deltas.values():
        assert arm.requests >= 0
        assert 0 <= arm.failures <= arm.requests
        assert all(count >= 0 for count in arm.buckets)


@FUZZ
@given(st.one_of(JSON, st.lists(SAMPLE, max_size=3)))
def test_any_custom_answer_is_a_number_none_or_unavailable(result: Any) -> None:
    """A custom query's answer is read as one number, None, or MetricsUnavailable."""
    try:
        value = promql.single_value(result)
    except MetricsUnavailable:
        return
    assert value is None or isinstance(value, float)
