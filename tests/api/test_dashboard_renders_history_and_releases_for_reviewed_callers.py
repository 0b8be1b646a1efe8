"""The dashboard over a real uvicorn: the page shell holds no data, the history and release
fragments need a reviewed identity, show only readable namespaces, escape what people wrote,
and offer only the command buttons RBAC grants and the phase allows."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from canary.api import pages
from tests.api.conftest import ADMIN, APPROVER, VIEWER, Served, call, serve
from tests.fake_store import MemoryRolloutStore, make

T0 = "2026-11-21T07:50:00Z"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _step(index: int, weight: int, start: str, end: str | None, **arms: Any) -> dict[str, Any]:
    return {
        "index": index,
        "weight": weight,
        "startedAt": start,
        "finishedAt": end,
        "verdict": "Passed" if end else "Running",
        **arms,
    }


def _measured(requests: int, failures: int, rate: float, ms: float) -> dict[str, Any]:
    return {"requests": requests, "failures": failures, "successRate": rate, "latencyMs": ms}


def _store() -> MemoryRolloutStore:
    waiting = make(
        "web-3",
        phase="WaitingApproval",
        canaryWeight=20,
        startedAt=T0,
        currentStepIndex=1,
        steps=[
            _step(
                0,
                20,
                T0,
                "2026-11-21T07:55:00Z",
                canary=_measured(400, 3, 99.25, 90),
                stable=_measured(1600, 2, 99.875, 80),
                checks=[
                    {"name": "errors", "verdict": "Pass", "value": 0.4, "limit": 20},
                    {"name": "latency", "verdict": "Pass", "value": 2.5, "limit": 20},
                ],
            ),
            {"index": 1, "startedAt": "2026-11-21T07:55:00Z"},
        ],
    )
    done = make(
        "web-2",
        phase="RolledBack",
        startedAt="2026-11-20T10:00:00Z",
        finishedAt="2026-11-20T10:03:05Z",
        steps=[
            {**_step(0, 20, "2026-11-20T10:00:00Z", "2026-11-20T10:03:00Z"), "verdict": "Failed"}
            | {"canary": _measured(200, 41, 79.5, 300)}
        ],
    )
    meta = done.metadata.model_copy(update={"creation_timestamp": _at("2026-11-20T10:00:00Z")})
    hostile = make("web-1", phase="Succeeded", message="<script>alert(1)</script>")
    newer = waiting.metadata.model_copy(update={"creation_timestamp": _at(T0)})
    older = hostile.metadata.model_copy(update={"creation_timestamp": _at("2026-11-19T10:00:00Z")})
    return MemoryRolloutStore(
        waiting.model_copy(update={"metadata": newer}),
        done.model_copy(update={"metadata": meta}),
        hostile.model_copy(update={"metadata": older}),
        make("api-7", namespace="other", phase="Progressing"),
    )


def _served() -> tuple[Served, Any]:
    store = _store()
    api, running = serve(store)
    return Served(running.url, store, api, [True], running.port), running


def _buttons(html: str) -> list[str]:
    return re.findall(r'data-command="([a-z]+)"', html)


def test_the_page_shell_holds_no_data_and_runs_only_its_own_script() -> None:
    """GET / needs no token but names no Rollout; its CSP allows exactly its script."""
    served, running = _served()
    try:
        reply = call(served.url + "/")
    finally:
        running.stop()
    assert reply.status == 200
    assert reply.content_type.startswith("text/html")
    assert "web-3" not in reply.body
    assert "podinfo" not in reply.body
    policy = reply.headers["content-security-policy"]
    assert f"script-src 'sha256-{pages.SCRIPT_HASH}'" in policy
    assert "default-src 'none'" in policy
    assert reply.body.count("<script>") == 1


def test_fragments_need_a_reviewed_identity() -> None:
    """Without a token, or with an unknown one, history and release fragments are 401
    problems; a reader of namespace test is 403 on namespace other."""
    served, running = _served()
    try:
        for token in (None, "nope"):
            assert call(served.url + "/ui/history", token=token).status == 401
            page = "/ui/namespaces/test/rollouts/web-3"
            assert call(served.url + page, token=token).status == 401
        other = call(served.url + "/ui/namespaces/other/rollouts/api-7", token=VIEWER)
        listed = call(served.url + "/ui/history?namespace=other", token=VIEWER)
    finally:
        running.stop()
    assert other.status == 403
    assert other.content_type == "application/problem+json"
    assert listed.status == 403


def test_history_lists_each_targets_releases_newest_first_in_readable_namespaces() -> None:
    """The viewer, named as reviewed, sees web-3, web-2, web-1 in that order, with phase,
    image, duration, outcome and canary failures, and nothing from namespace other; the admin
    sees both."""
    served, running = _served()
    try:
        viewer = call(served.url + "/ui/history", token=VIEWER)
        admin = call(served.url + "/ui/history", token=ADMIN)
    finally:
        running.stop()
    assert viewer.status == 200
    assert "Signed in as <strong>system:serviceaccount:test:viewer</strong>" in viewer.body
    rows = re.findall(r'<tr data-rollout="([^"]+)">', viewer.body)
    assert rows == ["web-3", "web-2", "web-1"]
    assert "api-7" not in viewer.body
    assert 'data-live="true"' in viewer.body
    web2 = viewer.body[viewer.body.index('data-rollout="web-2"') :].split("</tr>")[0]
    for shown in ("podinfo:6.1.0", "RolledBack", "3m 05s", "rolled back: analysis", ">41<"):
        assert shown in web2
    assert "api-7" in admin.body


def test_release_page_charts_every_step_and_escapes_what_people_wrote() -> None:
    """web-3's page draws the weight line with a mark per step, paired bars for canary and
    stable, the evidence against limits, and the step table; web-1's message is escaped."""
    served, running = _served()
    try:
        page = call(served.url + "/ui/namespaces/test/rollouts/web-3", token=VIEWER)
        hostile = call(served.url + "/ui/namespaces/test/rollouts/web-1", token=VIEWER)
    finally:
        running.stop()
    html = page.body
    assert page.status == 200
    assert html.count('class="step-mark"') == 1
    assert 'class="weight-line"' in html
    # one measured step, in three charts: success rate, latency, requests
    assert html.count('class="bar canary"') == 3
    assert html.count('class="bar stable"') == 3
    assert html.count('class="evidence"') == 2
    assert "99.25%" in html
    assert "<script>alert(1)" not in hostile.body
    assert "&lt;script&gt;alert(1)" in hostile.body
    assert 'data-live="false"' in hostile.body


