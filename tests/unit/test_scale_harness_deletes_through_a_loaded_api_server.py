"""The scale harness deletes a round's Rollouts through a loaded API server (bench/scale.py
``delete_all``): a timeout (504), an unavailable server (503) or a dropped connection asks
again for what is left; any other error, or one that lasts past the timeout, stops the run."""

import http.client

import pytest
import urllib3
from kubernetes import client

from bench import scale


def _dropped() -> urllib3.exceptions.HTTPError:
    # What the kubernetes client raised in the N = 1000 soak of 2026-12-02 once its retries
    # on a connection the API server closed ran out.
    reason = urllib3.exceptions.ProtocolError(
        "Connection aborted.", http.client.RemoteDisconnected("closed")
    )
    return urllib3.exceptions.MaxRetryError(None, "/apis/canary.dev", reason)  # type: ignore[arg-type]


class _Deletes:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


def test_timeouts_unavailability_and_dropped_connections_are_asked_again() -> None:
    delete = _Deletes(
        client.ApiException(status=504, reason="Gateway Timeout"),
        _dropped(),
        client.ApiException(status=503, reason="Service Unavailable"),
        urllib3.exceptions.ProtocolError("Connection aborted."),
    )
    scale.delete_all(delete, timeout=60, pause=0)
    assert delete.calls == 5


@pytest.mark.parametrize("status", [400, 403, 404, 409, 500])
def test_any_other_answer_stops_at_once(status: int) -> None:
    delete = _Deletes(client.ApiException(status=status, reason="no"))
    with pytest.raises(client.ApiException) as raised:
        scale.delete_all(delete, timeout=60, pause=0)
    assert raised.value.status == status
    assert delete.calls == 1


def test_a_server_still_failing_at_the_timeout_stops_the_run() -> None:
    delete = _Deletes(*[_dropped() for _ in range(1000)])
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        scale.delete_all(delete, timeout=0.05, pause=0.01)
    assert 1 <= delete.calls < 1000
