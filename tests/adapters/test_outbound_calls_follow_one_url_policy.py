"""Every call made for a tenant follows one URL policy: http(s) only, no credentials, never
loopback/link-local/metadata, private receivers only where the operator allows, hooks only to
Services of the Rollout's namespace, no redirects, malformed answers failed (to retry), only
the host in logs and in the errors kept in status, and Slack text escaped."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from canary.adapters.notifiers import slack, webhook
from canary.adapters.notifiers.policy import PolicyNotifier
from canary.core import outbound
from canary.core.vocabulary import Event
from canary.model.policy import Notification, SecretKeyRef
from tests.adapters.test_notifiers_post_and_never_raise import (
    ALLOW_LOCAL,
    LOCAL,
    ROLLOUT,
    entries,
)
from tests.fake_store import make
from tests.local_http import LocalServer, QuietHandler

FAILED = Event("Warning", "AnalysisFailed", "step 2 failed")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("data:text/plain,hello", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("https://user:s3cr3t@hooks.example.com/x", "credentials"),
        ("https://@hooks.example.com/x", "credentials"),
        ("https:///path", "no host"),
        ("https://hooks.example.com /x", "white space"),
        ("https://hooks.example.com/\r\nX: y", "control characters"),
        ("https://[::1/x", "well-formed"),
        ("https://exa_mple.com/", "not a DNS name"),
        ("https://x.example:99999/", "well-formed"),
        ("xoxb-not-a-url", "only http and https"),
        ("https://a.example/" + "x" * 3000, "at most 2048"),
    ],
)
def test_urls_outside_the_policy_are_refused(url: str, reason: str) -> None:
    """Schemes, credentials and malformed URLs are refused, and the reason never quotes them."""
    with pytest.raises(outbound.Refused, match=reason) as refused:
        outbound.destination(url)
    assert "s3cr3t" not in str(refused.value)
    assert "xoxb" not in str(refused.value)


STRICT = outbound.Policy()
GENEROUS = outbound.Policy.parse(["127.0.0.0/8,169.254.0.0/16,::1/128,10.0.0.0/8", "localhost"])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "::ffff:127.0.0.1",
        "169.254.169.254",
        "169.254.1.1",
        "fe80::1",
        "fd00:ec2::254",
        "100.100.100.200",
        "0.0.0.0",
        "::",
        "224.0.0.1",
    ],
)
def test_loopback_link_local_and_metadata_are_never_called(address: str) -> None:
    """Even an operator allow-list that covers them does not open these addresses."""
    target = outbound.destination("http://localhost/x")
    for policy in (STRICT, GENEROUS):
        with pytest.raises(outbound.Refused, match="loopback, link-local or metadata"):
            outbound.check_address(policy, target, address)


def test_private_receivers_need_the_operators_allowance() -> None:
    """Private addresses are refused by default and allowed by network or by host name."""
    target = outbound.destination("https://hooks.corp.example/x")
    for address in ("10.1.2.3", "192.168.1.1", "172.16.0.1", "100.64.0.1", "fd12::1"):
        with pytest.raises(outbound.Refused, match="not public"):
            outbound.check_address(STRICT, target, address)
    outbound.check_address(outbound.Policy.parse(["10.0.0.0/8"]), target, "10.1.2.3")
    outbound.check_address(outbound.Policy.parse([".corp.example"]), target, "192.168.1.1")
    outbound.check_address(STRICT, target, "8.8.8.8")
    outbound.check_address(STRICT, target, "2001:4860:4860::8888")


def test_operator_allow_list_entries_are_checked() -> None:
    """An entry that is neither a host, a .domain, an address nor a CIDR is refused."""
    with pytest.raises(ValueError, match="neither a host name"):
        outbound.Policy.parse(["https://x"])


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://gate.shop.svc/check", True),
        ("http://gate.shop.svc.cluster.local:8080/check", True),
        ("http://gate.payments.svc/check", False),
        ("https://kubernetes.default.svc/api", False),
        ("http://gate.shop.svc.cluster.evil/check", False),
        ("http://shop.svc/check", False),
        ("https://ci.example.com/hook", False),
        ("https://gate.partner.example/hook", True),
    ],
)
def test_hooks_call_only_services_of_their_namespace(url: str, allowed: bool) -> None:
    """A hook reaches Services in the Rollout's own namespace and hosts the operator allows."""
    policy = outbound.Policy.parse(["gate.partner.example"])
    if allowed:
        assert outbound.check_hook(policy, url, "shop").host in url
    else:
        with pytest.raises(outbound.Refused, match="Services in namespace shop"):
            outbound.check_hook(policy, url, "shop")


