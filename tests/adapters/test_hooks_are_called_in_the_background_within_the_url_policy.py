"""The HTTP hook caller against a real receiver on this machine: 2xx passes, non-2xx fails
with the status and the start of the answer, no answer within the call's timeout is TimedOut,
and the URL policy refuses another namespace's Service and loopback addresses without calling.
Calls run in the background: ``start`` returns while the receiver still holds the request."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

import pytest

from canary.adapters.hooks.http import HTTPHooks, call
from canary.core import outbound
from canary.core.notice import SCHEMA
from canary.core.vocabulary import CallHook, HookAnswer
from canary.ports import Ref
from tests.fake_store import make
from tests.hook_receiver import HookReceiver, serving

ROLLOUT = make("web-2", phase="Progressing", canaryWeight=20, currentStepIndex=1)
REF = Ref(ROLLOUT.metadata.namespace, ROLLOUT.metadata.name)


def _call(url: str, key: str = "k1", timeout: float = 2.0) -> CallHook:
    return CallHook(
        key=key,
        name="gate",
        type="confirm-step",
        point="confirm-step/1",
        url=url,
        timeout=timedelta(seconds=timeout),
        metadata=(("team", "web"),),
    )


def _answers(hooks: HTTPHooks, count: int) -> Sequence[HookAnswer]:
    done = threading.Event()
    for _ in range(200):  # the pool answers within the calls' timeouts
        found = hooks.answers(REF)
        if len(found) >= count:
            return found
        done.wait(0.05)
    raise AssertionError(f"fewer than {count} answers: {hooks.answers(REF)}")


def _policy(receiver: HookReceiver) -> outbound.Policy:
    return outbound.Policy.parse([f"{receiver.address}/32"])


def test_two_xx_passes_and_the_payload_describes_the_call() -> None:
    """A 200 answer is Passed with its status; the body names the schema, call and release."""
    with serving({"ok": [200]}) as receiver:
        hooks = HTTPHooks(_policy(receiver))
        hooks.start(ROLLOUT, _call(receiver.url("ok")))
        (answer,) = _answers(hooks, 1)
        assert (answer.key, answer.result, answer.code) == ("k1", "Passed", 200)
        (body,) = receiver.calls("ok")
    assert body["schema"] == SCHEMA
    assert body["id"] == "k1"
    assert body["hook"] == {
        "name": "gate",
        "type": "confirm-step",
        "point": "confirm-step/1",
        "metadata": {"team": "web"},
    }
    assert body["rollout"]["name"] == "web-2"
    assert body["weights"] == {"canary": 20, "stable": 80}
    assert body["event"]["reason"] == "HookCalled"


def test_non_2xx_fails_with_the_status_and_the_answer() -> None:
    """A 503 answer is Failed, with the status and the start of the receiver's text."""
    with serving({"no": [503]}) as receiver:
        result = call(receiver.url("no"), "test", {}, 2.0, _policy(receiver))
    assert result == ("Failed", 503, "answer 503 to call 1")


def test_no_answer_within_the_timeout_is_timed_out_and_start_never_waits() -> None:
    """A receiver holding the request: start returns at once with no answer yet; after the
    call's timeout the answer is TimedOut."""
    with serving({"slow": ["hang"]}) as receiver:
        hooks = HTTPHooks(_policy(receiver))
        hooks.start(ROLLOUT, _call(receiver.url("slow"), timeout=1.0))
        assert hooks.answers(REF) == ()
        (answer,) = _answers(hooks, 1)
        assert (answer.result, answer.code) == ("TimedOut", None)
        assert "within 1s" in answer.message


def test_a_call_already_running_is_not_started_twice() -> None:
    """Starting the same call (key) twice while it runs makes one request."""
    with serving({"slow": ["hang"]}) as receiver:
        hooks = HTTPHooks(_policy(receiver))
        hooks.start(ROLLOUT, _call(receiver.url("slow"), timeout=5.0))
        hooks.start(ROLLOUT, _call(receiver.url("slow"), timeout=5.0))
        receiver.release.set()
        _answers(hooks, 1)
        assert len(receiver.calls("slow")) == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://checks.other.svc:8080/gate", "only Services in namespace test"),
        ("http://checks.other.svc.cluster.local/gate", "only Services in namespace test"),
        ("http://kubernetes.default.svc/", "only Services in namespace test"),
        ("http://169.254.169.254/latest/meta-data", "only Services in namespace test"),
        ("http://user:pw@checks.test.svc/", "credentials"),
        ("file:///etc/passwd", "only http and https"),
    ],
)
def test_the_url_policy_refuses_without_calling(url: str, reason: str) -> None:
    """Another namespace's Service, the control plane, metadata, credentials, other schemes:
    Refused, and the message never repeats the URL."""
    result, code, message = call(url, "test", {}, 1.0, outbound.Policy())
    assert (result, code) == ("Refused", None)
    assert reason in message
    assert url not in message


def test_an_allowed_host_resolving_to_loopback_is_refused() -> None:
    """Even a host the operator allows is refused when it resolves to a loopback address."""
    policy = outbound.Policy.parse(["localhost"])
    result, _, message = call("http://localhost:9/", "test", {}, 1.0, policy)
    assert result == "Refused"
    assert "loopback" in message


def test_an_own_namespace_service_passes_the_policy() -> None:
    """<service>.<namespace>.svc[.cluster.local] of the Rollout's namespace is allowed."""
    for host in ("checks.test.svc", "checks.test.svc.cluster.local"):
        target = outbound.check_hook(outbound.Policy(), f"http://{host}:8080/g", "test")
        assert target.host == host
