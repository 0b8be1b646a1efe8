"""The outbound URL policy refuses port 0 and resolved addresses that are not IP addresses."""

from __future__ import annotations

import pytest

from canary.core import outbound


def test_port_zero_is_refused() -> None:
    """A URL with port 0 is refused; the same URL with a real port is a destination."""
    with pytest.raises(outbound.Refused, match="port is 0"):
        outbound.destination("https://hooks.example.com:0/notify")
    assert outbound.destination("https://hooks.example.com:8443/notify").port == 8443


def test_a_resolved_name_that_is_not_an_ip_address_is_refused() -> None:
    """An address that is not an IP address (a name handed back by a resolver) is refused."""
    target = outbound.destination("https://hooks.example.com/notify")
    with pytest.raises(outbound.Refused, match="not an IP address"):
        outbound.check_address(outbound.Policy(), target, "hooks.example.com")
    outbound.check_address(outbound.Policy(), target, "93.184.216.34")
