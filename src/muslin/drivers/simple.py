"""The `host` and `null` drivers of Docker's predefined networks `host` and `none`.

Neither builds anything in the kernel nor takes addresses: a sandbox on `host` is the
host's own namespace and one on `none` has only loopback; their endpoints carry no
interface. Must not touch the kernel.
"""

from __future__ import annotations

from typing import Any

from muslin.drivers.api import Capability, EndpointInfo, JoinInfo, NetworkInfo
from muslin.errors import Forbidden
from muslin.firewall import BridgeRules


class _NoKernelDriver:
    name = ""
    uses_ipam = False

    def capabilities(self) -> Capability:
        return Capability("local", "local")

    def validate_options(self, options: dict[str, str], *, internal: bool) -> dict[str, str]:
        return dict(options)

    def bridge_name(self, net: NetworkInfo) -> str:
        return ""

    def create_network(self, net: NetworkInfo) -> dict[str, Any]:
        raise Forbidden(f'only one instance of "{self.name}" network is allowed')

    def delete_network(self, net: NetworkInfo) -> None:
        return None

    def join(self, net: NetworkInfo, ep: EndpointInfo, netns_path: str,
             ifname: str) -> tuple[JoinInfo, dict[str, Any]]:
        return JoinInfo(None, None), {}

    def leave(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        return None

    def firewall_rules(self, net: NetworkInfo) -> BridgeRules | None:
        return None

    def check_network(self, net: NetworkInfo) -> list[str]:
        return []

    def check_endpoint(self, net: NetworkInfo, ep: EndpointInfo) -> list[str]:
        return []

    def program_external_connectivity(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        return None

    def revoke_external_connectivity(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        return None


class HostDriver(_NoKernelDriver):
    """Driver "host": the sandbox shares the host's network namespace."""

    name = "host"


class NullDriver(_NoKernelDriver):
    """Driver "null": the sandbox keeps only its loopback interface."""

    name = "null"
