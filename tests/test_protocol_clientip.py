"""Client IP resolution: X-Forwarded-For believed only from trusted proxies, right to left;
and the TANDEM_TRUSTED_PROXIES setting."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import SettingsFactory

from tandem.protocol.clientip import Address, Network, client_ip

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48"))


@pytest.mark.parametrize(
    ("remote", "xff", "expected"),
    [
        # Direct clients: the header is theirs to forge, so it is ignored.
        ("198.51.100.1", "1.2.3.4", "198.51.100.1"),
        ("198.51.100.1", None, "198.51.100.1"),
        # One trusted proxy in front.
        ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "", "10.0.0.1"),
        # The client prepended a forged hop; the proxy appended the real one.
        ("10.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        # Two trusted proxies are skipped.
        ("10.0.0.1", "6.6.6.6, 198.51.100.1, 10.1.2.3", "198.51.100.1"),
        # Every hop trusted: the leftmost.
        ("10.0.0.1", "10.0.0.3,10.0.0.2", "10.0.0.3"),
        # Malformed entries end the walk at the last good address.
        ("10.0.0.1", "198.51.100.1, not-an-ip", "10.0.0.1"),
        ("10.0.0.1", "not-an-ip, 10.0.0.2", "10.0.0.2"),
        ("10.0.0.1", "198.51.100.1, , 10.0.0.2", "10.0.0.2"),
        ("10.0.0.1", "198.51.100.1:443", "10.0.0.1"),
        # IPv6, and IPv4-mapped IPv6 peers.
        ("2001:db8:ffff::1", "2001:DB8:0:0::7", "2001:db8::7"),
        ("::ffff:10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("::ffff:198.51.100.1", None, "198.51.100.1"),
        ("10.0.0.1", " 2001:db8::9 ", "2001:db8::9"),
        # No usable peer address (a Unix socket): no trust.
        (None, "198.51.100.1", "unknown"),
        ("", "198.51.100.1", "unknown"),
        ("unix:/run/tandem.sock", "198.51.100.1", "unix:/run/tandem.sock"),
    ],
)
def test_client_ip(remote: str | None, xff: str | None, expected: str) -> None:
    assert client_ip(remote, xff, TRUSTED) == expected


def _normal(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(_normal(address) in network for network in networks)


addresses = st.ip_addresses()
# Often inside TRUSTED, so that chains mix trusted and untrusted hops.
hops = st.one_of(
    st.ip_addresses(network="10.0.0.0/8"),
    st.ip_addresses(network="2001:db8:ffff::/48"),
    st.ip_addresses(network="::ffff:10.0.0.0/104"),
    addresses,
)
networks = st.lists(
    st.builds(
        lambda address, bits: ipaddress.ip_network(
            (address, min(bits, address.max_prefixlen)), strict=False
        ),
        addresses,
        st.integers(min_value=0, max_value=128),
    ),
    max_size=3,
).map(lambda extra: TRUSTED + tuple(extra))


@given(remote=hops, chain=st.lists(hops, max_size=6))
def test_without_trusted_proxies_the_peer_is_the_client(
    remote: Address, chain: list[Address]
) -> None:
    xff = ", ".join(str(hop) for hop in chain)
    assert client_ip(str(remote), xff, ()) == str(_normal(remote))


@given(trusted=networks, remote=hops, chain=st.lists(hops, max_size=6))
def test_never_a_trusted_proxy_when_an_untrusted_hop_exists(
    trusted: tuple[Network, ...], remote: Address, chain: list[Address]
) -> None:
    result = ipaddress.ip_address(client_ip(str(remote), ", ".join(map(str, chain)), trusted))
    chain = [*chain, remote]
    if any(not _trusted(hop, trusted) for hop in chain):
        assert not _trusted(result, trusted)
        # ... and it is the rightmost such hop: nothing left of it is believed.
        rightmost = next(hop for hop in reversed(chain) if not _trusted(hop, trusted))
        assert result == _normal(rightmost)
    else:
        assert result == _normal(chain[0])


@given(
    trusted=networks,
    remote=hops,
    chain=st.lists(hops, max_size=4),
    junk=st.text(max_size=12).filter(lambda s: "," not in s),
)
def test_a_malformed_hop_stops_the_walk(
    trusted: tuple[Network, ...], remote: Address, chain: list[Address], junk: str
) -> None:
    try:
        ipaddress.ip_address(junk.strip())
    except ValueError:
        pass
    else:
        return  # not junk after all
    xff = ", ".join(["198.51.100.1", junk, *map(str, chain)])
    without_left = client_ip(str(remote), ", ".join(map(str, chain)), trusted)
    # Nothing left of the junk is ever believed (unless the walk stopped before it anyway).
    assert client_ip(str(remote), xff, trusted) == without_left


# --- the setting ----------------------------------------------------------------------


def test_trusted_proxies_setting(make_settings: SettingsFactory) -> None:
    assert make_settings().trusted_proxies == ()
    settings = make_settings(trusted_proxies=" 10.0.0.1, 192.168.0.0/16,,::1 ")
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("::1/128"),
    )
    assert client_ip("192.168.3.4", "198.51.100.1", settings.trusted_proxies) == "198.51.100.1"


def test_trusted_proxies_from_the_environment(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_TRUSTED_PROXIES", "127.0.0.1,fd00::/8")
    assert make_settings().trusted_proxies == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("fd00::/8"),
    )


@pytest.mark.parametrize("value", ["10.0.0.1/8", "proxy.example", "10.0.0.0/33"])
def test_trusted_proxies_refuses_bad_entries(make_settings: SettingsFactory, value: str) -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        make_settings(trusted_proxies=value)
