"""The fuzz targets' example budget: small in the suite, large in `make fuzz`.

``CANARY_FUZZ_EXAMPLES`` sets the number of examples per target (default 150, which keeps the
fuzz targets to well under two minutes of `make test`; `make fuzz` runs 10,000). The database is
off so that every run explores afresh instead of replaying the last failures only.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("CANARY_FUZZ_EXAMPLES", "150"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
