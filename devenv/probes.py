"""HTTP(S) calls the orchestrator makes itself: health probes and a few Kubernetes API requests.

Called by `cluster` while it brings components up and reports status. Standard library only, so
that `python -m devenv` runs before the project's virtualenv exists. TLS is always verified
against the dev CA; the admin client certificate authenticates to kube-apiserver.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devenv import processes
from devenv.errors import DevEnvError


def tls_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key) if key else None)
    return context


def get(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, str]:
    """(status, body) of a GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (OSError, ValueError):
        return 0, ""


class KubeApi:
    """Just enough of the Kubernetes API for the orchestrator, as the dev admin."""

    def __init__(self, server: str, context: ssl.SSLContext) -> None:
        self.server = server
        self.context = context

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
            return json.loads(response.read() or b"null")

    def ready(self) -> bool:
        return get(f"{self.server}/readyz", self.context)[0] == 200


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    log: Path,
    process: processes.Process | None = None,
) -> None:
    """Polls `check` until it holds; fails early, naming `log`, if `process` exits."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if check():
            return
        if process is not None and not processes.is_running(process):
            code = processes.exit_code(process)
            status = f" with exit code {code}" if code is not None else ""
            raise DevEnvError(f"{what} exited{status} before it became ready", log)
        if time.monotonic() > deadline:
            raise DevEnvError(f"{what} did not become ready within {timeout:.0f}s", log)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
