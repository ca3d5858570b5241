"""IP address management: pools, address allocation and default subnets.

Owns the pure rules of Docker's default IPAM driver (see `core` and `defaults`).
Must not do I/O: keeping allocations and persisting pools is the caller's job.
"""

from muslin.ipam.core import (
    IPAddress,
    IPAMPool,
    IPNetwork,
    Pool,
    allocate,
    check_no_overlap,
    overlaps,
    reserved,
    validate_pool,
)
from muslin.ipam.defaults import (
    GLOBAL_DEFAULT_BASE,
    LOCAL_DEFAULT_POOLS,
    LOCAL_DEFAULT_RULES,
    PoolCandidates,
    PoolRule,
    global_default_pools,
    local_default_pools,
    next_default_subnet,
    parse_address_pools,
    pool_candidates,
)

__all__ = [
    "GLOBAL_DEFAULT_BASE",
    "LOCAL_DEFAULT_POOLS",
    "LOCAL_DEFAULT_RULES",
    "IPAMPool",
    "IPAddress",
    "IPNetwork",
    "Pool",
    "PoolCandidates",
    "PoolRule",
    "allocate",
    "check_no_overlap",
    "global_default_pools",
    "local_default_pools",
    "next_default_subnet",
    "overlaps",
    "parse_address_pools",
    "pool_candidates",
    "reserved",
    "validate_pool",
]
