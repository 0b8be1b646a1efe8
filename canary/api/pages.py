"""The dashboard's HTML: the page shell, the promotion history and one release's page.

The shell (``SHELL``) holds no data: its script asks the API for HTML fragments with the
person's token (pasted and kept in the tab's session storage, or added by an OAuth2 proxy),
puts them in place, and asks again every few seconds while a release runs. ``history`` renders
the releases of each target newest first; ``release`` renders one release's step timeline,
charts (``canary.api.charts``), step table, approvals, and the command buttons the caller may
use. Pure: Rollouts, the time and the allowed commands in, HTML out (every value escaped).
Used by ``canary.api.app``; must not do I/O. Over 400 lines because the page's stylesheet and
script live here as text, beside the markup they style and drive.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from html import escape

from canary.api import charts
from canary.core import history, present
from canary.core.vocabulary import CommandKind
from canary.model.policy import Analysis
from canary.model.rollout import Rollout
from canary.model.status import TERMINAL_PHASES, StepStatus

POLL_SECONDS = 3


def _time(value: datetime | None) -> str:
    if value is None:
        return "—"
    utc = value.astimezone(UTC)
    return f'<time datetime="{utc.isoformat()}">{utc:%Y-%m-%d %H:%M:%S}</time>'


def duration(span: timedelta | None) -> str:
    """A duration as people read it: 42s, 3m 05s, 2h 10m."""
    if span is None:
        return "—"
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _elapsed(rollout: Rollout, now: datetime) -> timedelta | None:
    status = rollout.status
    if status.started_at is None:
        return None
    return (status.finished_at or now) - status.started_at


def images(rollout: Rollout) -> str:
    """The release's images, each as its last path element (``podinfo:6.1.0``)."""
    found = rollout.spec.release.images or {}
    return ", ".join(image.rsplit("/", 1)[-1] for _, image in sorted(found.items())) or "(patch)"


def approvers(rollout: Rollout) -> str:
    """Who approved or promoted the release, in order."""
    people = [
        a.actor or "?" for a in rollout.status.approvals if a.decision in ("Approved", "Promoted")
    ]
    return ", ".join(dict.fromkeys(people)) or "—"


def outcome(rollout: Rollout) -> str:
    """How the release ended (``rolled back: analysis``), or ``running``."""
    finished = history.outcome(rollout.status)
    if finished is None:
        return "running"
    return f"{finished.result.replace('_', ' ')}: {finished.reason.replace('_', ' ')}"


def canary_failures(rollout: Rollout) -> int:
    """Failed requests the canary served over the whole release."""
    return sum(step.canary.failures for step in rollout.status.steps)


def is_live(rollout: Rollout) -> bool:
    """Whether the release still runs (the page keeps refreshing)."""
    return rollout.status.phase not in TERMINAL_PHASES


def _phase(phase: str) -> str:
    kind = (
        "good"
        if phase == "Succeeded"
        else "bad"
        if phase in ("RolledBack", "Failed", "Aborted", "RollingBack")
        else "wait"
        if phase in ("WaitingApproval", "Paused")
        else "run"
    )
    return f'<span class="phase {kind}">{escape(phase)}</span>'


def _link(rollout: Rollout) -> str:
    ns, name = escape(rollout.metadata.namespace), escape(rollout.metadata.name)
    return f'<a href="#/{ns}/{name}">{name}</a>'


def _who(viewer: str) -> str:
    return f'<p class="who">Signed in as <strong>{escape(viewer)}</strong></p>'


def history_page(rollouts: Sequence[Rollout], now: datetime, viewer: str) -> str:
    """Every target's releases, newest first; the targets with the latest release first.
    ``viewer`` is the reviewed name of the person looking."""
    groups: dict[tuple[str, str], list[Rollout]] = {}
    for rollout in reversed(history.ordered(rollouts)):
        groups.setdefault(history.target(rollout), []).append(rollout)
    live = any(is_live(r) for r in rollouts)
    parts = [
        f'<div class="view" data-live="{str(live).lower()}">{_who(viewer)}'
        "<h1>Promotion history</h1>"
    ]
    if not groups:
        parts.append("<p>No releases in the namespaces you may read.</p>")
    for (namespace, target), releases in groups.items():
        parts.append(
            f'<section aria-labelledby="t-{escape(namespace)}-{escape(target)}">'
            f'<h2 id="t-{escape(namespace)}-{escape(target)}">{escape(target)} '
            f'<span class="ns">in {escape(namespace)}</span></h2><div class="scroll">'
            '<table class="history"><thead><tr><th scope="col">Release</th>'
            '<th scope="col">Image</th><th scope="col">Phase</th><th scope="col">Approved by</th>'
            '<th scope="col">Started</th><th scope="col">Duration</th><th scope="col">Outcome</th>'
            '<th scope="col">Canary failures</th></tr></thead><tbody>'
        )
        for r in releases:
            parts.append(
                f'<tr data-rollout="{escape(r.metadata.name)}"><th scope="row">{_link(r)}</th>'
                f"<td>{escape(images(r))}</td><td>{_phase(r.status.phase)}</td>"
                f"<td>{escape(approvers(r))}</td><td>{_time(r.status.started_at)}</td>"
                f"<td>{duration(_elapsed(r, now))}</td><td>{escape(outcome(r))}</td>"
                f'<td class="num">{canary_failures(r)}</td></tr>'
            )
        parts.append("</tbody></table></div></section>")
    parts.append("</div>")
    return "".join(parts)


