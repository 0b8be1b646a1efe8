"""Hypothesis strategies for hostile input: JSON-like values, near-valid Rollouts, durations,
times and numbers at and beyond every bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)

DURATIONS = st.one_of(
    st.sampled_from(["0s", "1s", "15s", "1m30s", "1h", "720h", "721h", "99999999999h", "-5s"]),
    st.builds(
        lambda n, unit: f"{n}{unit}",
        st.integers(min_value=0, max_value=10**12),
        st.sampled_from(["ms", "s", "m", "h", "d", ""]),
    ),
    st.text(max_size=12),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 5, 50, 99, 100, 101, 10**9]),
)
NAMES = st.one_of(
    st.sampled_from(["podinfo", "web", "a" * 56, "a" * 57, "a" * 64, "Bad_Name", ""]),
    st.text(max_size=70),
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, JSON)


STEP = st.one_of(
    st.fixed_dictionaries({"setWeight": _maybe(NUMBERS)}),
    st.fixed_dictionaries(
        {},
        optional={
            "pause": st.fixed_dictionaries(
                {},
                optional={
                    "duration": _maybe(DURATIONS),
                    "timeout": _maybe(DURATIONS),
                    "onTimeout": st.sampled_from(["Rollback", "Continue", "x"]),
                },
            ),
            "setWeight": NUMBERS,
        },
    ),
)
ANALYSIS = st.fixed_dictionaries(
    {},
    optional={
        "interval": _maybe(DURATIONS),
        "minRequestsPerStep": NUMBERS,
        "successRate": st.fixed_dictionaries({"min": NUMBERS}),
        "latency": st.fixed_dictionaries({"maxMs": NUMBERS}, optional={"percentile": NUMBERS}),
        "compareWithStable": st.fixed_dictionaries(
            {},
            optional={
                "enabled": st.booleans(),
                "falseRollbackRate": NUMBERS,
                "errorRateTolerance": NUMBERS,
                "latencyTolerance": NUMBERS,
                "holdAbove": NUMBERS,
            },
        ),
        "noData": st.fixed_dictionaries(
            {},
            optional={
                "timeout": _maybe(DURATIONS),
                "onTimeout": st.sampled_from(["Hold", "Rollback"]),
            },
        ),
        "metrics": st.lists(
            st.fixed_dictionaries(
                {
                    "name": NAMES,
                    "query": st.one_of(
                        st.sampled_from(
                            [
                                "sum(up)",
                                'sum(up{namespace="other"})',
                                "rate(x[{{interval}}])",
                                "{{nope}}",
                                "(" * 70 + "up" + ")" * 70,
                            ]
                        ),
                        st.text(max_size=40),
                    ),
                },
                optional={"min": NUMBERS, "max": NUMBERS},
            ),
            max_size=3,
        ),
    },
)
TEMPLATE_PATCH = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "metadata": st.fixed_dictionaries(
                {},
                optional={
                    "labels": st.dictionaries(
                        st.text(max_size=20), st.text(max_size=10), max_size=3
                    ),
                    "annotations": st.dictionaries(
                        st.sampled_from(["linkerd.io/inject", "sim.canary.dev/error-rate", "a/b"]),
                        st.text(max_size=10),
                        max_size=3,
                    ),
                },
            ),
            "spec": st.fixed_dictionaries(
                {},
                optional={
                    "containers": st.lists(
                        st.fixed_dictionaries(
                            {"name": NAMES},
                            optional={
                                "image": st.text(max_size=20),
                                "env": st.lists(
                                    st.fixed_dictionaries({"name": st.text(max_size=8)}), max_size=2
                                ),
                                "resources": st.fixed_dictionaries(
                                    {
                                        "limits": st.dictionaries(
                                            st.text(max_size=8), JSON, max_size=2
                                        )
                                    }
                                ),
                                "securityContext": JSON,
                            },
                        ),
                        max_size=2,
                    ),
                    "serviceAccountName": st.text(max_size=8),
                },
            ),
        },
    ),
)
SPEC = st.fixed_dictionaries(
    {
        "targetRef": st.fixed_dictionaries({"name": NAMES}),
        "release": st.fixed_dictionaries(
            {},
            optional={
                "images": st.dictionaries(NAMES, st.text(max_size=20), max_size=2),
                "templatePatch": TEMPLATE_PATCH,
            },
        ),
    },
    optional={
        "service": st.fixed_dictionaries({"name": NAMES, "port": NUMBERS}),
        "steps": st.lists(STEP, max_size=6),
        "stepWeight": NUMBERS,
        "maxWeight": NUMBERS,
        "analysis": ANALYSIS,
        "approvals": st.fixed_dictionaries(
            {},
            optional={
                "beforeStart": st.booleans(),
                "beforePromotion": st.fixed_dictionaries(
                    {},
                    optional={
                        "required": st.booleans(),
                        "timeout": _maybe(DURATIONS),
                        "onTimeout": st.sampled_from(["Rollback", "Promote"]),
                    },
                ),
            },
        ),
        "notifications": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["slack", "webhook", "msteams", "x"])},
                optional={
                    "url": st.one_of(
                        st.sampled_from(
                            ["https://h.example/x", "https://u:p@h.example/", "file:///etc/passwd"]
                        ),
                        st.text(max_size=20),
                    ),
                    "urlFrom": st.fixed_dictionaries({"name": NAMES, "key": st.text(max_size=8)}),
                },
            ),
            max_size=2,
        ),
        "policyRef": st.fixed_dictionaries({"name": NAMES}),
    },
)
ROLLOUT = st.builds(
    lambda name, namespace, spec: {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    },
    NAMES,
    st.sampled_from(["shop", "default", "Bad"]),
    st.one_of(SPEC, JSON),
)

TIMES = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
        ),
    ),
    st.sampled_from(
        [datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), datetime(9999, 12, 31, 23, 59)]
    ),
)
