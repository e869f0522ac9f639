"""Which address a call comes from: the peer, or the client a trusted proxy names."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from grpc_services.interceptors.rate_limit import ClientAddresses, client_address

PROXY = "ipv4:10.1.2.3:40000"
TRUSTING = ClientAddresses([ip_network("10.0.0.0/8"), ip_network("fd00::/8")])


def xff(value: str) -> list[tuple[str, str]]:
    return [("x-forwarded-for", value)]


def test_peer_strings() -> None:
    assert client_address("ipv4:127.0.0.1:5555") == "127.0.0.1"
    assert client_address("ipv6:[::1]:5555") == "::1"
    assert client_address("ipv6:[::ffff:192.0.2.7]:5555") == "192.0.2.7"
    assert client_address("unix:/tmp/sock") == "unix:/tmp/sock"


@pytest.mark.parametrize(
    "metadata",
    [xff("203.0.113.9"), [("x-real-ip", "203.0.113.9")], xff("203.0.113.9, 10.9.9.9")],
)
def test_an_untrusted_peer_cannot_name_another_client(metadata: list[tuple[str, str]]) -> None:
    assert ClientAddresses().resolve("ipv4:198.51.100.1:5555", metadata) == "198.51.100.1"
    assert TRUSTING.resolve("ipv4:198.51.100.1:5555", metadata) == "198.51.100.1"


def test_a_trusted_proxy_names_the_client() -> None:
    assert TRUSTING.resolve(PROXY, xff("203.0.113.9")) == "203.0.113.9"
    assert TRUSTING.resolve(PROXY, [("x-real-ip", "203.0.113.9")]) == "203.0.113.9"
    assert TRUSTING.resolve(PROXY, []) == "10.1.2.3"  # no header: the proxy itself


def test_the_right_most_untrusted_hop_wins() -> None:
    # The client wrote the first two itself; the proxies appended the rest.
    spoofed = "1.1.1.1, 2.2.2.2, 203.0.113.9, 10.5.5.5"
    assert TRUSTING.resolve(PROXY, xff(spoofed)) == "203.0.113.9"
    # Several headers count as one list, in order.
    assert TRUSTING.resolve(PROXY, [*xff("1.1.1.1"), *xff("203.0.113.9, 10.5.5.5")]) == "203.0.113.9"
    # X-Forwarded-For is preferred to X-Real-IP.
    assert TRUSTING.resolve(PROXY, [("x-real-ip", "1.1.1.1"), *xff("203.0.113.9")]) == "203.0.113.9"


def test_hop_forms_and_garbage() -> None:
    assert TRUSTING.resolve(PROXY, xff("[2001:db8::1]:443")) == "2001:db8::1"
    assert TRUSTING.resolve(PROXY, xff("203.0.113.9:8080")) == "203.0.113.9"
    assert TRUSTING.resolve("ipv6:[fd00::1]:80", xff("203.0.113.9")) == "203.0.113.9"
    # Garbage ends the trust: the last proxy read is the client then.
    assert TRUSTING.resolve(PROXY, xff("203.0.113.9, not-an-ip, 10.5.5.5")) == "10.5.5.5"
    assert TRUSTING.resolve(PROXY, xff("unknown")) == "10.1.2.3"
    assert TRUSTING.resolve(PROXY, [("x-real-ip", "nonsense")]) == "10.1.2.3"
    # Every hop trusted: the one furthest away.
    assert TRUSTING.resolve(PROXY, xff("10.7.7.7, 10.5.5.5")) == "10.7.7.7"
