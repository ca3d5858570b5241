"""The pure IPAM core: one address pool's validation and address allocation.

Owns the rules Docker's default IPAM driver applies to a pool (subnet, ip_range,
gateway, auxiliary addresses): validation with Docker's texts, the addresses that
are never handed out, lowest-free dynamic allocation, static requests, and the
pool-overlap check. It must do no I/O at all (no files, sockets, kernel or store):
callers keep the set of allocated addresses and persist `Pool.to_dict()`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
    ip_interface,
)
from typing import Any

from muslin.errors import Forbidden, InvalidParameter, Unavailable

IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address

# Docker's texts (moby daemon/libnetwork/ipamapi/contract.go).
NO_AVAILABLE_ADDRESSES = "no available addresses on this pool"
ADDRESS_IN_USE = "Address already in use"
ADDRESS_OUT_OF_RANGE = "requested address is out of range"
POOL_OVERLAP = "invalid pool request: Pool overlaps with other one on this address space"

# address/prefix-length, as Go's netip.ParsePrefix takes it: no netmask form, no zone.
_CIDR_RE = re.compile(r"[0-9A-Fa-f.:]+/[0-9]{1,3}")
_ADDR_RE = re.compile(r"[0-9A-Fa-f.:]+")


def parse_cidr(text: str) -> IPv4Interface | IPv6Interface | None:
    """Parse `address/prefix-length` (host bits allowed); None when it is not one."""
    if not _CIDR_RE.fullmatch(text):
        return None
    try:
        return ip_interface(text)
    except ValueError:
        return None


def parse_address(text: str) -> IPAddress | None:
    """Parse a bare IPv4 or IPv6 address (no prefix, no zone); None when it is not one."""
    if not _ADDR_RE.fullmatch(text):
        return None
    try:
        return ip_address(text)
    except ValueError:
        return None


def _family(version: int) -> str:
    return f"IPv{version}"


@dataclass(frozen=True)
class IPAMPool:
    """One IPAM configuration as a user writes it (Docker's IPAM `Config` entry).

    All values are strings; an empty string means "not given", as in Docker's API.
    """

    subnet: str
    ip_range: str | None = None
    gateway: str | None = None
    aux_addresses: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Pool:
    """A validated, normalized pool: what `validate_pool` returns and the store keeps.

    `gateway` is None only when validated with `need_gateway=False` and none was given.
    """

    subnet: IPNetwork
    ip_range: IPNetwork | None = None
    gateway: IPAddress | None = None
    aux_addresses: dict[str, IPAddress] = field(default_factory=dict, hash=False)

    @property
    def version(self) -> int:
        """4 or 6."""
        return self.subnet.version

    @property
    def dynamic_range(self) -> IPNetwork:
        """Where dynamic addresses come from: ip_range, or the whole subnet."""
        return self.ip_range if self.ip_range is not None else self.subnet

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (strings only); `from_dict` reads it back."""
        return {
            "subnet": str(self.subnet),
            "ip_range": None if self.ip_range is None else str(self.ip_range),
            "gateway": None if self.gateway is None else str(self.gateway),
            "aux_addresses": {k: str(v) for k, v in self.aux_addresses.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pool:
        """Read `to_dict()` output back, validating it again (unknown keys are ignored)."""
        if not isinstance(data, Mapping):
            raise InvalidParameter("pool: expected an object with subnet, ip_range, gateway")
        aux = data.get("aux_addresses") or {}
        if not isinstance(aux, Mapping):
            raise InvalidParameter("aux_addresses: expected an object of name to address")
        return validate_pool(
            IPAMPool(
                subnet=data.get("subnet", ""),  # validate_pool checks every type
                ip_range=data.get("ip_range"),
                gateway=data.get("gateway"),
                aux_addresses=dict(aux),
            ),
            need_gateway=False,
        )

    def to_ipam_pool(self) -> IPAMPool:
        """The user-facing string form (what `docker network inspect` shows)."""
        d = self.to_dict()
        return IPAMPool(
            subnet=d["subnet"],
            ip_range=d["ip_range"],
            gateway=d["gateway"],
            aux_addresses=d["aux_addresses"],
        )


def _optional_str(fieldname: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"{fieldname}: expected a string, got {type(value).__name__}")
    return value


def _why_reserved(addr: IPAddress, subnet: IPNetwork) -> str:
    if addr == subnet.network_address:
        if subnet.version == 6:
            return f"{addr} is the Subnet-Router anycast address of {subnet}"
        return f"{addr} is the network address of {subnet}"
    return f"{addr} is the broadcast address of {subnet}"


def _base_reserved(subnet: IPNetwork) -> frozenset[IPAddress]:
    """Addresses Docker reserves when it creates a pool (moby: newPoolData).

    The first address (IPv4 network address, IPv6 Subnet-Router anycast) except in an
    IPv4 /31 or /32, and the IPv4 broadcast address except in a /31 or /32.
    """
    host_bits = subnet.max_prefixlen - subnet.prefixlen
    out: set[IPAddress] = set()
    if subnet.version == 6 or host_bits > 1:
        out.add(subnet.network_address)
    if subnet.version == 4 and host_bits > 1:
        out.add(subnet.broadcast_address)
    return frozenset(out)


# Steps _lowest_free takes with address objects before it switches to integers.
_SHORT_WALK = 64


def _lowest_free(
    rng: IPNetwork, taken: AbstractSet[IPAddress], allocated: AbstractSet[IPAddress]
) -> IPAddress | None:
    """Lowest address of rng in neither set: walks up from the start, skipping taken ones.

    Every step past the first skips an address held by one of the sets, so this costs
    O(len(taken) + len(allocated)) whatever the size of rng. A long walk switches from
    address objects to a set of integers, which is several times cheaper per step.
    """
    make = IPv4Address if rng.version == 4 else IPv6Address
    x = int(rng.network_address)
    last = int(rng.broadcast_address)
    for _ in range(_SHORT_WALK):
        if x > last:
            return None
        addr = make(x)
        if addr not in taken and addr not in allocated:
            return addr
        x += 1
    version = rng.version
    held = {int(a) for a in taken if a.version == version}
    held.update(int(a) for a in allocated if a.version == version)
    while x <= last and x in held:
        x += 1
    return make(x) if x <= last else None


def _within(inner: IPNetwork, outer: IPNetwork) -> bool:
    return (
        inner.version == outer.version
        and int(outer.network_address) <= int(inner.network_address)
        and int(inner.broadcast_address) <= int(outer.broadcast_address)
    )


def _parse_subnet(text: object) -> IPNetwork:
    if text is None or text == "":
        raise InvalidParameter(
            "subnet: a subnet is required, in CIDR notation such as 172.28.0.0/16 or fd00:1::/64"
        )
    if not isinstance(text, str):
        raise InvalidParameter(f"subnet: expected a string, got {type(text).__name__}")
    iface = parse_cidr(text)
    if iface is None:
        raise InvalidParameter(
            f"subnet: invalid subnet {text}: invalid CIDR block notation "
            "(expected address/prefix-length, such as 172.28.0.0/16 or fd00:1::/64)"
        )
    net = iface.network
    if iface.ip != net.network_address:
        raise InvalidParameter(f"subnet: invalid subnet {text}: it should be {net}")
    if net.network_address.is_unspecified:
        raise InvalidParameter(
            f"subnet: invalid subnet {text}: its network address is unspecified; "
            "leave the subnet out to have one picked from the default address pools"
        )
    return net


def _parse_ip_range(text: str, subnet: IPNetwork) -> IPNetwork:
    where = f"ip_range: invalid ip-range {text}"
    iface = parse_cidr(text)
    if iface is None:
        raise InvalidParameter(
            f"{where}: invalid CIDR block notation (expected a CIDR block inside subnet {subnet})"
        )
    if iface.version != subnet.version:
        raise InvalidParameter(f"{where}: parent subnet is an {_family(subnet.version)} block")
    net = iface.network
    if net.prefixlen < subnet.prefixlen:
        raise InvalidParameter(f"{where}: CIDR block is bigger than its parent subnet {subnet}")
    if iface.ip != net.network_address:
        raise InvalidParameter(f"{where}: it should be {net}")
    if not _within(net, subnet):
        raise InvalidParameter(f"{where}: parent subnet {subnet} doesn't contain ip-range")
    return net


def _parse_member(fieldname: str, what: str, text: str, subnet: IPNetwork) -> IPAddress:
    """Parse an address that must lie in subnet (gateway, auxiliary address)."""
    where = f"{fieldname}: invalid {what} {text}"
    addr = parse_address(text)
    if addr is None:
        raise InvalidParameter(
            f"{where}: invalid address (expected an {_family(subnet.version)} address "
            f"inside subnet {subnet})"
        )
    if addr.version != subnet.version:
        raise InvalidParameter(f"{where}: parent subnet is an {_family(subnet.version)} block")
    if addr not in subnet:
        raise InvalidParameter(f"{where}: parent subnet {subnet} doesn't contain this address")
    return addr


def validate_pool(p: IPAMPool, *, need_gateway: bool = True) -> Pool:
    """Validate a user's pool and normalize it, as Docker does on network create.

    Raises InvalidParameter naming the field (`subnet`, `ip_range`, `gateway`,
    `aux_addresses[NAME]`). Without a gateway and with need_gateway, the gateway is
    the lowest free address of ip_range (or of the subnet when there is no range),
    picked before the auxiliary addresses are reserved, as in Docker.
    """
    subnet = _parse_subnet(p.subnet)
    range_text = _optional_str("ip_range", p.ip_range)
    ip_range = None if range_text is None else _parse_ip_range(range_text, subnet)

    base = _base_reserved(subnet)

    gateway: IPAddress | None = None
    gw_text = _optional_str("gateway", p.gateway)
    if gw_text is not None:
        gateway = _parse_member("gateway", "gateway", gw_text, subnet)
        if gateway in base:
            raise InvalidParameter(
                f"gateway: failed to allocate gateway ({gw_text}): {ADDRESS_IN_USE} "
                f"({_why_reserved(gateway, subnet)}; choose another address inside {subnet})"
            )
    elif need_gateway:
        rng = ip_range if ip_range is not None else subnet
        gateway = _lowest_free(rng, base, frozenset())
        if gateway is None:
            fieldname = "ip_range" if ip_range is not None else "subnet"
            raise InvalidParameter(
                f"{fieldname}: failed to allocate gateway: {NO_AVAILABLE_ADDRESSES} "
                f"({rng} has no usable address; use a larger block or set gateway)"
            )

    aux_in = p.aux_addresses
    if aux_in is None:
        aux_in = {}
    if not isinstance(aux_in, Mapping):
        raise InvalidParameter(
            f"aux_addresses: expected an object of name to address, got {type(aux_in).__name__}"
        )
    aux: dict[str, IPAddress] = {}
    holder: dict[IPAddress, str] = {}
    if gateway is not None:
        holder[gateway] = "the gateway"
    for name, value in aux_in.items():
        fieldname = f"aux_addresses[{name}]"
        if not isinstance(name, str) or name == "":
            raise InvalidParameter(f"aux_addresses: names must be non-empty strings, got {name!r}")
        if not isinstance(value, str):
            raise InvalidParameter(
                f"{fieldname}: expected an address string, got {type(value).__name__}"
            )
        addr = _parse_member(fieldname, "auxiliary address", value, subnet)
        if addr in base or addr in holder:
            why = _why_reserved(addr, subnet) if addr in base else f"{addr} is {holder[addr]}"
            raise InvalidParameter(
                f"{fieldname}: failed to allocate secondary ip address ({name}:{value}): "
                f"{ADDRESS_IN_USE} ({why})"
            )
        holder[addr] = f"auxiliary address {name}"
        aux[name] = addr

    return Pool(subnet=subnet, ip_range=ip_range, gateway=gateway, aux_addresses=aux)


def reserved(pool: Pool) -> frozenset[IPAddress]:
    """Addresses never handed out: network/anycast address, IPv4 broadcast, gateway, aux.

    As in Docker, an IPv4 /31 or /32 reserves neither its first nor its last address.
    """
    extra: set[IPAddress] = set(pool.aux_addresses.values())
    if pool.gateway is not None:
        extra.add(pool.gateway)
    return _base_reserved(pool.subnet) | extra


def allocate(
    pool: Pool,
    allocated: AbstractSet[IPAddress],
    requested: IPAddress | None = None,
) -> IPAddress:
    """Pick an address for an endpoint; the caller records it in its allocated set.

    Without `requested`: the lowest address of the dynamic range that is neither
    reserved nor allocated (Unavailable when there is none). With `requested`: it must
    lie in the subnet (it may lie outside ip_range, as in Docker), not be reserved and
    not be allocated (Conflict, "Address already in use").
    """
    taken = reserved(pool)
    if requested is None:
        addr = _lowest_free(pool.dynamic_range, taken, allocated)
        if addr is None:
            raise Unavailable(NO_AVAILABLE_ADDRESSES)
        return addr
    if requested.version != pool.version or requested not in pool.subnet:
        raise InvalidParameter(
            f"{ADDRESS_OUT_OF_RANGE} ({requested} is not inside subnet {pool.subnet})"
        )
    if requested in allocated:
        raise Forbidden(ADDRESS_IN_USE)
    if requested in taken:
        if requested == pool.gateway:
            why = f"{requested} is the gateway"
        elif requested in pool.aux_addresses.values():
            name = next(k for k, v in pool.aux_addresses.items() if v == requested)
            why = f"{requested} is auxiliary address {name}"
        else:
            why = _why_reserved(requested, pool.subnet)
        raise Forbidden(f"{ADDRESS_IN_USE} ({why})")
    return requested


def overlaps(a: IPNetwork, b: IPNetwork) -> bool:
    """Whether a and b share an address (never across address families)."""
    return (
        a.version == b.version
        and int(a.network_address) <= int(b.broadcast_address)
        and int(b.network_address) <= int(a.broadcast_address)
    )


def check_no_overlap(new: IPNetwork, existing: Iterable[IPNetwork]) -> None:
    """Raise Forbidden with Docker's text when new overlaps any existing subnet."""
    for other in existing:
        if overlaps(new, other):
            raise Forbidden(POOL_OVERLAP)
