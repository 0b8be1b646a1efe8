"""The controller as the chart runs it — readOnlyRootFilesystem, one emptyDir on /tmp — does a
whole release: every mount is read-only in the controller's own mount namespace (unshare) but a
16 MiB tmpfs on /tmp, and it still promotes a healthy release as the chart's ServiceAccount."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.integration.e2e.conftest import Release

pytestmark = pytest.mark.integration


def _unshare_works() -> bool:
    probe = ["unshare", "--map-root-user", "--mount", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="no unprivileged user and mount namespaces")
def test_a_release_is_promoted_by_a_controller_on_a_read_only_filesystem(
    release_env: Callable[..., Release],
) -> None:
    """Succeeded, with the controller alive throughout and no write refused in its log."""
    env = release_env(read_only=True)
    env.create("6.1.0")
    done = env.wait("6.1.0", {"Succeeded", "RolledBack", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert env.controller.popen is not None
    assert env.controller.popen.poll() is None, env.controller.tail()
    log = env.controller.log.read_text(errors="replace")
    assert "Read-only file system" not in log
    assert "still writable" not in log
