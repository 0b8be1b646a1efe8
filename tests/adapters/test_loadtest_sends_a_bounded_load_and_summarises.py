"""`canary loadtest` sends the requested number of requests to a real local HTTP server, counts
5xx and unanswered requests as failed, prints a kubectl-like summary, exits 1 above
--max-failures, and refuses unbounded settings with exit 2."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from canary import cli, loadtest


@pytest.fixture
def target() -> Iterator[str]:
    """A server answering GET /ok with 200 and GET /broken with 500 every other request."""
    seen = {"broken": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            code = 200
            if self.path == "/broken":
                with lock:
                    seen["broken"] += 1
                    code = 500 if seen["broken"] % 2 else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_sends_rate_times_duration_requests(target: str) -> None:
    """20/s for 1s from 3 connections: 20 requests, all 200, none failed."""
    load = loadtest.Load(url=f"{target}/ok", rate=20, duration=1, concurrency=3)
    tally = loadtest.run(load)
    assert tally.outcomes == {"200": 20}
    assert tally.failed == 0
    assert len(tally.latencies_ms) == 20


def test_the_summary_is_a_table_with_the_answers(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Half the answers 500: the table shows 10 failed (50.0%) and exit code 1 above 20%."""
    code = cli.main(
        [
            "loadtest", f"{target}/broken", "--rate", "20", "--duration", "1s",
            "--concurrency", "2", "--max-failures", "20",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    header, row, answers, verdict = out.splitlines()
    assert header.split() == ["TARGET", "REQUESTS", "RATE", "FAILED", "P50", "P90", "P99"]
    assert row.split()[:2] == [f"{target}/broken", "20"]
    assert "10 (50.0%)" in row
    assert answers == "answers: 200: 10, 500: 10"
    assert "above --max-failures 20%" in verdict
    assert code == 1


def test_unanswered_requests_count_as_failed() -> None:
    """Nothing listening: every request fails with the error's kind."""
    load = loadtest.Load(url="http://127.0.0.1:9/", rate=5, duration=1, concurrency=1)
    tally = loadtest.run(load)
    assert tally.requests == tally.failed == 5
    assert all(not k.isdigit() for k in tally.outcomes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "5000"], "--rate must be"),
        (["--duration", "2h"], "--duration must be"),
        (["--concurrency", "65"], "--concurrency must be"),
        (["--timeout", "2m"], "--timeout must be"),
    ],
)
def test_unbounded_settings_are_refused(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rate, duration, concurrency and timeout have upper bounds; beyond them: exit 2."""
    assert cli.main(["loadtest", "http://127.0.0.1:9/", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_url_that_is_not_http_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Only http(s) URLs with a host."""
    assert cli.main(["loadtest", "file:///etc/passwd"]) == 2
    assert "http(s)://host" in capsys.readouterr().err
