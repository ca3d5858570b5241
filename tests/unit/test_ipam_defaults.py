"""Unit tests of the default address pools and the choice of the next default subnet."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from itertools import islice

import pytest

from muslin.errors import InvalidParameter
from muslin.ipam import (
    GLOBAL_DEFAULT_BASE,
    LOCAL_DEFAULT_POOLS,
    PoolCandidates,
    PoolRule,
    global_default_pools,
    local_default_pools,
    next_default_subnet,
    parse_address_pools,
    pool_candidates,
)

EXHAUSTED = r"^all predefined address pools have been fully subnetted$"


def n(text: str) -> IPv4Network | IPv6Network:
    return ip_network(text)


def test_local_defaults_exactly_as_docker() -> None:
    expected = [f"172.{i}.0.0/16" for i in range(17, 32)] + [
        f"192.168.{16 * i}.0/20" for i in range(16)
    ]
    assert len(LOCAL_DEFAULT_POOLS) == 31
    assert [str(p) for p in LOCAL_DEFAULT_POOLS] == expected
    assert list(local_default_pools()) == list(LOCAL_DEFAULT_POOLS)


def test_taking_local_defaults_one_by_one() -> None:
    in_use: list[IPv4Network | IPv6Network] = []
    for _ in range(31):
        in_use.append(next_default_subnet(LOCAL_DEFAULT_POOLS, in_use, []))
    assert [str(p) for p in in_use[:16]] == [f"172.{i}.0.0/16" for i in range(17, 32)] + [
        "192.168.0.0/20"
    ]
    assert str(in_use[16]) == "192.168.16.0/20"
    assert str(in_use[-1]) == "192.168.240.0/20"
    with pytest.raises(InvalidParameter, match=EXHAUSTED):
        next_default_subnet(LOCAL_DEFAULT_POOLS, in_use, [])
    # The lazy form gives the same answers.
    with pytest.raises(InvalidParameter, match=EXHAUSTED):
        next_default_subnet(local_default_pools(), in_use, [])


def test_lazy_and_plain_candidates_agree() -> None:
    in_use = [n("172.17.0.0/16"), n("172.19.5.0/24"), n("192.168.0.0/18")]
    avoid = [n("172.18.0.0/15"), n("10.0.0.0/8")]
    lazy = local_default_pools()
    taken: list[IPv4Network | IPv6Network] = list(in_use)
    while True:
        try:
            a = next_default_subnet(lazy, taken, avoid)
        except InvalidParameter:
            with pytest.raises(InvalidParameter):
                next_default_subnet(LOCAL_DEFAULT_POOLS, taken, avoid)
            break
        assert a == next_default_subnet(LOCAL_DEFAULT_POOLS, taken, avoid)
        taken.append(a)
    assert n("192.168.64.0/20") in taken and n("192.168.48.0/20") not in taken


def test_host_routes_are_skipped_but_default_routes_ignored() -> None:
    avoid = [n("0.0.0.0/0"), n("::/0"), n("172.17.0.0/16"), n("172.18.3.0/24")]
    assert next_default_subnet(LOCAL_DEFAULT_POOLS, [], avoid) == n("172.19.0.0/16")
    # A route covering several pools skips them all.
    assert next_default_subnet(LOCAL_DEFAULT_POOLS, [], [n("172.16.0.0/12")]) == n("192.168.0.0/20")
    # An in-use subnet inside a candidate blocks it too.
    assert next_default_subnet(LOCAL_DEFAULT_POOLS, [n("172.17.9.0/24")], []) == n("172.18.0.0/16")
    # Other families never block.
    assert next_default_subnet(LOCAL_DEFAULT_POOLS, [n("fd00::/8")], [n("::/1")]) == n(
        "172.17.0.0/16"
    )


def test_ipv6_candidates() -> None:
    rules = parse_address_pools([{"base": "fd00:1::/48", "size": 64}])
    cands = pool_candidates(rules, version=6)
    assert len(cands) == 65536
    assert next_default_subnet(cands, [n("fd00:1::/64")], []) == n("fd00:1:0:1::/64")


def test_global_defaults() -> None:
    g = global_default_pools()
    assert PoolRule(n("10.0.0.0/8"), 24) == GLOBAL_DEFAULT_BASE
    assert len(g) == 65536
    assert g[0] == n("10.0.0.0/24") and g[1] == n("10.0.1.0/24")
    assert g[-1] == n("10.255.255.0/24") and g[256] == n("10.1.0.0/24")
    assert g[1:3] == [n("10.0.1.0/24"), n("10.0.2.0/24")]
    with pytest.raises(IndexError):
        g[65536]
    assert next(iter(g)) == n("10.0.0.0/24")


def test_global_defaults_with_thousands_in_use() -> None:
    g = global_default_pools()
    in_use = [s for i, s in enumerate(islice(g, 20_000)) if i != 12_345]
    assert next_default_subnet(g, in_use, []) == g[12_345]
    # Same answer by plain iteration, which costs O(n log m).
    assert next_default_subnet(iter(g), in_use, []) == g[12_345]
    in_use.append(g[12_345])
    assert g[20_000] == n("10.78.32.0/24")
    assert next_default_subnet(g, in_use, []) == g[20_000]
    assert next_default_subnet(g, in_use, [n("10.78.0.0/15")]) == n("10.80.0.0/24")
    assert next_default_subnet(g, in_use, [n("10.78.0.0/16")]) == n("10.79.0.0/24")


def test_global_defaults_exhausted_quickly() -> None:
    with pytest.raises(InvalidParameter, match=EXHAUSTED):
        next_default_subnet(global_default_pools(), [n("10.0.0.0/8")], [])
    with pytest.raises(InvalidParameter, match=EXHAUSTED):
        next_default_subnet(global_default_pools(), [n(f"10.{i}.0.0/16") for i in range(256)], [])
    # Odd-sized blocks in use still leave the aligned /24s between them.
    in_use = [n(f"10.0.{i}.{j}/30") for i in range(300 // 256 + 1) for j in range(0, 256, 8)]
    assert next_default_subnet(global_default_pools(), in_use, []) == n("10.0.2.0/24")


def test_parse_address_pools() -> None:
    rules = parse_address_pools(
        [{"base": "10.10.0.0/16", "size": 24}, {"Base": "fd00::/56", "SIZE": 64}]
    )
    assert rules == [PoolRule(n("10.10.0.0/16"), 24), PoolRule(n("fd00::/56"), 64)]
    assert rules[0].to_dict() == {"base": "10.10.0.0/16", "size": 24}
    assert parse_address_pools([]) == []
    # Host bits are cleared, as Docker does.
    assert parse_address_pools([{"base": "10.10.1.0/16", "size": 24}])[0].base == n("10.10.0.0/16")


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ({"base": "10.0.0.0/8"}, r"^default-address-pools: expected a list"),
        (["10.0.0.0/8"], r"^default-address-pools\[0\]: expected an object"),
        ([{"size": 24}], r"^default-address-pools\[0\]\.base: missing"),
        ([{"base": "10.0.0.0/8"}], r"^default-address-pools\[0\]\.size: missing"),
        (
            [{"base": "10.0.0.0/8", "size": 24}, {"base": "nope", "size": 24}],
            r"^default-address-pools\[1\]\.base: invalid CIDR block 'nope'",
        ),
        ([{"base": 10, "size": 24}], r"^default-address-pools\[0\]\.base: invalid CIDR block"),
        (
            [{"base": "10.0.0.0/8", "size": "24"}],
            r"^default-address-pools\[0\]\.size: expected "
            r"an integer",
        ),
        ([{"base": "10.0.0.0/8", "size": True}], r"^default-address-pools\[0\]\.size: expected"),
        (
            [{"base": "10.0.0.0/16", "size": 8}],
            r"^default-address-pools\[0\]\.size: /8 does not "
            r"fit base 10.0.0.0/16; size must be between 16 and 32$",
        ),
        ([{"base": "10.0.0.0/16", "size": 33}], r"^default-address-pools\[0\]\.size: /33"),
        ([{"base": "10.0.0.0/16", "size": 0}], r"^default-address-pools\[0\]\.size: /0"),
        (
            [{"base": "10.0.0.0/16", "size": 24, "scope": "local"}],
            r"^default-address-pools\[0\]\.scope: unknown key",
        ),
        (
            [{"base": "10.0.0.0/16", "size": 24, "Size": 20}],
            r"^default-address-pools\[0\]\.Size: given twice",
        ),
    ],
)
def test_parse_address_pools_errors_name_the_field(spec: object, pattern: str) -> None:
    with pytest.raises(InvalidParameter, match=pattern):
        parse_address_pools(spec)


def test_pool_candidates_order_like_docker() -> None:
    rules = parse_address_pools(
        [
            {"base": "10.20.0.0/16", "size": 24},
            {"base": "10.10.0.0/16", "size": 24},
            {"base": "10.10.128.0/17", "size": 20},  # overlaps the one before: dropped
            {"base": "fd00::/56", "size": 64},
        ]
    )
    v4 = pool_candidates(rules, version=4)
    assert [(str(r.base), r.size) for r in v4.rules] == [("10.10.0.0/16", 24), ("10.20.0.0/16", 24)]
    assert v4[0] == n("10.10.0.0/24") and v4[256] == n("10.20.0.0/24")
    assert len(pool_candidates(rules)) == 512 + 256
    assert isinstance(pool_candidates(rules, version=6), PoolCandidates)
    assert next_default_subnet(v4, [n("10.10.0.0/16")], []) == n("10.20.0.0/24")


def test_pool_rule_checks_size() -> None:
    with pytest.raises(ValueError):
        PoolRule(n("10.0.0.0/16"), 8)
