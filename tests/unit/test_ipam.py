"""Unit tests of the pure IPAM core: pool validation, reservations, allocation."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest

import muslin.ipam as ipam
from muslin.errors import Forbidden, InvalidParameter, Unavailable
from muslin.ipam import IPAMPool, Pool, allocate, check_no_overlap, reserved, validate_pool


def a(text: str) -> IPv4Address | IPv6Address:
    return ip_address(text)


def pool(subnet: str, **kw: object) -> Pool:
    return validate_pool(IPAMPool(subnet, **kw))  # type: ignore[arg-type]


# --- validation -------------------------------------------------------------------------


def test_public_shape_of_ipampool() -> None:
    p = IPAMPool(subnet="172.28.0.0/16", ip_range=None, gateway=None, aux_addresses={})
    assert validate_pool(p).subnet == ip_network("172.28.0.0/16")
    assert IPAMPool("10.0.0.0/8") == IPAMPool("10.0.0.0/8", None, None, {})


def test_defaults_gateway_to_first_host_of_subnet() -> None:
    p = pool("172.28.0.0/16")
    assert p.gateway == a("172.28.0.1")
    assert p.ip_range is None
    assert p.aux_addresses == {}


def test_default_gateway_is_lowest_free_address_of_ip_range() -> None:
    # Docker asks IPAM for the gateway with the pool's sub-pool, so it comes from the range,
    # and only the subnet's network and broadcast addresses are reserved.
    assert pool("172.28.0.0/16", ip_range="172.28.5.0/24").gateway == a("172.28.5.0")
    assert pool("172.28.0.0/16", ip_range="172.28.0.0/24").gateway == a("172.28.0.1")
    assert pool("172.28.0.0/16", ip_range="172.28.7.7/32").gateway == a("172.28.7.7")
    for only_reserved in ("172.28.0.0/32", "172.28.255.255/32"):
        with pytest.raises(InvalidParameter, match=r"^ip_range: .*no available addresses"):
            pool("172.28.0.0/16", ip_range=only_reserved)


def test_explicit_gateway_may_lie_outside_ip_range() -> None:
    p = pool("10.1.0.0/16", ip_range="10.1.2.0/24", gateway="10.1.0.254")
    assert p.gateway == a("10.1.0.254")


def test_need_gateway_false_leaves_it_out() -> None:
    p = validate_pool(IPAMPool("10.1.0.0/24"), need_gateway=False)
    assert p.gateway is None
    assert reserved(p) == {a("10.1.0.0"), a("10.1.0.255")}
    assert allocate(p, set()) == a("10.1.0.1")
    # A gateway that is given is still validated and reserved.
    p = validate_pool(IPAMPool("10.1.0.0/24", gateway="10.1.0.9"), need_gateway=False)
    assert p.gateway == a("10.1.0.9")


def test_empty_strings_mean_not_given() -> None:
    p = pool("10.2.0.0/24", ip_range="", gateway="")
    assert p.ip_range is None
    assert p.gateway == a("10.2.0.1")


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"subnet": ""}, r"^subnet: a subnet is required"),
        ({"subnet": "banana"}, r"^subnet: invalid subnet banana: invalid CIDR block notation"),
        ({"subnet": "10.0.0.0"}, r"^subnet: invalid subnet 10.0.0.0: invalid CIDR"),
        ({"subnet": "10.0.0.0/33"}, r"^subnet: invalid subnet 10.0.0.0/33: invalid CIDR"),
        ({"subnet": "10.0.0.0/255.0.0.0"}, r"^subnet: .*invalid CIDR block notation"),
        (
            {"subnet": "172.28.1.0/16"},
            r"^subnet: invalid subnet 172.28.1.0/16: it should be "
            r"172.28.0.0/16$",
        ),
        ({"subnet": "0.0.0.0/0"}, r"^subnet: .*unspecified"),
        ({"subnet": 17}, r"^subnet: expected a string"),
        (
            {"subnet": "10.0.0.0/16", "ip_range": "10.0.0.0"},
            r"^ip_range: invalid ip-range "
            r"10.0.0.0: invalid CIDR block notation",
        ),
        (
            {"subnet": "10.0.0.0/16", "ip_range": "fd00::/64"},
            r"^ip_range: invalid ip-range "
            r"fd00::/64: parent subnet is an IPv4 block$",
        ),
        (
            {"subnet": "10.0.0.0/16", "ip_range": "10.0.0.0/8"},
            r"^ip_range: .*CIDR block is "
            r"bigger than its parent subnet 10.0.0.0/16$",
        ),
        (
            {"subnet": "10.0.0.0/16", "ip_range": "10.0.1.7/24"},
            r"^ip_range: .*it should be "
            r"10.0.1.0/24$",
        ),
        (
            {"subnet": "10.0.0.0/16", "ip_range": "10.1.0.0/24"},
            r"^ip_range: .*parent subnet "
            r"10.0.0.0/16 doesn't contain ip-range$",
        ),
        (
            {"subnet": "10.0.0.0/16", "gateway": "10.0.0.1/16"},
            r"^gateway: invalid gateway "
            r"10.0.0.1/16: invalid address",
        ),
        (
            {"subnet": "10.0.0.0/16", "gateway": "fd00::1"},
            r"^gateway: .*parent subnet is an "
            r"IPv4 block$",
        ),
        (
            {"subnet": "10.0.0.0/16", "gateway": "10.1.0.1"},
            r"^gateway: invalid gateway 10.1.0.1: "
            r"parent subnet 10.0.0.0/16 doesn't contain this address$",
        ),
        (
            {"subnet": "10.0.0.0/16", "gateway": "10.0.0.0"},
            r"^gateway: failed to allocate "
            r"gateway \(10.0.0.0\): Address already in use \(10.0.0.0 is the network address",
        ),
        (
            {"subnet": "10.0.0.0/16", "gateway": "10.0.255.255"},
            r"^gateway: .*Address already in "
            r"use \(10.0.255.255 is the broadcast address",
        ),
        ({"subnet": "10.0.0.0/16", "gateway": "fe80::1%eth0"}, r"^gateway: .*invalid address"),
        (
            {"subnet": "10.0.0.0/16", "aux_addresses": {"host": "nope"}},
            r"^aux_addresses\[host\]: "
            r"invalid auxiliary address nope: invalid address",
        ),
        (
            {"subnet": "10.0.0.0/16", "aux_addresses": {"host": "10.9.0.1"}},
            r"^aux_addresses\[host\]: .*parent subnet 10.0.0.0/16 doesn't contain this address$",
        ),
        (
            {"subnet": "10.0.0.0/16", "aux_addresses": {"host": "::1"}},
            r"^aux_addresses\[host\]: .*parent subnet is an IPv4 block$",
        ),
        (
            {"subnet": "10.0.0.0/16", "aux_addresses": {"host": 5}},
            r"^aux_addresses\[host\]: "
            r"expected an address string",
        ),
        ({"subnet": "10.0.0.0/16", "aux_addresses": ["10.0.0.5"]}, r"^aux_addresses: expected"),
        (
            {"subnet": "10.0.0.0/16", "aux_addresses": {"a": "10.0.0.5", "b": "10.0.0.5"}},
            r"^aux_addresses\[b\]: failed to allocate secondary ip address \(b:10.0.0.5\): Address "
            r"already in use \(10.0.0.5 is auxiliary address a\)$",
        ),
        (
            {"subnet": "10.0.0.0/16", "aux_addresses": {"net": "10.0.0.0"}},
            r"^aux_addresses\[net\]: .*Address already in use \(10.0.0.0 is the network address",
        ),
        (
            {"subnet": "10.0.0.0/16", "gateway": "10.0.0.9", "aux_addresses": {"x": "10.0.0.9"}},
            r"^aux_addresses\[x\]: .*Address already in use \(10.0.0.9 is the gateway\)$",
        ),
        ({"subnet": "fd00::/64", "gateway": "fd00::"}, r"^gateway: .*Subnet-Router anycast"),
        (
            {"subnet": "fd00::/128"},
            r"^subnet: failed to allocate gateway: no available "
            r"addresses on this pool",
        ),
    ],
)
def test_validation_errors_name_the_field(kw: dict[str, object], pattern: str) -> None:
    with pytest.raises(InvalidParameter, match=pattern):
        validate_pool(IPAMPool(**kw))  # type: ignore[arg-type]


def test_aux_address_on_the_default_gateway_fails_as_in_docker() -> None:
    # Docker picks the default gateway before it reserves auxiliary addresses.
    with pytest.raises(InvalidParameter, match=r"10.0.0.1 is the gateway"):
        pool("10.0.0.0/24", aux_addresses={"router": "10.0.0.1"})
    p = pool("10.0.0.0/24", gateway="10.0.0.254", aux_addresses={"router": "10.0.0.1"})
    assert p.aux_addresses == {"router": a("10.0.0.1")}


def test_aux_addresses_outside_ip_range_are_kept_and_reserved() -> None:
    p = pool("10.3.0.0/16", ip_range="10.3.1.0/24", aux_addresses={"h": "10.3.0.7"})
    assert a("10.3.0.7") in reserved(p)
    with pytest.raises(
        Forbidden,
        match=r"^Address already in use \(10.3.0.7 is auxiliary "
        r"address h\)$",
    ):
        allocate(p, set(), a("10.3.0.7"))


# --- small subnets ----------------------------------------------------------------------


def test_ipv4_slash31_and_slash32_reserve_neither_end() -> None:
    p31 = pool("10.0.0.0/31")
    assert p31.gateway == a("10.0.0.0")
    assert reserved(p31) == {a("10.0.0.0")}
    assert allocate(p31, set()) == a("10.0.0.1")
    with pytest.raises(Unavailable):
        allocate(p31, {a("10.0.0.1")})
    p32 = pool("10.0.0.7/32")
    assert p32.gateway == a("10.0.0.7")
    with pytest.raises(Unavailable, match=r"^no available addresses on this pool$"):
        allocate(p32, set())
    p30 = pool("10.0.0.4/30")
    assert reserved(p30) == {a("10.0.0.4"), a("10.0.0.7"), a("10.0.0.5")}
    assert allocate(p30, set()) == a("10.0.0.6")


def test_ipv6_small_subnets_always_reserve_the_anycast_address() -> None:
    p = pool("fd00::/127")
    assert p.gateway == a("fd00::1")
    with pytest.raises(Unavailable):
        allocate(p, set())


# --- reservations and dynamic allocation ------------------------------------------------


def test_reserved_addresses() -> None:
    p = pool("192.168.10.0/24", gateway="192.168.10.254", aux_addresses={"x": "192.168.10.3"})
    assert reserved(p) == {
        a("192.168.10.0"),
        a("192.168.10.255"),
        a("192.168.10.254"),
        a("192.168.10.3"),
    }


def test_lowest_free_first_and_reserved_never_handed_out() -> None:
    p = pool("10.5.0.0/29", aux_addresses={"x": "10.5.0.3"})
    got: set[IPv4Address | IPv6Address] = set()
    order = []
    while True:
        try:
            addr = allocate(p, got)
        except Unavailable as e:
            assert str(e) == "no available addresses on this pool"
            break
        order.append(str(addr))
        got.add(addr)
    # .0 network, .1 gateway, .3 aux, .7 broadcast
    assert order == ["10.5.0.2", "10.5.0.4", "10.5.0.5", "10.5.0.6"]


def test_release_makes_address_reusable() -> None:
    p = pool("10.6.0.0/24")
    held = {allocate(p, set())}
    held.add(allocate(p, held))
    held.add(allocate(p, held))
    assert held == {a("10.6.0.2"), a("10.6.0.3"), a("10.6.0.4")}
    held.remove(a("10.6.0.3"))
    assert allocate(p, held) == a("10.6.0.3")


def test_dynamic_allocation_stays_in_ip_range() -> None:
    p = pool("10.7.0.0/16", ip_range="10.7.3.0/30")
    assert p.gateway == a("10.7.3.0")
    held: set[IPv4Address | IPv6Address] = set()
    for _ in range(3):
        held.add(allocate(p, held))
    assert held == {a("10.7.3.1"), a("10.7.3.2"), a("10.7.3.3")}
    with pytest.raises(Unavailable, match=r"^no available addresses on this pool$"):
        allocate(p, held)
    # Outside the range but inside the subnet, a static request still works.
    assert allocate(p, held, a("10.7.9.9")) == a("10.7.9.9")


def test_ip_range_at_end_of_subnet_skips_broadcast() -> None:
    p = pool("10.8.0.0/24", ip_range="10.8.0.252/30")
    assert p.gateway == a("10.8.0.252")
    held = {allocate(p, set())}
    held.add(allocate(p, held))
    assert held == {a("10.8.0.253"), a("10.8.0.254")}
    with pytest.raises(Unavailable):
        allocate(p, held)


# --- static requests --------------------------------------------------------------------


def test_static_requests() -> None:
    p = pool("10.9.0.0/24", ip_range="10.9.0.128/25")
    assert allocate(p, set(), a("10.9.0.50")) == a("10.9.0.50")
    with pytest.raises(Forbidden) as ei:
        allocate(p, {a("10.9.0.50")}, a("10.9.0.50"))
    assert str(ei.value) == "Address already in use"
    with pytest.raises(Forbidden, match=r"^Address already in use \(10.9.0.128 is the gateway\)$"):
        allocate(p, set(), a("10.9.0.128"))
    with pytest.raises(Forbidden, match=r"^Address already in use \(10.9.0.0 is the network"):
        allocate(p, set(), a("10.9.0.0"))
    with pytest.raises(Forbidden, match=r"^Address already in use \(10.9.0.255 is the broad"):
        allocate(p, set(), a("10.9.0.255"))
    with pytest.raises(InvalidParameter, match=r"^requested address is out of range \(10.10.0.1"):
        allocate(p, set(), a("10.10.0.1"))
    with pytest.raises(InvalidParameter, match=r"^requested address is out of range"):
        allocate(p, set(), a("::1"))


def test_errors_map_to_docker_status_codes() -> None:
    p = pool("10.11.0.0/30")
    with pytest.raises(Unavailable) as e1:
        allocate(p, {a("10.11.0.2")})
    assert e1.value.http_status == 503
    with pytest.raises(Forbidden) as e2:
        allocate(p, set(), a("10.11.0.1"))
    assert e2.value.http_status == 403
    with pytest.raises(InvalidParameter) as e3:
        pool("10.11.0.1/30")
    assert e3.value.http_status == 400


# --- IPv6 -------------------------------------------------------------------------------


def test_ipv6_pool() -> None:
    p = pool(
        "2001:db8:1::/64", ip_range="2001:db8:1::100/120", aux_addresses={"r": "2001:db8:1::2"}
    )
    assert p.gateway == a("2001:db8:1::100")
    assert reserved(p) == {a("2001:db8:1::"), a("2001:db8:1::100"), a("2001:db8:1::2")}
    assert a("2001:db8:1::ffff:ffff:ffff:ffff") not in reserved(p)  # no broadcast in IPv6
    held = {allocate(p, set())}
    assert held == {a("2001:db8:1::101")}
    assert allocate(p, held) == a("2001:db8:1::102")
    assert allocate(p, held, a("2001:db8:1::ffff:ffff:ffff:ffff")) == a(
        "2001:db8:1::ffff:ffff:ffff:ffff"
    )
    with pytest.raises(InvalidParameter, match="out of range"):
        allocate(p, held, a("10.0.0.1"))
    with pytest.raises(InvalidParameter, match=r"^ip_range: .*parent subnet is an IPv6 block$"):
        pool("2001:db8:1::/64", ip_range="10.0.0.0/24")
    with pytest.raises(
        InvalidParameter,
        match=r"^subnet: invalid subnet 2001:db8:1::1/64: it "
        r"should be 2001:db8:1::/64$",
    ):
        pool("2001:db8:1::1/64")


def test_ipv6_default_gateway_is_first_host() -> None:
    assert pool("fd00:1::/64").gateway == a("fd00:1::1")


# --- persistence ------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip() -> None:
    for p in (
        pool("172.28.0.0/16", ip_range="172.28.5.0/24", aux_addresses={"h": "172.28.1.5"}),
        pool("fd00:1::/64", gateway="fd00:1::fe"),
        validate_pool(IPAMPool("10.0.0.0/24"), need_gateway=False),
    ):
        d = p.to_dict()
        assert all(isinstance(v, str | None | dict) for v in d.values())
        assert Pool.from_dict(d) == p
        assert validate_pool(p.to_ipam_pool()) == p or p.gateway is None
    assert pool("10.0.0.0/24").to_dict() == {
        "subnet": "10.0.0.0/24",
        "ip_range": None,
        "gateway": "10.0.0.1",
        "aux_addresses": {},
    }


def test_from_dict_rejects_bad_data() -> None:
    with pytest.raises(InvalidParameter, match=r"^subnet: "):
        Pool.from_dict({"gateway": "10.0.0.1"})
    with pytest.raises(InvalidParameter, match=r"^gateway: "):
        Pool.from_dict({"subnet": "10.0.0.0/24", "gateway": 7})
    with pytest.raises(InvalidParameter, match=r"^aux_addresses: "):
        Pool.from_dict({"subnet": "10.0.0.0/24", "aux_addresses": "x"})


def test_pools_are_hashable() -> None:
    assert len({pool("10.0.0.0/24"), pool("10.0.0.0/24")}) == 1


# --- overlap ----------------------------------------------------------------------------


def test_overlap() -> None:
    n = ip_network
    assert ipam.overlaps(n("10.0.0.0/8"), n("10.1.0.0/16"))
    assert ipam.overlaps(n("10.1.0.0/16"), n("10.0.0.0/8"))
    assert not ipam.overlaps(n("10.0.0.0/16"), n("10.1.0.0/16"))
    assert not ipam.overlaps(n("0.0.0.0/0"), n("::/0"))  # never across families
    check_no_overlap(n("10.2.0.0/16"), [n("10.1.0.0/16"), n("fd00::/8")])
    with pytest.raises(Forbidden) as ei:
        check_no_overlap(n("10.1.2.0/24"), [n("10.3.0.0/16"), n("10.1.0.0/16")])
    assert str(ei.value) == (
        "invalid pool request: Pool overlaps with other one on this address space"
    )
    assert ei.value.http_status == 403


# --- performance sanity (no timing asserts) ---------------------------------------------


def test_slash8_allocation_is_instant() -> None:
    p = pool("10.0.0.0/8")
    assert allocate(p, set()) == a("10.0.0.2")
    p = pool("10.0.0.0/8", ip_range="10.128.0.0/9")
    assert allocate(p, set()) == a("10.128.0.1")


def test_slash16_with_60000_allocated() -> None:
    p = pool("10.20.0.0/16")
    base = int(a("10.20.0.2"))
    held = {IPv4Address(base + i) for i in range(60_000)}
    assert allocate(p, held) == IPv4Address(base + 60_000)
    held.discard(IPv4Address(base + 59_999))
    assert allocate(p, held) == IPv4Address(base + 59_999)


def test_huge_ipv6_pool() -> None:
    p = pool("fd00::/48")
    held = {IPv6Address(int(a("fd00::2")) + i) for i in range(5_000)}
    assert allocate(p, held) == IPv6Address(int(a("fd00::2")) + 5_000)
