"""muslin: Docker-style container networking (the Container Network Model) for Linux.

    import muslin
    ctl = muslin.Controller()
    net = ctl.create_network("localnet", driver="bridge")
    sb = ctl.create_sandbox("c1")
    ep = net.create_endpoint("c1")
    ep.join(sb)
"""

__version__ = "0.1.0"

from muslin.cnm import Controller
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
