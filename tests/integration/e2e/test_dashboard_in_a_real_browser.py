"""The dashboard in a real browser (Debian's headless Chromium driven by Playwright) against the
real controller during real releases on the local control plane: a faulty release rolled back
and a good one held for approval. Two ServiceAccounts sign in with their own tokens: the viewer
sees the history and the release's charts but no buttons; the approver approves with the
keyboard, and the page follows the release to Succeeded by itself. Takes the screenshots that
docs/dashboard.md shows: into pytest's temporary directory, or, with ``CANARY_SCREENSHOTS`` set
to a directory (``make screenshots``: docs/), there, so that ``make test`` leaves the committed
ones alone."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from playwright.sync_api import Browser, Page, expect, sync_playwright

from canary.core import access
from tests.integration.e2e.conftest import Release

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = "CANARY_SCREENSHOTS"
"""Where to save the screenshots (``make screenshots`` sets docs/)."""


def _account(kube: client.ApiClient, namespace: str, name: str, rules: list[Any]) -> str:
    """A ServiceAccount bound to a Role of ``rules``; returns a token for it."""
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    meta = client.V1ObjectMeta(name=name)
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=meta))
    rbac.create_namespaced_role(namespace, client.V1Role(metadata=meta, rules=rules))
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=meta,
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name=name
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=namespace)],
        ),
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=900)
    )
    made = core.create_namespaced_service_account_token(name, namespace, request)
    assert made.status is not None
    return str(made.status.token)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Chromium from Debian (``make dev-system`` installs it)."""
    assert shutil.which(CHROMIUM), "Debian's chromium is missing: run `make dev-system`"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def _sign_in(page: Page, url: str, token: str) -> None:
    page.goto(url)
    page.get_by_label("Kubernetes token").fill(token)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Page, str], Path]:
    """Save a full-page screenshot under its name, where ``CANARY_SCREENSHOTS`` says."""
    where = Path(os.environ.get(SCREENSHOTS) or tmp_path)

    def shot(page: Page, name: str) -> Path:
        path = where / name
        page.screenshot(path=str(path), full_page=True)
        return path

    return shot


def test_dashboard_follows_a_release_and_approve_obeys_rbac(
    release_env: Callable[..., Release],
    kube: client.ApiClient,
    browser: Browser,
    shots: Callable[[Page, str], Path],
) -> None:
    """History lists both releases, the chart marks the steps, the viewer has no buttons, and
    the approver's keyboard Approve promotes the release as their reviewed identity."""
    env = release_env()
    ns = env.namespace
    read = client.V1PolicyRule(
        api_groups=[access.GROUP], resources=["rollouts"], verbs=["get", "list"]
    )
    approve = client.V1PolicyRule(
        api_groups=[access.GROUP], resources=["rollouts/approve"], verbs=["create"]
    )
    viewer = _account(kube, ns, "viewer", [read])
    approver = _account(kube, ns, "approver", [read, approve])

    env.create("6.0.9", {"sim.canary.dev/error-rate": "0.3"})
    env.wait("6.0.9", {"RolledBack", "Succeeded", "Failed"})
    env.create("6.1.0", steps=[{"setWeight": 20}, {"setWeight": 50}, {"pause": {}}])
    env.wait("6.1.0", {"WaitingApproval", "RolledBack", "Failed"})
    url = env.api_url() + "/"

    nobody = browser.new_page()
    nobody.goto(url)
    expect(nobody.get_by_role("alert")).to_contain_text("Bearer")
    assert "6.1.0" not in nobody.content()
    nobody.close()

    wide = browser.new_context(viewport={"width": 1280, "height": 900})
    page = wide.new_page()
    _sign_in(page, url, viewer)
    rows = page.locator("tr[data-rollout]")
    expect(rows).to_have_count(2)
    expect(page.locator(".who")).to_have_text(f"Signed in as system:serviceaccount:{ns}:viewer")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.rollout)") == ["6.1.0", "6.0.9"]
    expect(rows.nth(0)).to_contain_text("WaitingApproval")
    expect(rows.nth(1)).to_contain_text("rolled back: analysis")
    shots(page, "dashboard-history.png")
    page.get_by_role("link", name="6.1.0").click()
    steps = env.rollout("6.1.0")["status"]["steps"]
    weighted = [s for s in steps if s.get("weight") is not None]
    assert [s["weight"] for s in weighted][:2] == [20, 50]
    expect(page.locator(".step-mark")).to_have_count(len(weighted))
    measured = [
        s for s in steps if s.get("weight") is not None or s.get("canary", {}).get("requests")
    ]
    requests = page.locator('svg[aria-label^="Requests per step"] .bar.canary')
    expect(requests).to_have_count(len(measured))
    expect(page.locator("#phase")).to_have_text("WaitingApproval")
    expect(page.locator("#eta")).to_have_text("—")  # an approval waits for a person
    expect(page.locator("button[data-command]")).to_have_count(0)
    wide.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    small = phone.new_page()
    _sign_in(small, f"{url}#/{ns}/6.1.0", viewer)
    expect(small.locator(".step-mark")).to_have_count(len(weighted))
    scrolls = small.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not scrolls, "the page is wider than a phone"
    shots(small, "dashboard-phone.png")
    phone.close()

    mine = browser.new_context(viewport={"width": 1280, "height": 900})
    page = mine.new_page()
    _sign_in(page, f"{url}#/{ns}/6.1.0", approver)
    buttons = page.locator("button[data-command]")
    expect(buttons).to_have_count(1)
    expect(buttons).to_have_text("Approve")
    shots(page, "dashboard-release.png")
    page.get_by_label("Comment").fill("charts look fine")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.command") == "approve"
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(
        f"approve: given by system:serviceaccount:{ns}:approver"
    )
    expect(page.locator("#phase")).to_have_text("Succeeded", timeout=90_000)
    expect(page.locator("button[data-command]")).to_have_count(0)
    shots(page, "dashboard-promoted.png")
    mine.close()

    approvals = env.rollout("6.1.0")["status"]["approvals"]
    assert [(a["decision"], a["actor"], a["comment"]) for a in approvals] == [
        ("Approved", f"system:serviceaccount:{ns}:approver", "charts look fine")
    ]