class Recorder:
    """An HTTP server on ``host`` that records every request (method, path) and answers with
    ``status`` and ``headers``, or with a raw malformed answer."""

    def __init__(self, host: str) -> None:
        self.requests: list[tuple[str, str]] = []
        self.status = 200
        self.headers: dict[str, str] = {}
        self.raw: bytes | None = None
        recorder = self

        class Handler(QuietHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                recorder.requests.append((self.command, self.path))
                if recorder.raw is not None:
                    self.wfile.write(recorder.raw)
                    return
                self.send_response(recorder.status)
                for key, value in recorder.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                self._any()

            def do_POST(self) -> None:
                self._any()

        self.server = LocalServer(Handler, host)
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def recorders() -> Iterator[tuple[Recorder, Recorder]]:
    """Two receivers: one on the non-loopback address, one on 127.0.0.1."""
    local, loopback = Recorder(LOCAL), Recorder("127.0.0.1")
    try:
        yield local, loopback
    finally:
        local.stop()
        loopback.stop()


def test_loopback_receivers_get_nothing(recorders: tuple[Recorder, Recorder]) -> None:
    """A webhook to 127.0.0.1 (or localhost) is refused before any connection, allow-list or not."""
    _, loopback = recorders
    port = loopback.server.port
    for url in (loopback.url + "/x", f"http://localhost:{port}/x"):
        assert not webhook.post_json(url, {"a": 1}, policy=GENEROUS)
    assert loopback.requests == []


def test_private_receivers_get_something_only_when_allowed(
    recorders: tuple[Recorder, Recorder],
) -> None:
    """The same private receiver is refused by default and reached when the operator allows it."""
    local, _ = recorders
    assert not webhook.post_json(local.url + "/x", {"a": 1})
    assert local.requests == []
    assert webhook.post_json(local.url + "/x", {"a": 1}, policy=ALLOW_LOCAL)
    assert local.requests == [("POST", "/x")]


def test_redirects_are_not_followed(recorders: tuple[Recorder, Recorder]) -> None:
    """A receiver answering 302 to another address gets the call dropped; nothing follows it."""
    local, loopback = recorders
    local.status, local.headers = 302, {"Location": loopback.url + "/internal"}
    assert not webhook.post_json(local.url + "/x", {"a": 1}, policy=ALLOW_LOCAL)
    assert local.requests == [("POST", "/x")]
    assert loopback.requests == []


@pytest.mark.parametrize(
    "raw",
    [b"garbage\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200],
)
def test_malformed_answers_are_dropped_not_raised(
    recorders: tuple[Recorder, Recorder], raw: bytes
) -> None:
    """A malformed status line or header flood is a dropped notification, never an exception."""
    local, _ = recorders
    local.raw = raw
    assert not webhook.post_json(local.url + "/x", {"a": 1}, policy=ALLOW_LOCAL)
    hook = [Notification(type="webhook", url=local.url + "/x")]
    (entry,) = entries(hook, FAILED)
    attempt = PolicyNotifier(lambda _: hook, lambda *_: None, policy=ALLOW_LOCAL).deliver(
        ROLLOUT, entry
    )
    assert (attempt.ok, attempt.permanent) == (False, False)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        port: int = sock.getsockname()[1]
    return port


def test_logs_name_the_host_never_the_url_or_secret() -> None:
    """Failed deliveries log the host only: no path secret, no ?token=, no Secret value."""
    secret_url = f"http://{LOCAL}:{_closed_port()}/services/T0/B0/SECRETPATH?token=SECRETQUERY"
    secret_values = {"hook": secret_url, "junk": "xoxb-SECRETVALUE"}

    def secret(namespace: str, ref: SecretKeyRef) -> str | None:
        return secret_values[ref.name]

    notifications = [
        Notification.model_validate({"type": t, "urlFrom": {"name": n, "key": "url"}})
        for t, n in (("slack", "hook"), ("webhook", "hook"), ("msteams", "junk"))
    ]
    sender = PolicyNotifier(lambda _: notifications, secret, policy=ALLOW_LOCAL)
    with capture_logs() as logs:
        attempts = [sender.deliver(ROLLOUT, e) for e in entries(notifications, FAILED)]
        webhook.post_json(secret_url.replace(LOCAL, "unresolvable.invalid"), {})
    assert len(logs) == 4
    text = repr(logs)
    assert "SECRET" not in text
    # The errors are kept in the Rollout's status, which more people read than the Secret.
    assert [a.ok for a in attempts] == [False] * 3
    assert "SECRET" not in repr(attempts)
    assert any(entry.get("host") == LOCAL for entry in logs)


def test_slack_text_escapes_what_tenants_control() -> None:
    """&, < and > in a message become entities: no @channel, no forged links."""
    event = Event("Warning", "AnalysisFailed", "<!channel> see <https://evil.example|logs> & more")
    message = slack.SlackNotifier("https://hooks.slack.com/x").message(make("r"), event)
    assert "&lt;!channel&gt; see &lt;https://evil.example|logs&gt; &amp; more" in message["text"]
    assert "<" not in message["text"]
