"""The network driver protocol, as libnetwork's driverapi: what a driver is told
and what it answers. Built-in drivers and, later, remote plugins implement it.

A driver builds the kernel side of a network and the link of each endpoint; the
orchestration layer (muslin.cnm) owns IPAM, the sandbox-side addresses and routes,
and the state. Must not import muslin.cnm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from muslin.firewall import BridgeRules

Scope = Literal["local", "global"]


@dataclass(frozen=True)
class Capability:
    data_scope: Scope = "local"
    connectivity_scope: Scope = "local"


@dataclass(frozen=True)
class NetworkInfo:
    """What a driver knows of a network."""

    id: str
    name: str
    options: dict[str, str]
    internal: bool
    enable_ipv6: bool
    subnets: tuple[str, ...]  # CIDRs, v4 first
    gateways: tuple[str, ...]  # gateway/prefixlen, same order as subnets
    driver_state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointInfo:
    """What a driver knows of an endpoint."""

    id: str
    name: str
    network_id: str
    mac: str
    ipv4: str | None  # address/prefixlen
    ipv6: str | None
    driver_state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StaticRoute:
    """A route a driver asks for in the sandbox (libnetwork's types.StaticRoute):
    route_type 0 goes via next_hop, 1 is directly connected to the interface."""

    destination: str
    route_type: int = 0
    next_hop: str | None = None


@dataclass(frozen=True)
class JoinInfo:
    """What a driver answers to a join: the routes the sandbox should get."""

    gateway4: str | None
    gateway6: str | None
    mtu: int = 0
    ifname: str | None = None  # the interface's name when the driver chose another
    routes: tuple[StaticRoute, ...] = ()
    # libnetwork's default gateway service (docker_gwbridge) is only for drivers that
    # ask for it (remote plugins answer DisableGatewayService; overlay); built-in
    # drivers give their own gateway or none on purpose, as Docker's macvlan does
    disable_gateway_service: bool = True


class NetworkDriver(Protocol):
    """A network driver (libnetwork's driverapi.Driver, trimmed to what muslin uses)."""

    name: str
    uses_ipam: bool  # False: the network takes no pools and endpoints no addresses

    def capabilities(self) -> Capability: ...

    def bridge_name(self, net: NetworkInfo) -> str:
        """The network's kernel device name, or "" when it has none."""
        ...

    def validate_options(self, options: dict[str, str], *, internal: bool) -> dict[str, str]:
        """Normalised options, or InvalidParameter naming the option."""
        ...

    def create_network(self, net: NetworkInfo) -> dict[str, Any]:
        """Builds the network in the kernel; returns driver state to persist."""
        ...

    def delete_network(self, net: NetworkInfo) -> None: ...

    def join(self, net: NetworkInfo, ep: EndpointInfo, netns_path: str,
             ifname: str) -> tuple[JoinInfo, dict[str, Any]]:
        """Creates the endpoint's interface named `ifname` inside the sandbox
        namespace (addresses are the caller's); returns routes and driver state."""
        ...

    def leave(self, net: NetworkInfo, ep: EndpointInfo) -> None:
        """Removes the endpoint's interface."""
        ...

    def program_external_connectivity(self, net: NetworkInfo, ep: EndpointInfo) -> None: ...

    def revoke_external_connectivity(self, net: NetworkInfo, ep: EndpointInfo) -> None: ...

    def firewall_rules(self, net: NetworkInfo) -> BridgeRules | None:
        """The network's firewall description (muslin.firewall data), if any."""
        ...

    def check_network(self, net: NetworkInfo) -> list[str]:
        """Differences between the network's state and the kernel (for leaks())."""
        ...

    def check_endpoint(self, net: NetworkInfo, ep: EndpointInfo) -> list[str]:
        """Differences between a joined endpoint's host side and the kernel."""
        ...


@runtime_checkable
class EndpointLifecycle(Protocol):
    """Drivers told of endpoints before any join (remote plugins: CreateEndpoint,
    DeleteEndpoint); built-in drivers do their work at join and leave instead."""

    def create_endpoint(self, net: NetworkInfo, ep: EndpointInfo, *,
                        mac_requested: bool) -> dict[str, str]:
        """After IPAM, before the endpoint is committed; returns what the driver chose
        of "mac", "ipv4", "ipv6" (address/prefixlen)."""
        ...

    def delete_endpoint(self, net: NetworkInfo, ep: EndpointInfo) -> None: ...
