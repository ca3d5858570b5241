"""The IPAM driver protocol and the built-in default driver, backed by the store.

The protocol mirrors libnetwork's ipamapi (address spaces, request/release pool,
request/release address); muslin.cnm.remote_ipam implements it over plugins. The
default driver keeps pools and addresses as store documents and decides with the
pure core (muslin.ipam); every call runs in one store transaction, nested in the
caller's when there is one. Must not touch the kernel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from ipaddress import IPv6Network, ip_address, ip_network
from typing import Protocol

from muslin import ipam
from muslin.errors import InvalidParameter, NotFound
from muslin.store import Store

LOCAL_SPACE = "LocalDefault"
GLOBAL_SPACE = "GlobalDefault"


class IpamDriver(Protocol):
    name: str

    def default_address_spaces(self) -> tuple[str, str]: ...

    def request_pool(self, address_space: str, requested: ipam.IPAMPool | None, *,
                     v6: bool, owner: str, avoid: Iterable[ipam.IPNetwork] = (),
                     options: Mapping[str, str] | None = None) -> tuple[str, ipam.Pool]: ...

    def release_pool(self, pool_id: str, *, addresses: Sequence[str] = ()) -> None:
        """Frees the pool; `addresses` (its gateway, aux addresses) are released first."""
        ...

    def request_address(self, pool_id: str, requested: str | None, *,
                        owner: str, mac: str | None = None) -> str: ...

    def release_address(self, pool_id: str, address: str) -> None: ...


class DefaultIpam:
    """Docker's default IPAM: default pools, explicit subnets, lowest free address."""

    name = "default"

    def __init__(self, store: Store, *, local_pools: ipam.PoolCandidates | None = None,
                 ula_seed: str = "") -> None:
        self._store = store
        self._local = local_pools or ipam.local_default_pools()
        self._global = ipam.global_default_pools()
        digest = hashlib.sha256(ula_seed.encode()).digest()
        # A ULA /48 of this instance (RFC 4193 style), split into /64s for IPv6 networks.
        self._ula = IPv6Network((b"\xfd" + digest[:5] + b"\x00" * 10, 48))

    def default_address_spaces(self) -> tuple[str, str]:
        return LOCAL_SPACE, GLOBAL_SPACE

    def _pools(self, address_space: str) -> list[ipam.IPNetwork]:
        return [ip_network(d["subnet"]) for d in
                self._store.list("pool", address_space + "/")]

    def request_pool(self, address_space: str, requested: ipam.IPAMPool | None, *,
                     v6: bool, owner: str, avoid: Iterable[ipam.IPNetwork] = (),
                     options: Mapping[str, str] | None = None) -> tuple[str, ipam.Pool]:
        if address_space not in (LOCAL_SPACE, GLOBAL_SPACE):
            raise InvalidParameter(
                f"unknown address space {address_space!r}: expected {LOCAL_SPACE} or "
                f"{GLOBAL_SPACE}")
        with self._store.transaction() as t:
            in_use = self._pools(address_space)
            if requested is None:
                if v6:
                    subnet = ipam.next_default_subnet(self._ula.subnets(new_prefix=64),
                                                      in_use, avoid)
                else:
                    cands = self._local if address_space == LOCAL_SPACE else self._global
                    subnet = ipam.next_default_subnet(cands, in_use, avoid)
                pool = ipam.validate_pool(ipam.IPAMPool(subnet=str(subnet)))
            else:
                pool = ipam.validate_pool(requested)
                ipam.check_no_overlap(pool.subnet, in_use)
            pool_id = f"{address_space}/{pool.subnet}"
            t.put("pool", pool_id, {"subnet": str(pool.subnet), "owner": owner,
                                    "pool": pool.to_dict()})
        return pool_id, pool

    def release_pool(self, pool_id: str, *, addresses: Sequence[str] = ()) -> None:
        with self._store.transaction() as t:
            for key in t.keys("address", pool_id + "|"):
                t.delete("address", key)
            t.delete("pool", pool_id)

    def _pool(self, pool_id: str) -> ipam.Pool:
        doc = self._store.get("pool", pool_id)
        if doc is None:
            raise NotFound(f"pool {pool_id} not found")
        return ipam.Pool.from_dict(doc["pool"])

    def request_address(self, pool_id: str, requested: str | None, *, owner: str,
                        mac: str | None = None) -> str:
        with self._store.transaction() as t:
            pool = self._pool(pool_id)
            allocated = {ip_address(k.split("|", 1)[1])
                         for k in t.keys("address", pool_id + "|")}
            want = ip_address(requested) if requested else None
            addr = ipam.allocate(pool, allocated, want)
            t.put("address", f"{pool_id}|{addr}", {"owner": owner})
        return str(addr)

    def release_address(self, pool_id: str, address: str) -> None:
        self._store.delete("address", f"{pool_id}|{ip_address(address)}")

    def owners(self) -> dict[str, str]:
        """Every allocation (pool or address key) and its owner, for leak checks."""
        with self._store.transaction() as t:
            out: dict[str, str] = {}
            for key in t.keys("pool"):
                doc = t.get("pool", key) or {}
                out[f"pool {key}"] = str(doc.get("owner", ""))
            for key in t.keys("address"):
                doc = t.get("address", key) or {}
                out[f"address {key}"] = str(doc.get("owner", ""))
        return out
