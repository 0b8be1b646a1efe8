"""The emulator's /metrics text follows the Linkerd proxy's format rules (LINKERD.md)."""

import re
from pathlib import Path

from canary.model.linkerd import LATENCY_BUCKETS_MS
from canary.sim.exposition import (
    CONTENT_TYPE,
    Destination,
    format_labels,
    identity,
    inbound_labels,
    outbound_labels,
    render,
)
from canary.sim.traffic import Backend, Behaviour, Counters, Histogram, Mesh

GOLDEN = Path(__file__).parent / "golden" / "proxy_metrics_inbound_two_statuses.txt"

LINE = re.compile(
    r'^(?P<name>[a-z_]+)\{(?P<labels>(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\} (?P<value>\S+)$'
)
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def _samples(text: str) -> list[tuple[str, list[tuple[str, str]], str]]:
    samples = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match, line
        samples.append((match["name"], LABEL.findall(match["labels"]), match["value"]))
    return samples


def _busy_pod() -> Counters:
    mesh = Mesh(seed=4)
    mesh.set_pod("p0", Behaviour(error_rate=0.1, latency_p50_ms=40, latency_p99_ms=3000))
    mesh.advance(60.0, 50, {"svc": Backend(1, ("p0",))})
    return mesh.inbound("p0")


INBOUND = inbound_labels(pod_ip="10.0.0.7", port=9898, client_id=identity("loadgen", "test"))


def test_golden_text_for_a_known_set_of_counters() -> None:
    """Two responses at 7 and 28 ms and one fast 502 render exactly as the proxy prints them."""
    ok = Histogram(buckets=(0,) * 5 + (1, 1) + (2,) * 19, sum_ms=35)
    failed = Histogram(buckets=(1,) * 26, sum_ms=0)
    counters = Counters(requests=3, responses={502: 1, 200: 2}, latency={502: failed, 200: ok})
    labels = (("direction", "inbound"), ("target_addr", "10.0.0.7:9898"))
    assert render([(labels, counters)]) == GOLDEN.read_text()
    assert CONTENT_TYPE == "text/plain"


def test_inbound_target_labels_come_in_the_proxy_order() -> None:
    """Inbound series carry direction, target, tls and client_id, then server/route/authz labels."""
    assert [name for name, _ in INBOUND] == [
        "direction", "target_addr", "target_ip", "target_port", "tls", "client_id",
        "srv_group", "srv_kind", "srv_name", "srv_port",
        "route_group", "route_kind", "route_name",
        "authz_group", "authz_kind", "authz_name",
    ]  # fmt: skip
    assert dict(INBOUND)["client_id"] == (
        "loadgen.test.serviceaccount.identity.linkerd.cluster.local"
    )


def test_response_total_appends_status_classification_grpc_status_error() -> None:
    """response_total labels are the target labels, then status_code, classification, grpc_status,
    error."""
    for name, labels, _ in _samples(render([(INBOUND, _busy_pod())])):
        names = [n for n, _ in labels]
        if name == "response_total":
            assert names == [n for n, _ in INBOUND] + [
                "status_code", "classification", "grpc_status", "error",
            ]  # fmt: skip
            status, classification = dict(labels)["status_code"], dict(labels)["classification"]
            assert classification == ("failure" if status.startswith("5") else "success")
        elif name == "response_latency_ms_bucket":
            assert names == [n for n, _ in INBOUND] + ["status_code", "le"]
        else:
            assert names == [n for n, _ in INBOUND] + (["status_code"] if "latency" in name else [])


def test_every_value_is_an_integer_and_buckets_use_the_26_bounds() -> None:
    """Values print as integers; each histogram has the 26 bounds in order, then _count, _sum."""
    samples = _samples(render([(INBOUND, _busy_pod())]))
    assert all(re.fullmatch(r"\d+", value) for _, _, value in samples)
    expected_le = [str(int(b)) for b in LATENCY_BUCKETS_MS[:-1]] + ["+Inf"]
    histograms = [s for s in samples if s[0].startswith("response_latency_ms")]
    assert len(histograms) == 2 * 28
    for start in (0, 28):
        group = histograms[start : start + 28]
        assert [dict(labels)["le"] for _, labels, _ in group[:26]] == expected_le
        assert [name for name, _, _ in group[26:]] == [
            "response_latency_ms_count", "response_latency_ms_sum",
        ]  # fmt: skip
        counts = [int(value) for _, _, value in group[:26]]
        assert counts == sorted(counts)
        assert counts[-1] == int(group[26][2])


def test_label_sets_without_requests_print_only_the_family_headers() -> None:
    """A pod that has seen no request prints HELP/TYPE lines and # EOF but no sample."""
    text = render([(INBOUND, Counters(requests=0, responses={}, latency={}))])
    assert all(line.startswith("#") for line in text.splitlines())
    assert text.endswith("# EOF\n")


def test_outbound_labels_name_the_destination_and_its_identity() -> None:
    """Outbound series carry the authority, the endpoint, server_id and the dst_* labels."""
    dst = Destination(
        namespace="test", service="podinfo-canary", port=9898, pod="podinfo-canary-abc-1",
        pod_ip="10.0.0.9", deployment="podinfo-canary", pod_template_hash="abc",
        service_account="podinfo",
    )  # fmt: skip
    labels = dict(outbound_labels(dst))
    assert labels["authority"] == "podinfo-canary.test.svc.cluster.local:9898"
    assert labels["target_addr"] == "10.0.0.9:9898"
    assert labels["server_id"] == "podinfo.test.serviceaccount.identity.linkerd.cluster.local"
    assert labels["dst_deployment"] == "podinfo-canary"
    assert labels["dst_service"] == "podinfo-canary"
    no_endpoint = outbound_labels(Destination(namespace="test", service="x", port=80))
    assert no_endpoint == (
        ("direction", "outbound"),
        ("authority", "x.test.svc.cluster.local:80"),
    )


def test_label_values_are_escaped() -> None:
    """Backslashes, quotes and newlines in label values are escaped as the text format requires."""
    assert format_labels((("a", 'x"y\\z\nw'),)) == 'a="x\\"y\\\\z\\nw"'
