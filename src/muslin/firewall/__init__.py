"""Firewall rules as data: nftables JSON commands planned from network descriptions.

Pure: no I/O. The kernel door applies the plans as atomic batches.
"""

from muslin.firewall.plan import (
    BridgeRules,
    Published,
    TablePlan,
    expected_shape,
    network_add,
    network_remove,
    publish_add,
    publish_remove,
    table_rebuild,
)

__all__ = [
    "BridgeRules",
    "Published",
    "TablePlan",
    "expected_shape",
    "network_add",
    "network_remove",
    "publish_add",
    "publish_remove",
    "table_rebuild",
]