def _weights(rollout: Rollout) -> list[tuple[datetime, int]]:
    """(time, canary weight from then on), oldest first."""
    status = rollout.status
    points: list[tuple[datetime, int]] = []
    if status.started_at is not None:
        points.append((status.started_at, 0))
    for step in status.steps:
        if step.weight is not None:
            points.append((step.started_at, step.weight))
    if status.finished_at is not None and points:
        points.append((status.finished_at, status.canary_weight))
    return sorted(points, key=lambda p: p[0])


def _label(step: StepStatus) -> str:
    weight = f" {step.weight}%" if step.weight is not None else ""
    return f"step {step.index + 1}{weight}"


def _num(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:.4g}{unit}"


def _latency_limit(analysis: Analysis | None) -> float | None:
    latency = analysis.latency if analysis else None
    return float(latency.max_ms) if latency is not None else None


def _success_floor(analysis: Analysis | None) -> float | None:
    rate = analysis.success_rate if analysis else None
    return rate.min if rate is not None else None


def _buttons(rollout: Rollout, allowed: Iterable[CommandKind]) -> str:
    kinds = list(allowed)
    if not kinds:
        return ""
    ns, name = escape(rollout.metadata.namespace), escape(rollout.metadata.name)
    parts = ['<form class="commands" data-command-form><p>']
    parts.append(
        '<label>Comment <input name="comment" maxlength="1024" autocomplete="off"></label> '
    )
    for kind in kinds:
        parts.append(
            f'<button type="button" data-command="{escape(kind)}" data-namespace="{ns}" '
            f'data-name="{name}" class="cmd {escape(kind)}">{escape(kind.capitalize())}</button> '
        )
    parts.append("</p></form>")
    return "".join(parts)


