"""libnetwork's default gateway service, decided: whether a sandbox needs an endpoint
on `docker_gwbridge` for connectivity to the outside.

A sandbox needs one when it has endpoints that could reach out (not on host/null,
not internal, not opting out with DisableGatewayService, as every built-in driver
does) and none of its endpoints
gives a gateway or a default static route: a remote driver that names no gateway
in Join. Pure: the controller joins or removes the endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NETWORK = "docker_gwbridge"

Doc = dict[str, Any]


def needs_default_gw(members: Iterable[tuple[Doc, Doc]]) -> tuple[bool, str | None]:
    """(needed, id of the sandbox's docker_gwbridge endpoint or None) from the
    sandbox's joined (endpoint, network) records."""
    need = False
    has_gateway = False
    gw_ep = None
    for ep, net in members:
        join = ep.get("join")
        if not join:
            continue
        if net.get("name") == NETWORK:
            gw_ep = str(ep["id"])
            continue
        if net.get("driver") in ("host", "null") or net.get("internal"):
            continue
        if join.get("gateway4") or join.get("gateway6") or any(
                r[0] in ("0.0.0.0/0", "::/0") for r in join.get("routes", [])):
            has_gateway = True
        elif not join.get("disable_gateway_service", True):
            need = True
    return need and not has_gateway, gw_ep