def test_buttons_follow_rbac_and_the_phase() -> None:
    """Waiting for approval: the approver gets Approve, Promote and Abort, the viewer none;
    a rolled-back release offers the approver only Retry."""
    served, running = _served()
    try:
        approver = call(served.url + "/ui/namespaces/test/rollouts/web-3", token=APPROVER)
        viewer = call(served.url + "/ui/namespaces/test/rollouts/web-3", token=VIEWER)
        done = call(served.url + "/ui/namespaces/test/rollouts/web-2", token=APPROVER)
    finally:
        running.stop()
    assert _buttons(approver.body) == ["approve", "promote", "abort"]
    assert _buttons(viewer.body) == []
    assert _buttons(done.body) == ["retry"]


def test_durations_read_like_people_write_them() -> None:
    """Seconds, minutes and seconds, hours and minutes."""
    assert [pages.duration(timedelta(seconds=s)) for s in (0, 42, 185, 7800)] + [
        pages.duration(None)
    ] == ["0s", "42s", "3m 05s", "2h 10m", "—"]


def test_release_page_says_what_a_held_step_waits_for_and_when() -> None:
    """A step held for analysis.detect shows the requests it needs, how many it has, and its
    ETA; a finished release shows nothing to wait for."""
    held = make(
        "web-4",
        phase="Progressing",
        canaryWeight=50,
        startedAt=T0,
        steps=[
            {
                **_step(0, 50, T0, None, canary=_measured(1204, 5, 99.6, 90)),
                "needs": 9300,
                "neededFor": "detect",
                "eta": "2999-01-01T00:00:00Z",
            }
        ],
    )
    done = make("web-5", phase="Succeeded")
    _, running = serve(MemoryRolloutStore(held, done))
    try:
        page = call(running.url + "/ui/namespaces/test/rollouts/web-4", token=VIEWER)
        finished = call(running.url + "/ui/namespaces/test/rollouts/web-5", token=VIEWER)
    finally:
        running.stop()
    assert page.status == 200
    assert re.search(
        r'<dd id="eta">needs 9300 canary requests for analysis.detect \(1204 so far\), about '
        r"[0-9a-z]+ more</dd>",
        page.body,
    )
    assert '<dd id="eta">—</dd>' in finished.body