def _steps_table(steps: Sequence[StepStatus], now: datetime) -> str:
    rows = []
    for s in steps:
        checks = "; ".join(
            f"{c.name}: {c.verdict}" + (f" ({_num(c.value)} / {_num(c.limit)})" if c.value else "")
            for c in s.checks
        )
        rows.append(
            f'<tr><th scope="row">{escape(_label(s))}</th><td>{escape(s.verdict)}</td>'
            f"<td>{duration((s.finished_at or now) - s.started_at)}</td>"
            f'<td class="num">{s.canary.requests}</td><td class="num">{s.stable.requests}</td>'
            f'<td class="num">{s.canary.failures}</td><td class="num">{s.stable.failures}</td>'
            f'<td class="num">{_num(s.canary.success_rate, "%")}</td>'
            f'<td class="num">{_num(s.stable.success_rate, "%")}</td>'
            f'<td class="num">{_num(s.canary.latency_ms, " ms")}</td>'
            f'<td class="num">{_num(s.stable.latency_ms, " ms")}</td>'
            f"<td>{escape(checks or s.message or '—')}</td></tr>"
        )
    return (
        '<div class="scroll"><table class="steps"><caption>Steps: what was measured</caption>'
        '<thead><tr><th scope="col">Step</th><th scope="col">Verdict</th>'
        '<th scope="col">Duration</th><th scope="col">Canary requests</th>'
        '<th scope="col">Stable requests</th><th scope="col">Canary failures</th>'
        '<th scope="col">Stable failures</th><th scope="col">Canary success</th>'
        '<th scope="col">Stable success</th><th scope="col">Canary latency</th>'
        '<th scope="col">Stable latency</th><th scope="col">Checks</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def release_page(
    rollout: Rollout,
    analysis: Analysis | None,
    now: datetime,
    viewer: str,
    allowed: Iterable[CommandKind],
) -> str:
    """One release: summary, command buttons, charts per step (``analysis`` gives the limits
    drawn), step table and approvals."""
    status, meta = rollout.status, rollout.metadata
    steps = [s for s in status.steps if s.weight is not None or s.canary.requests]
    labels = [_label(s) for s in steps]
    judged = [s for s in status.steps if s.checks] or status.steps
    latest = judged[-1] if judged else None
    checks = (
        [charts.Check(c.name, c.value, c.limit, c.verdict) for c in latest.checks] if latest else []
    )
    approvals = "".join(
        f"<li>{escape(a.decision)} at {escape(a.gate)} by {escape(a.actor or '?')}, "
        f"{_time(a.at)}{': ' + escape(a.comment) if a.comment else ''}</li>"
        for a in status.approvals
    )
    return "".join(
        [
            f'<div class="view" data-live="{str(is_live(rollout)).lower()}">{_who(viewer)}',
            '<p><a href="#/">← Promotion history</a></p>',
            f'<h1>{escape(meta.name)} <span class="ns">in {escape(meta.namespace)}</span></h1>',
            '<dl class="summary">',
            f"<dt>Target</dt><dd>Deployment/{escape(rollout.spec.target_ref.name)}</dd>",
            f"<dt>Image</dt><dd>{escape(images(rollout))}</dd>",
            f'<dt>Phase</dt><dd id="phase">{_phase(status.phase)}</dd>',
            f"<dt>Canary weight</dt><dd>{status.canary_weight}%</dd>",
            f"<dt>Started</dt><dd>{_time(status.started_at)}</dd>",
            f"<dt>Duration</dt><dd>{duration(_elapsed(rollout, now))}</dd>",
            f"<dt>Outcome</dt><dd>{escape(outcome(rollout))}</dd>",
            f"<dt>Message</dt><dd>{escape(status.message or '—')}</dd>",
            f'<dt>Waiting for</dt><dd id="eta">{escape(present.waiting(status, now) or "—")}</dd>',
            "</dl>",
            _buttons(rollout, allowed),
            "<h2>Canary weight over time</h2>",
            charts.timeline(
                _weights(rollout),
                status.finished_at or now,
                [(s.started_at, _label(s)) for s in status.steps if s.weight is not None],
            ),
            "<h2>Success rate per step</h2>",
            charts.paired(
                "Success rate per step, canary and stable",
                labels,
                [s.canary.success_rate for s in steps],
                [s.stable.success_rate for s in steps],
                "%",
                floor=min(90.0, _success_floor(analysis) or 90.0),
                limit=_success_floor(analysis),
            ),
            "<h2>Latency per step</h2>",
            charts.paired(
                "Latency per step, canary and stable",
                labels,
                [s.canary.latency_ms for s in steps],
                [s.stable.latency_ms for s in steps],
                " ms",
                limit=_latency_limit(analysis),
            ),
            "<h2>Requests per step</h2>",
            charts.paired(
                "Requests per step, canary and stable",
                labels,
                [float(s.canary.requests) for s in steps],
                [float(s.stable.requests) for s in steps],
            ),
            f"<h2>The judge's evidence{' at ' + escape(_label(latest)) if latest else ''}</h2>",
            charts.evidence(checks),
            _steps_table(status.steps, now),
            "<h2>Approvals and commands</h2>",
            f"<ul>{approvals}</ul>" if approvals else "<p>None.</p>",
            "</div>",
        ]
    )


_SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>canary: promotion history</title>
<style>
body { font-family: system-ui, sans-serif; color: #1a1a1a; background: #fff; margin: 0;
  line-height: 1.4; }
header { background: #183153; color: #fff; padding: .5em 1em; display: flex; flex-wrap: wrap;
  gap: .5em 1.5em; align-items: center; }
