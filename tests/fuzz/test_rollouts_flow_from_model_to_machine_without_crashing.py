"""Fuzz model → plan → machine.decide: any Rollout document is refused by the model
(ValidationError) or the plan (InvalidSpec), or runs through the state machine over random
observations, commands and times without an exception, with weights in 0–100, bounded requeue
delays and a status that reads back."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st
from pydantic import ValidationError

from canary.core import commands, judge, machine, plan, vocabulary
from canary.errors import InvalidSpec
from canary.model.base import MAX_DURATION
from canary.model.rollout import Rollout
from canary.model.status import RolloutStatus
from tests.fuzz.budget import FUZZ
from tests.fuzz.strategies import (
    ANALYSIS,
    DURATIONS,
    JSON,
    NAMES,
    NUMBERS,
    ROLLOUT,
    TEMPLATE_PATCH,
    TIMES,
)
from tests.fuzz.strategies import STEP as STEP_FUZZ

COUNT = st.integers(min_value=0, max_value=2**40)


def _arm(requests: int, failures: int, buckets: list[int]) -> judge.Arm:
    return judge.Arm(requests=requests, failures=min(failures, requests), buckets=tuple(buckets))


ARM = st.builds(_arm, COUNT, COUNT, st.lists(COUNT, max_size=26))
EVIDENCE = st.builds(
    lambda canary, stable, custom: judge.Evidence(canary, stable, custom=custom),
    ARM,
    ARM,
    st.dictionaries(
        st.sampled_from(["m", "x", "a" * 56]),
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
        max_size=2,
    ),
)
ANNOTATION = st.builds(
    lambda kind, at: {
        commands.key(kind): json.dumps({"at": at.isoformat(), "actor": "fuzz"}),
    },
    st.sampled_from(commands.KINDS),
    TIMES,
)
TICK = st.fixed_dictionaries(
    {
        "target": st.one_of(
            st.none(),
            st.builds(
                vocabulary.TargetState,
                replicas=st.integers(min_value=0, max_value=10**6),
                ready=st.booleans(),
                has_release=st.booleans(),
            ),
        ),
        "apex": st.booleans(),
        "canary": st.one_of(
            st.none(),
            st.builds(
                vocabulary.CanaryState,
                replicas=st.integers(min_value=0, max_value=10**6),
                ready_replicas=st.integers(min_value=0, max_value=10**6),
                current=st.booleans(),
            ),
        ),
        "services": st.booleans(),
        "route": st.one_of(
            st.none(),
            st.builds(
                vocabulary.RouteState,
                canary_weight=st.integers(min_value=0, max_value=100),
                accepted=st.booleans(),
            ),
        ),
        "evidence": st.one_of(st.none(), EVIDENCE),
        "metrics_error": st.one_of(st.none(), st.just("prometheus down")),
        "annotations": st.one_of(st.just({}), ANNOTATION),
        "superseded": st.sampled_from([None] * 9 + ["newer"]),
        "advance": st.one_of(
            st.sampled_from([0, 1, 15, 600, 3600, 86_400 * 40]),
            st.integers(min_value=0, max_value=10**7),
        ),
    }
)
START = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda t: t.replace(tzinfo=UTC)
)


def _observation(tick: dict[str, Any]) -> vocabulary.Observation:
    return vocabulary.Observation(
        target=tick["target"],
        apex_service=tick["apex"],
        canary=tick["canary"],
        services_ready=tick["services"],
        route=tick["route"],
        evidence=tick["evidence"],
        metrics_error=tick["metrics_error"],
        commands=commands.decode(tick["annotations"]),
        superseded_by=tick["superseded"],
    )


def _check(decision: vocabulary.Decision, interval: timedelta) -> None:
    for action in decision.actions:
        if isinstance(action, vocabulary.SetWeight):
            assert 0 <= action.canary <= 100
        if isinstance(action, vocabulary.EnsureCanary):
            assert action.replicas >= 0
    assert 0 <= decision.status.canary_weight <= 100
    if decision.requeue_after is not None:
        assert timedelta(0) <= decision.requeue_after <= MAX_DURATION + interval
    assert RolloutStatus.model_validate(decision.status.wire()) == decision.status


def _ordered(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    weights = sorted(int(s["setWeight"]) for s in steps if "setWeight" in s)
    pauses = [s for s in steps if "pause" in s]
    return [*({"setWeight": w} for w in weights), *pauses, {"setWeight": 100}]


def _valid(steps: list[dict[str, Any]], interval: str, timeout: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "r", "namespace": "shop"},
        "spec": {
            "targetRef": {"name": "web"},
            "service": {"name": "web", "port": 80},
            "release": {"images": {"web": "web:2"}},
            "steps": _ordered(steps),
            "analysis": {"interval": interval, "minRequestsPerStep": 10},
            "approvals": {"beforePromotion": {"timeout": timeout}},
        },
    }


STEP: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.integers(min_value=1, max_value=100).map(lambda w: {"setWeight": w}),
    st.sampled_from([{"pause": {}}, {"pause": {"duration": "720h"}}]),
)
VALID = st.builds(
    _valid,
    st.lists(STEP, min_size=1, max_size=5),
    st.sampled_from(["1s", "15s", "1h"]),
    st.sampled_from(["1s", "720h"]),
)


PATHS = [
    "metadata.name",
    "spec.targetRef.name",
    "spec.service.name",
    "spec.service.port",
    "spec.steps.0.setWeight",
    "spec.steps.0.pause",
    "spec.analysis.interval",
    "spec.analysis.minRequestsPerStep",
    "spec.analysis.successRate",
    "spec.analysis.latency",
    "spec.analysis.compareWithStable",
    "spec.analysis.noData",
    "spec.analysis.metrics",
    "spec.approvals.beforePromotion.timeout",
    "spec.approvals.beforeStart",
    "spec.release.templatePatch",
    "spec.notifications",
    "spec.stepWeight",
]
HOSTILE = st.one_of(DURATIONS, NUMBERS, NAMES, JSON, ANALYSIS, STEP_FUZZ, TEMPLATE_PATCH)


def _mutated(original: dict[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    document = copy.deepcopy(original)  # sampled values are shared between examples
    for path, value in changes:
        node: Any = document
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
            if not isinstance(node, dict | list):
                break
        else:
            if isinstance(node, list):
                node[int(last) % len(node)] = value
            else:
                node[last] = value
    return document


MUTATED = st.builds(
    _mutated, VALID, st.lists(st.tuples(st.sampled_from(PATHS), HOSTILE), max_size=3)
)


@FUZZ
@given(st.one_of(ROLLOUT, MUTATED, MUTATED, MUTATED), st.lists(TICK, min_size=1, max_size=8), START)
def test_any_rollout_is_refused_or_decided(
    document: dict[str, Any], ticks: list[dict[str, Any]], start: datetime
) -> None:
    """Only ValidationError or InvalidSpec refuse; every decision keeps the invariants."""
    try:
        rollout = Rollout.model_validate(document)
    except ValidationError:
        event("refused by the model")
        return
    try:
        built = plan.build(rollout, None)
    except InvalidSpec:
        event("refused by the plan")
        return
    event("decided")
    status, now = RolloutStatus(), start
    for tick in ticks:
        decision = machine.decide(built, status, _observation(tick), now)
        _check(decision, built.interval)
        status = decision.status
        now += timedelta(seconds=tick["advance"])


@FUZZ
@given(VALID, st.lists(TICK, min_size=1, max_size=12), START)
def test_valid_rollouts_keep_the_invariants_over_random_worlds(
    document: dict[str, Any], ticks: list[dict[str, Any]], start: datetime
) -> None:
    """Rollouts the model accepts, with bounds at their extremes, always reach a decision."""
    built = plan.build(Rollout.model_validate(document), None)
    status, now = RolloutStatus(), start
    for tick in ticks:
        decision = machine.decide(built, status, _observation(tick), now)
        _check(decision, built.interval)
        status = decision.status
        now += timedelta(seconds=tick["advance"])
