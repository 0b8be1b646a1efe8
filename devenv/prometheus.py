"""The Prometheus of the dev environment: its configuration and command line.

Called by `cluster`. The `linkerd-proxy` job finds its targets in a file-discovery directory that
the mesh emulator fills with one JSON file per set of pods (labels such as `namespace`, `pod`,
`deployment`, and `__metrics_path__` when a target needs another path). Prometheus' file
watch picks each write up (1-3 s after it, docs/benchmarks.md); it also rereads the directory
every minute, only in case a watch event was lost: at 1000 apps a reread every 5 s cost it
3.7 CPU s a minute (run Z). Scrape and evaluation intervals are 10 s, as in linkerd-viz.
Every query is logged to ``query_log`` with Prometheus' own timings (the scale benchmark
counts and times the controller's queries there).
"""

from __future__ import annotations

from pathlib import Path

SCRAPE_INTERVAL = "10s"
RETENTION = "6h"


def config(targets_dir: Path, port: int, query_log: Path) -> str:
    return f"""\
# Written by `python -m devenv up`; rewritten on every start.
global:
  scrape_interval: {SCRAPE_INTERVAL}
  evaluation_interval: {SCRAPE_INTERVAL}
  query_log_file: {query_log}
scrape_configs:
  - job_name: linkerd-proxy
    honor_labels: false
    file_sd_configs:
      - files: ["{targets_dir}/*.json", "{targets_dir}/*.yaml"]
        refresh_interval: 1m
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def argv(binary: Path, config_file: Path, data_dir: Path, port: int) -> list[str]:
    return [
        str(binary),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