header a { color: #fff; font-weight: bold; font-size: 1.2em; text-decoration: none; }
main { max-width: 72em; margin: 0 auto; padding: 0 1em 2em; }
a { color: #0b4f9c; }
:focus-visible { outline: 3px solid #e0a000; outline-offset: 2px; }
.ns { font-weight: normal; color: #555; font-size: .8em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1.5em; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #ccc;
  white-space: nowrap; }
thead th { background: #f0f2f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: bold; padding: .5em 0; }
.phase { padding: .1em .45em; border-radius: .3em; font-weight: 600; }
.phase.good { background: #dff3e4; color: #0d5323; }
.phase.bad { background: #fbe3e1; color: #8a1c12; }
.phase.wait { background: #fff1c7; color: #5c4200; }
.phase.run { background: #e1ecfb; color: #123f7a; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: .25em 1em; }
dl.summary dt { font-weight: bold; }
dl.summary dd { margin: 0; }
svg.chart { width: 100%; max-width: 640px; height: auto; display: block; }
button { font: inherit; min-height: 44px; padding: .3em 1em; border-radius: .3em;
  border: 1px solid #183153; background: #183153; color: #fff; cursor: pointer; }
header button { border-color: #fff; }
.who { color: #444; font-size: .9em; margin: .5em 0 0; }
button.abort { background: #8a1c12; border-color: #8a1c12; }
button.secondary { background: #fff; color: #183153; }
input { font: inherit; min-height: 40px; padding: 0 .4em; max-width: 100%; }
#signin { display: flex; flex-wrap: wrap; gap: .5em; align-items: center; }
#alert:not(:empty) { background: #fbe3e1; color: #8a1c12; padding: .5em 1em; }
.empty { color: #555; font-style: italic; }
@media (max-width: 40em) { th, td { padding: .3em .4em; } h1 { font-size: 1.4em; } }
</style></head>
<body>
<header><a href="#/">canary</a>
<form id="signin"><label for="token">Kubernetes token</label>
<input id="token" type="password" autocomplete="off" size="24"
  placeholder="kubectl create token …">
<button type="submit">Sign in</button>
<button type="button" id="signout" class="secondary">Forget token</button></form></header>
<main><div id="alert" role="alert"></div><p id="notice" role="status"></p>
<div id="view" aria-live="polite">
<p>Loading… Behind the cluster's sign-in proxy nothing more is needed; otherwise paste a
Kubernetes token above (kept in this tab only).</p></div></main>
<script>__SCRIPT__</script>
</body></html>
"""

SCRIPT = """const KEY = "canary-token", POLL = __POLL__ * 1000;
const view = document.getElementById("view"), alertBox = document.getElementById("alert");
const notice = document.getElementById("notice");
let timer = null, shown = "", shownRoute = "";
function headers() {
  const token = sessionStorage.getItem(KEY), h = {"Content-Type": "application/json"};
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}
function fragmentUrl() {
  const parts = location.hash.slice(1).split("/").filter(Boolean)
    .map(encodeURIComponent);
  return parts.length === 2 ? `ui/namespaces/${parts[0]}/rollouts/${parts[1]}` : "ui/history";
}
function typing() {
  const a = document.activeElement;
  return a && a.tagName === "INPUT" && view.contains(a) && a.value;
}
async function load() {
  clearTimeout(timer);
  const route = location.hash, url = fragmentUrl();
  let reply;
  try { reply = await fetch(url, {headers: headers(), cache: "no-store"}); }
  catch (e) { alertBox.textContent = "The controller did not answer; retrying.";
    timer = setTimeout(load, POLL); return; }
  if (!reply.ok) {
    let detail = reply.statusText;
    try { detail = (await reply.json()).detail; } catch (e) {}
    alertBox.textContent = detail;
    view.innerHTML = "";
    shown = "";
    if (reply.status === 401) document.getElementById("token").focus();
    return;
  }
  alertBox.textContent = "";
  const html = await reply.text();
  if (html !== shown && !(route === shownRoute && typing())) {
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.command : null;
    view.innerHTML = html;
    shown = html;
    if (route !== shownRoute) {
      const h1 = view.querySelector("h1");
      if (h1) { h1.tabIndex = -1; if (shownRoute) h1.focus(); }
    } else if (focused) {
      const again = view.querySelector(`[data-command="${focused}"]`);
      if (again) again.focus();
    }
    shownRoute = route;
  }
  const live = view.querySelector("[data-live]");
  if (live && live.dataset.live === "true") timer = setTimeout(load, POLL);
}
document.getElementById("signin").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = document.getElementById("token");
  if (token.value) sessionStorage.setItem(KEY, token.value.trim());
  token.value = "";
  load();
});
document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY); shown = ""; view.innerHTML = ""; load();
});
view.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-command]");
  if (!button) return;
  const form = button.closest("form");
  const d = button.dataset;
  const path = `api/v1/namespaces/${encodeURIComponent(d.namespace)}/rollouts/` +
    `${encodeURIComponent(d.name)}/${d.command}`;
  const comment = form.querySelector("input[name=comment]").value;
  button.disabled = true;
  const reply = await fetch(path, {method: "POST", headers: headers(),
    body: JSON.stringify({comment})});
  const answer = await reply.json();
  button.disabled = false;
  notice.textContent = reply.ok ? `${answer.command}: given by ${answer.actor}` : answer.detail;
  if (reply.ok) { form.querySelector("input[name=comment]").value = "";
    setTimeout(load, 500); }
});
if (location.hash.startsWith("#token=")) {
  sessionStorage.setItem(KEY, location.hash.slice(7));
  history.replaceState(null, "", location.pathname + "#/");
}
window.addEventListener("hashchange", load);
load();
""".replace("__POLL__", str(POLL_SECONDS))
"""The page's only script: sign-in, fragments, polling, commands."""

SHELL = _SHELL.replace("__SCRIPT__", SCRIPT)
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
"""For the Content-Security-Policy: the browser runs this script and no other."""
