"""Orchestration: the CNM objects (Controller, Network, Endpoint, Sandbox).

Validate, apply through drivers and the kernel door, roll back; the store is the
authority. Must not call pyroute2 or nftables directly.
"""

from muslin.cnm.controller import Controller, Endpoint, Network, Sandbox

__all__ = ["Controller", "Endpoint", "Network", "Sandbox"]
