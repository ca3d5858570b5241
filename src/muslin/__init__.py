"""muslin: Docker-style container networking (the Container Network Model) for Linux.

    import muslin
    ctl = muslin.Controller()
    net = ctl.create_network("localnet", driver="bridge")
    sb = ctl.create_sandbox("c1")
    ep = net.create_endpoint("c1")
    ep.join(sb)

Names are imported on first use, so `import muslin.cli` (the CLI) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from muslin.cnm import Controller, Endpoint, Network, Sandbox
    from muslin.errors import (
        Conflict,
        Forbidden,
        InvalidParameter,
        KernelError,
        MissingKernelFeature,
        MuslinError,
        NotFound,
        Unavailable,
    )
    from muslin.ipam import IPAMPool
    from muslin.kernel import features

_LAZY = {
    "Controller": "muslin.cnm", "Endpoint": "muslin.cnm", "Network": "muslin.cnm",
    "Sandbox": "muslin.cnm", "Conflict": "muslin.errors", "Forbidden": "muslin.errors",
    "InvalidParameter": "muslin.errors", "KernelError": "muslin.errors",
    "MissingKernelFeature": "muslin.errors", "MuslinError": "muslin.errors",
    "NotFound": "muslin.errors", "Unavailable": "muslin.errors", "IPAMPool": "muslin.ipam",
    "features": "muslin.kernel",
}

__all__ = [
    "Conflict",
    "Controller",
    "Endpoint",
    "Forbidden",
    "IPAMPool",
    "InvalidParameter",
    "KernelError",
    "MissingKernelFeature",
    "MuslinError",
    "Network",
    "NotFound",
    "Sandbox",
    "Unavailable",
    "__version__",
    "features",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'muslin' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
