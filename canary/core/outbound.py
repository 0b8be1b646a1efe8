"""The one policy for every call canary makes on a tenant's behalf (notifications, gating hooks).

A Rollout's author chooses these URLs, and the controller calls them from inside the cluster, so
the policy decides what an author may make it reach:

- ``http`` or ``https`` only, no ``user:password@``, a host name or address and nothing odd;
- never a loopback, link-local (which holds the cloud metadata services), unspecified,
  multicast or known metadata address, whatever the operator allows;
- notification receivers must resolve to public addresses, unless the operator allows the
  host name or a network (:class:`Policy`, the controller's ``--outbound-allow`` flag);
- hooks may call only Services in the Rollout's own namespace
  (``<service>.<namespace>.svc[.cluster.local]``) or hosts the operator allows.

Redirects are never followed (the adapter does not follow them), so a receiver cannot bounce a
call elsewhere. :class:`Refused` messages never contain the URL, which may hold a secret.

Who calls it: ``canary.adapters.notifiers`` (after resolving the host, for every address, then
connecting to the address it checked) and the CLI (to parse the flag). Pure: no resolution here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack (also link-local)
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
    )
)
MAX_URL_LENGTH = 2048
_HOST = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.?$")


class Refused(ValueError):
    """A call the policy does not allow; the message says why without repeating the URL."""


@dataclass(frozen=True)
class Destination:
    """Where a checked URL points: scheme, host (lower case), port, and the request target."""

    scheme: str
    host: str
    port: int
    target: str


@dataclass(frozen=True)
class Policy:
    """What the operator allows beyond public addresses: host names (``hooks.example.com``, or
    ``.example.com`` for any name under it) and networks (``10.0.0.0/8``)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Policy:
        """A policy from flag values: host names, ``.suffix`` names, addresses or CIDRs."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            for entry in filter(None, (part.strip().lower() for part in raw.split(","))):
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                    continue
                except ValueError:
                    pass
                if not _HOST.match(entry.removeprefix(".")):
                    raise ValueError(f"{entry!r} is neither a host name nor an address or CIDR")
                hosts.add(entry)
        return cls(hosts=frozenset(hosts), networks=tuple(networks))

    def allows_host(self, host: str) -> bool:
        """Whether the operator allows ``host`` by name."""
        return host in self.hosts or any(h.startswith(".") and host.endswith(h) for h in self.hosts)

    def allows_address(self, address: IPAddress) -> bool:
        """Whether the operator allows ``address`` by network."""
        return any(address in network for network in self.networks)


def destination(url: str) -> Destination:
    """Where ``url`` points, when it is an http(s) URL canary may call at all; else Refused."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise Refused(f"not a URL of at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise Refused("the URL contains white space or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise Refused("not a well-formed URL") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("only http and https URLs are called")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Refused("the URL carries credentials (user:password@); keep them out of the host")
    if not host:
        raise Refused("the URL has no host")
    if port == 0:
        raise Refused("the URL's port is 0")
    if _address(host) is None and not _HOST.match(host):
        raise Refused("the URL's host is not a DNS name or an IP address")
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    default = 443 if parts.scheme == "https" else 80
    return Destination(parts.scheme, host.rstrip("."), port or default, target)


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _never_called(target: Destination, address: str) -> IPAddress:
    """``address`` as an IP address; Refused when it is one canary never calls."""
    ip = _address(address.split("%", 1)[0])
    if ip is None:
        raise Refused("the host resolved to something that is not an IP address")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or ip in METADATA_ADDRESSES
    ):
        raise Refused(f"{target.host} resolves to {ip}, a loopback, link-local or metadata address")
    return ip


def check_address(policy: Policy, target: Destination, address: str) -> None:
    """Refused unless ``target`` may be reached at ``address`` (one address its host resolved
    to; check every one, then connect to one that passed)."""
    ip = _never_called(target, address)
    if ip.is_global or policy.allows_host(target.host) or policy.allows_address(ip):
        return
    raise Refused(
        f"{target.host} resolves to {ip}, which is not public; the operator can allow it "
        "(--outbound-allow)"
    )


def check_hook(policy: Policy, url: str, namespace: str) -> Destination:
    """Where a gating hook of a Rollout in ``namespace`` may call: a Service of that namespace
    (``<service>.<namespace>.svc`` or ``….svc.cluster.local``) or a host the operator allows.
    Refused otherwise (its addresses are still checked with :func:`check_hook_address`)."""
    target = destination(url)
    labels = target.host.split(".")
    in_namespace = (
        len(labels) in (3, 5)
        and labels[1] == namespace
        and labels[2] == "svc"
        and labels[3:] in ([], ["cluster", "local"])
    )
    literal = _address(target.host)
    allowed = policy.allows_address(literal) if literal is not None else False
    if in_namespace or allowed or policy.allows_host(target.host):
        return target
    raise Refused(
        f"a hook may call only Services in namespace {namespace} "
        f"(<service>.{namespace}.svc) or hosts the operator allows, not {target.host}"
    )


def check_hook_address(target: Destination, address: str) -> None:
    """Refused when a hook's host (allowed by :func:`check_hook`) resolves to ``address`` and
    that is a loopback, link-local, unspecified, multicast or metadata address. Cluster
    addresses are private, so unlike a notification's they need no allow-list."""
    _never_called(target, address)
