"""Property tests of IPAM allocation: random allocate/release sequences on small pools."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from muslin.errors import Forbidden, InvalidParameter, Unavailable
from muslin.ipam import IPAMPool, Pool, allocate, reserved, validate_pool

Addr = IPv4Address | IPv6Address

# Small pools with ranges, gateways and auxiliary addresses, in both families.
POOLS: list[Pool] = [
    validate_pool(IPAMPool("10.0.0.0/28")),
    validate_pool(IPAMPool("10.0.0.0/28", ip_range="10.0.0.8/29", aux_addresses={"a": "10.0.0.9"})),
    validate_pool(
        IPAMPool(
            "10.0.0.0/28",
            ip_range="10.0.0.0/29",
            gateway="10.0.0.14",
            aux_addresses={"a": "10.0.0.3", "b": "10.0.0.12"},
        )
    ),
    validate_pool(IPAMPool("192.168.5.0/29", ip_range="192.168.5.4/30")),
    validate_pool(IPAMPool("10.9.0.0/31")),
    validate_pool(IPAMPool("fd00::/124", ip_range="fd00::8/125", aux_addresses={"x": "fd00::a"})),
]

# An operation: ("alloc", None), ("release", k) or ("static", k), k an offset in the subnet.
ops_strategy = st.lists(
    st.tuples(st.sampled_from(["alloc", "alloc", "release", "static"]), st.integers(0, 15)),
    max_size=60,
)


def free_in_range(pool: Pool, held: set[Addr]) -> list[Addr]:
    rng = pool.dynamic_range
    taken = reserved(pool)
    return [x for x in rng if x not in taken and x not in held]


@settings(derandomize=True, max_examples=150, deadline=None)
@given(pool_index=st.integers(0, len(POOLS) - 1), ops=ops_strategy)
def test_random_allocate_release_sequences(pool_index: int, ops: list[tuple[str, int]]) -> None:
    pool = POOLS[pool_index]
    subnet = pool.subnet
    taken = reserved(pool)
    held: set[Addr] = set()
    for op, k in ops:
        if op == "alloc":
            expected = free_in_range(pool, held)
            try:
                got = allocate(pool, held)
            except Unavailable:
                assert expected == []
                continue
            assert got == expected[0]  # always the lowest free
            assert got in pool.dynamic_range  # never outside the range
            assert got not in taken  # never a reserved one
            assert got not in held  # never twice
            held.add(got)
        elif op == "release":
            if held:
                victim = sorted(held)[k % len(held)]
                held.remove(victim)
        else:
            target = subnet.network_address + k
            if target not in subnet:
                try:
                    allocate(pool, held, target)
                except InvalidParameter:
                    continue
                raise AssertionError("out-of-subnet request accepted")
            if target in held or target in taken:
                try:
                    allocate(pool, held, target)
                except Forbidden:
                    continue
                raise AssertionError("request for a held or reserved address accepted")
            assert allocate(pool, held, target) == target
            held.add(target)
        assert not (held & taken)


def test_pools_under_test_are_what_they_seem() -> None:
    assert POOLS[1].gateway == ip_network("10.0.0.8/29").network_address
    assert POOLS[4].gateway == ip_network("10.9.0.0/31").network_address
    assert POOLS[5].gateway == IPv6Address("fd00::8")
