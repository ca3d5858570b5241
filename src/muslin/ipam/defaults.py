"""Default address pools: which subnet a network gets when the user names none.

Owns Docker's predefined pools (local and global scope), the parsing of daemon.json's
`default-address-pools`, and the choice of the next free predefined subnet. It must do
no I/O: the caller passes the subnets in use and the host's routes to avoid.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any, overload

from muslin.errors import InvalidParameter
from muslin.ipam.core import IPNetwork, parse_cidr

# Docker's text (moby daemon/libnetwork/ipamapi/contract.go, ErrNoMoreSubnets).
NO_MORE_SUBNETS = "all predefined address pools have been fully subnetted"

_FIELD = "default-address-pools"


@dataclass(frozen=True)
class PoolRule:
    """A base network split into subnets of prefix length `size` (moby: NetworkToSplit)."""

    base: IPNetwork
    size: int

    def __post_init__(self) -> None:
        if not self.base.prefixlen <= self.size <= self.base.max_prefixlen:
            raise ValueError(
                f"size /{self.size} must lie between /{self.base.prefixlen} "
                f"and /{self.base.max_prefixlen} for base {self.base}"
            )

    @property
    def count(self) -> int:
        """How many subnets the base splits into."""
        return 1 << (self.size - self.base.prefixlen)

    @property
    def step(self) -> int:
        """Addresses per subnet."""
        return 1 << (self.base.max_prefixlen - self.size)

    def subnet(self, index: int) -> IPNetwork:
        """The index-th subnet (0-based, no bounds check beyond the caller's)."""
        start = int(self.base.network_address) + index * self.step
        if self.base.version == 4:
            return IPv4Network((start, self.size))
        return IPv6Network((start, self.size))

    def to_dict(self) -> dict[str, Any]:
        """daemon.json form."""
        return {"base": str(self.base), "size": self.size}


class PoolCandidates(Sequence[IPNetwork]):
    """The subnets of some pool rules, in order, generated lazily.

    `next_default_subnet` recognizes this type and skips over blocked subnets by
    arithmetic instead of looking at each candidate in turn.
    """

    def __init__(self, rules: Iterable[PoolRule]) -> None:
        self.rules: tuple[PoolRule, ...] = tuple(rules)
        self._len = sum(r.count for r in self.rules)

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> IPNetwork: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[IPNetwork]: ...

    def __getitem__(self, index: int | slice) -> IPNetwork | Sequence[IPNetwork]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("pool candidate index out of range")
        for rule in self.rules:
            if index < rule.count:
                return rule.subnet(index)
            index -= rule.count
        raise IndexError("pool candidate index out of range")  # pragma: no cover

    def __iter__(self) -> Iterator[IPNetwork]:
        for rule in self.rules:
            for i in range(rule.count):
                yield rule.subnet(i)

    def __repr__(self) -> str:
        rules = ", ".join(f"{r.base}/{r.size}" for r in self.rules)
        return f"PoolCandidates([{rules}])"


def _rule(base: str, size: int) -> PoolRule:
    return PoolRule(ip_network(base), size)


# moby daemon/libnetwork/ipamutils/utils.go: localScopeDefaultNetworks.
LOCAL_DEFAULT_RULES: tuple[PoolRule, ...] = (
    _rule("172.17.0.0/16", 16),
    _rule("172.18.0.0/16", 16),
    _rule("172.19.0.0/16", 16),
    _rule("172.20.0.0/14", 16),
    _rule("172.24.0.0/14", 16),
    _rule("172.28.0.0/14", 16),
    _rule("192.168.0.0/16", 20),
)

# moby daemon/libnetwork/ipamutils/utils.go: globalScopeDefaultNetworks.
GLOBAL_DEFAULT_BASE: PoolRule = _rule("10.0.0.0/8", 24)


def local_default_pools() -> PoolCandidates:
    """Docker's 31 local-scope default subnets, lazily."""
    return PoolCandidates(LOCAL_DEFAULT_RULES)


def global_default_pools() -> PoolCandidates:
    """Docker's global-scope default subnets: 10.0.0.0/8 as 65536 /24s, lazily."""
    return PoolCandidates((GLOBAL_DEFAULT_BASE,))


# 172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/20 ... 192.168.240.0/20.
LOCAL_DEFAULT_POOLS: tuple[IPNetwork, ...] = tuple(local_default_pools())


def pool_candidates(rules: Iterable[PoolRule], version: int | None = None) -> PoolCandidates:
    """Order rules as Docker does and keep one family when `version` is given.

    Docker sorts the predefined networks by base address (shorter prefix first on a
    tie) and drops a network that overlaps one kept before it (moby: newAddrSpace).
    """
    chosen = [r for r in rules if version is None or r.base.version == version]
    chosen.sort(key=lambda r: (r.base.version, int(r.base.network_address), r.base.prefixlen))
    kept: list[PoolRule] = []
    for r in chosen:
        if kept and _overlap(kept[-1].base, r.base):
            continue
        kept.append(r)
    return PoolCandidates(kept)


def _overlap(a: IPNetwork, b: IPNetwork) -> bool:
    return (
        a.version == b.version
        and int(a.network_address) <= int(b.broadcast_address)
        and int(b.network_address) <= int(a.broadcast_address)
    )


def parse_address_pools(spec: object) -> list[PoolRule]:
    """Parse daemon.json's `default-address-pools`, e.g. `[{"base": "10.10.0.0/16", "size": 24}]`.

    Keys match case-insensitively, as Go's JSON decoding does; host bits in a base are
    cleared, as Docker does. Errors are InvalidParameter naming the entry and key, as
    in `default-address-pools[0].size`.
    """
    shape = 'a list of {"base": "<CIDR>", "size": <prefix length>} objects'
    if not isinstance(spec, list):
        raise InvalidParameter(f"{_FIELD}: expected {shape}, got {type(spec).__name__}")
    rules: list[PoolRule] = []
    for i, entry in enumerate(spec):
        where = f"{_FIELD}[{i}]"
        if not isinstance(entry, Mapping):
            raise InvalidParameter(
                f'{where}: expected an object like {{"base": "10.10.0.0/16", "size": 24}}, '
                f"got {type(entry).__name__}"
            )
        values: dict[str, object] = {}
        for key, value in entry.items():
            norm = key.lower() if isinstance(key, str) else key
            if norm not in ("base", "size"):
                raise InvalidParameter(
                    f"{where}.{key}: unknown key; the accepted keys are base and size"
                )
            if norm in values:
                raise InvalidParameter(f"{where}.{key}: given twice")
            values[norm] = value
        rules.append(_parse_rule(where, values))
    return rules


def _parse_rule(where: str, values: Mapping[str, object]) -> PoolRule:
    if "base" not in values:
        raise InvalidParameter(f'{where}.base: missing; give a CIDR block such as "10.10.0.0/16"')
    base_text = values["base"]
    iface = parse_cidr(base_text) if isinstance(base_text, str) else None
    if iface is None:
        raise InvalidParameter(
            f"{where}.base: invalid CIDR block {base_text!r}; "
            'give address/prefix-length such as "10.10.0.0/16"'
        )
    base = iface.network
    if "size" not in values:
        raise InvalidParameter(
            f"{where}.size: missing; give the prefix length of the subnets to split {base} into"
        )
    size = values["size"]
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidParameter(f"{where}.size: expected an integer prefix length, got {size!r}")
    if not base.prefixlen <= size <= base.max_prefixlen:
        raise InvalidParameter(
            f"{where}.size: /{size} does not fit base {base}; "
            f"size must be between {base.prefixlen} and {base.max_prefixlen}"
        )
    return PoolRule(base, size)


def _span(net: IPNetwork) -> tuple[int, int]:
    """First and last address of net as integers (cheaper than broadcast_address)."""
    first = int(net.network_address)
    return first, first + (1 << (net.max_prefixlen - net.prefixlen)) - 1


class _Blocked:
    """Sorted, merged address intervals of one family, for overlap tests by bisection."""

    def __init__(self, nets: Iterable[IPNetwork]) -> None:
        spans = sorted(_span(n) for n in nets)
        self.starts: list[int] = []
        self.ends: list[int] = []
        for lo, hi in spans:
            if self.ends and lo <= self.ends[-1] + 1:
                self.ends[-1] = max(self.ends[-1], hi)
            else:
                self.starts.append(lo)
                self.ends.append(hi)

    def hit(self, lo: int, hi: int) -> int | None:
        """End of the last blocked interval meeting [lo, hi], or None when it is free."""
        i = bisect_right(self.starts, hi) - 1
        if i >= 0 and self.ends[i] >= lo:
            return self.ends[i]
        return None


def _first_free(rule: PoolRule, blocked: _Blocked) -> IPNetwork | None:
    start = int(rule.base.network_address)
    step = rule.step
    index = 0
    while index < rule.count:
        lo = start + index * step
        end = blocked.hit(lo, lo + step - 1)
        if end is None:
            return rule.subnet(index)
        # Jump to the first subnet that begins after the blocked interval.
        index = (end + 1 - start + step - 1) // step
    return None


def next_default_subnet(
    candidates: Iterable[IPNetwork],
    in_use: Iterable[IPNetwork],
    avoid: Iterable[IPNetwork] = (),
) -> IPNetwork:
    """The first candidate overlapping neither a subnet in use nor a network to avoid.

    `avoid` holds the host's routes (and nameservers); default routes (0.0.0.0/0, ::/0)
    in it are skipped. Costs O((m + k) log m) for m blocked networks when candidates is
    a PoolCandidates (k rules), and O(n log m) for n other candidates.
    Raises Unavailable with Docker's text when every candidate is taken.
    """
    by_family: dict[int, list[IPNetwork]] = {4: [], 6: []}
    for net in in_use:
        by_family[net.version].append(net)
    for net in avoid:
        if net.prefixlen != 0:
            by_family[net.version].append(net)
    blocked = {v: _Blocked(nets) for v, nets in by_family.items()}

    if isinstance(candidates, PoolCandidates):
        for rule in candidates.rules:
            found = _first_free(rule, blocked[rule.base.version])
            if found is not None:
                return found
    else:
        for cand in candidates:
            if blocked[cand.version].hit(*_span(cand)) is None:
                return cand
    raise InvalidParameter(NO_MORE_SUBNETS)
