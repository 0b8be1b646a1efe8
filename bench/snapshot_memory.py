"""Memory and time of the tick's counters query at N rollouts: the answer parsed whole (as the
client's ``custom_query`` did, as the controller did first; posted) against streamed
(``snapshot``), and streamed when the query leaves out the buckets equal to ``+Inf``
(``short``, the query now).

Run: ``python -m bench.snapshot_memory [--n 1000] [--repeat 5]``. A loopback HTTP server answers
``/api/v1/query`` with the instant vector Prometheus gives the controller's query at ``n``
rollouts as ``make bench-scale`` has them: one pod an arm, each with its two ``classification``
series and 26 ``le`` buckets (``short``: those below the pod's slowest response, and ``+Inf``),
in Prometheus' layout (``resultType`` before ``result``, no gzip). A pod's counters are about
1000 requests the simulated mesh served with its default latencies (log-normal, 10 ms median, 50
ms p99: the mesh emulator's unless annotated). Each variant runs in a fresh interpreter, which
reads the answer once to warm up and then ``--repeat`` times, and reports the median wall time
of a read, the interpreter's peak RSS (VmHWM) over its RSS before the first read, and, in a
second pass of ``--repeat`` reads under ``tracemalloc`` (after the RSS is taken: tracing costs
memory of its own), the median of the peak bytes it counts during a read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from canary.adapters.metrics.prometheus import PrometheusMetrics
from canary.core import evidence, promql
from canary.model.linkerd import LATENCY_BUCKETS_MS
from canary.ports import Arms
from canary.sim.traffic import Backend, Behaviour, Mesh

VARIANTS = ("whole", "streamed", "short")


def arms(n: int, namespace: str = "scale") -> list[Arms]:
    """The ``n`` rollouts' arms in ``namespace``, as the scale benchmark names them."""
    return [Arms(namespace, f"app-{i}", f"app-{i}-canary") for i in range(n)]


def answer(n: int, *, short: bool = False) -> bytes:
    """Prometheus' answer to the counters query of ``arms(n)``, one pod an arm, each pod's
    counters those of about 1000 requests served by the simulated mesh (``canary.sim.traffic``,
    its default latencies, 0.5% failures; seeded); ``short``: without the buckets equal to the
    pod's ``+Inf`` bucket, as the query asks since it left them out."""
    bounds = ["+Inf" if b == float("inf") else f"{b:g}" for b in LATENCY_BUCKETS_MS]
    mesh = Mesh(seed=0)
    samples = []
    for i, arm in enumerate(arms(n)):
        for j, deployment in enumerate((arm.stable, arm.canary)):
            pod = f"{deployment}-5d8f7c9b4-{i:05d}{j}"
            mesh.set_pod(pod, Behaviour(error_rate=0.005))
            mesh.advance(10.0, 100.0, {pod: Backend(1.0, (pod,))})
            served = mesh.inbound(pod)
            labels = {"deployment": deployment, "namespace": arm.namespace, "pod": pod}
            for classification, value in (
                ("failure", served.failures),
                ("success", served.successes),
            ):
                metric = {"classification": classification, **labels}
                samples.append(
                    {"metric": dict(sorted(metric.items())), "value": [1.7e9, f"{value}"]}
                )
            buckets = served.latency_total.buckets
            for le, value in zip(bounds, buckets, strict=True):
                if short and le != "+Inf" and value == buckets[-1]:
                    continue
                metric = {**labels, "le": le}
                samples.append(
                    {"metric": dict(sorted(metric.items())), "value": [1.7e9, f"{value}"]}
                )
    body = {"status": "success", "data": {"resultType": "vector", "result": samples}}
    return json.dumps(body, separators=(",", ":")).encode()


def serve(body: bytes) -> tuple[ThreadingHTTPServer, str]:
    """A loopback server answering every POST with ``body``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def measure(variant: str, n: int, repeat: int, url: str) -> dict[str, float]:
    """One variant's medians, in this interpreter."""
    metrics = PrometheusMetrics(url, timeout=60)
    targets = arms(n)

    def read() -> int:
        if variant == "whole":
            pairs = {(a.namespace, name) for a in targets for name in (a.stable, a.canary)}
            query = promql.counters_query(sorted(pairs))
            # What the client's custom_query does (read whole, decode, parse), posted: a GET
            # of the query at 1000 rollouts is longer than a URL may be.
            reply = metrics._session.post(f"{url}/api/v1/query", data={"query": query})
            return len(evidence.parse(json.loads(reply.content.decode())["data"]["result"]))
        return len(metrics.snapshot(targets))

    rss_before = _status_kb("VmRSS")
    pods = read()
    seconds, peaks = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        read()
        seconds.append(time.perf_counter() - started)
    hwm_kb = _status_kb("VmHWM")  # before tracing, whose own bookkeeping takes memory
    for _ in range(repeat):
        tracemalloc.start()
        read()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    metrics.close()
    return {
        "pods": pods,
        "seconds": statistics.median(seconds),
        "traced_mb": statistics.median(peaks) / 1e6,
        "hwm_mb": (hwm_kb - rss_before) / 1000,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the answer, measure each variant in its own interpreter, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="rollouts")
    parser.add_argument("--repeat", type=int, default=5, help="reads measured per variant")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(measure(args.variant, args.n, args.repeat, args.url)))
        return 0
    bodies = {variant: answer(args.n, short=variant == "short") for variant in VARIANTS}
    results = {variant: json.loads(body)["data"]["result"] for variant, body in bodies.items()}
    if evidence.parse(results["short"]) != evidence.parse(results["whole"]):
        raise SystemExit("the short answer reads back other counters than the whole one")
    rows, sizes = {}, {}
    for variant in VARIANTS:
        httpd, url = serve(bodies[variant])
        try:
            out = subprocess.run(
                [
                    *(sys.executable, "-m", "bench.snapshot_memory"),
                    *("--variant", variant, "--url", url),
                    *("--n", str(args.n), "--repeat", str(args.repeat)),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            rows[variant] = json.loads(out.splitlines()[-1])
        finally:
            httpd.shutdown()
            httpd.server_close()
        sizes[variant] = (len(results[variant]), len(bodies[variant]) / 1e6)
    print(f"{args.n} rollouts; medians of {args.repeat} reads\n")
    print(
        "| answer read | samples | MB of JSON | pods | s a read | peak traced MB a read "
        "| peak RSS over start, MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for variant, row in rows.items():
        samples, megabytes = sizes[variant]
        print(
            f"| {variant} | {samples} | {megabytes:.1f} | {row['pods']:.0f} | "
            f"{row['seconds']:.3f} | {row['traced_mb']:.1f} | {row['hwm_mb']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
