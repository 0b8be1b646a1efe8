"""A reduced scale run (issue 16): 50 Rollouts at once on one controller, 5 of them bad.

Asserts the structural properties, never timings: at most one Prometheus query per measuring
tick whatever the number of Rollouts (and no per-Rollout query), no GET of canary's resources
in a steady window (every Rollout started, none creating its canary or promoting, reconciles
going on: the kube-apiserver's audit log counts the requests of the controller's own
ServiceAccount, so an earlier test's namespace deleted meanwhile does not count: the API
server's own ``apiserver_request_total``, counted before, has no user label, and one CI run
counted 4 GETs in the window while earlier tests' namespaces were being deleted; a local rerun
counted 35 GETs of TrafficSplits, which an HTTPRoute run's controller never reads, as Linkerd's
SMI adaptor logged cleaning up after each deleted one), and no wrong decision
(a good release rolled back, a bad one promoted) among those finished when the run ends: once
the steady window is measured and a good release was promoted and a bad one rolled back (one
step at 50%, a 10 s analysis interval: about a minute; waiting for all 50 took up to 4 minutes,
Linkerd's policy controller accepting the 50 routes slowly on a loaded machine). On a failure
the report says which Rollout ended wrong and why (its status, its steps' counts and checks,
the log lines naming it). The full benchmark is ``make bench-scale`` (bench/scale.py).

False-failure rate: the policy's ``falseRollbackRate`` is 2e-5 per release (Ville's bound;
early looks spend part of that same budget), so the 45 good releases are wrongly rolled back
with probability at most 45 × 2e-5 = 0.09%; the 5 bad ones fail 30% of requests against a 95%
floor and stable's 0.1%, which the test settles with far more evidence than its limit of
1/2e-5. The steady window is timing, not chance: it needs 8 s (and a 5 s grace) with no Rollout
starting or promoting, which every run so far found between the last start and the first
promotion (docs/benchmarks.md).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bench import decision_split, scale
from devenv import layout
from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.scale]

TICK_SECONDS = 2


def test_fifty_rollouts_share_one_query_per_tick_and_read_only_the_cache(
    cluster: Cluster, tmp_path: Path
) -> None:
    """N = 50: queries per tick ≤ 1 (as the controller and as Prometheus count them), zero
    GETs in steady state, no wrong decision."""
    setup = scale.Setup(
        50,
        f"scale-{uuid.uuid4().hex[:8]}",
        interval="10s",
        steps=(50,),
        tick=f"{TICK_SECONDS}s",
        rps=40,
        timeout=150,
        steady=8,
        early=True,
    )
    env = {
        "PROMETHEUS_URL": cluster.prometheus_url,
        "PROMETHEUS_TARGETS_DIR": str(cluster.targets_dir),
        "LINKERD_POLICY_GRPC": cluster.policy_grpc,
        "AUDIT_LOG": str(layout.DevDir(cluster.dev_dir).audit_log),
        "PROMETHEUS_QUERY_LOG": str(layout.DevDir(cluster.dev_dir).prometheus_query_log),
    }
    report = scale.run(setup, cluster.kubeconfig, env, tmp_path)
    summary = (
        f"{scale.table([report], TICK_SECONDS)}\nphases first seen: {scale.timeline(report)}"
        f"\n{scale.steady_account(report)}\n{scale.prometheus_account(report)}"
        f"\nthe controller's requests by verb and resource: {dict(report.controller_requests)}"
        f"\nevery client's (apiserver_request_total): {dict(report.requests)}"
    )
    print(summary)  # in the log of a passing run too (pytest -rP)
    assert report.wrong == [], f"{summary}\n{report.diagnosis}"
    assert report.value_queries == 0, summary
    assert report.snapshots <= report.seconds / TICK_SECONDS + 1, summary
    # Each query is sent once: Prometheus ran no more than the controller counted (one may be
    # logged by Prometheus before the round's end and counted by the controller after it).
    assert report.prometheus_snapshots, summary
    assert len(report.prometheus_snapshots) <= report.snapshots + 1, summary
    assert report.steady_gets == 0, summary  # -1: no steady window was seen at all
    assert report.steady_reconciles > 0, summary  # the window held reconciles that sent no GET
    assert report.reconciles > 0, summary
    assert {"Succeeded", "RolledBack"} <= set(report.phases.values()), summary
    # bench.decision_split splits every bad Rollout the tick found failing with what the real
    # Prometheus holds: the canary's failure samples and the query that found it.
    splits = decision_split.round_splits(
        (tmp_path / "controller.log").read_text().splitlines(),
        setup.namespace,
        n=setup.n,
        version=2,
        query_log=Path(env["PROMETHEUS_QUERY_LOG"]),
        prometheus=cluster.prometheus_url,
    )
    found = {n for n, d in report.decisions.items() if None not in (d.started, d.found)}
    assert found, f"{summary}\n{report.decisions}"
    assert set(splits) == found, f"{splits}\n{report.decisions}"
    for name, part in splits.items():  # None: not found in Prometheus' samples or log
        assert None not in (part.first, part.lost, part.executing, part.processing), (name, part)
