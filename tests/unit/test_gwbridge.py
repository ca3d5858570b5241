"""libnetwork's default gateway service decision (muslin.cnm.gwbridge)."""

from __future__ import annotations

from typing import Any

from muslin.cnm.gwbridge import NETWORK, needs_default_gw


def member(ep_id: str, net: str, *, driver: str = "remote", internal: bool = False,
           gw4: str | None = None, routes: list[Any] | None = None,
           disable: bool = False, joined: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    join = {"gateway4": gw4, "gateway6": None, "routes": routes or [],
            "disable_gateway_service": disable} if joined else None
    return {"id": ep_id, "join": join}, {"name": net, "driver": driver, "internal": internal}


def test_no_gateway_needs_the_service() -> None:
    assert needs_default_gw([member("a", "n1")]) == (True, None)
    assert needs_default_gw([member("a", "n1"), member("g", NETWORK, driver="bridge",
                                                      gw4="172.18.0.1")]) == (True, "g")


def test_a_gateway_or_default_route_anywhere_ends_it() -> None:
    assert needs_default_gw([member("a", "n1"), member("b", "n2", gw4="10.0.0.1"),
                             member("g", NETWORK, gw4="172.18.0.1")]) == (False, "g")
    assert needs_default_gw([member("a", "n1", routes=[["0.0.0.0/0", 0, "10.0.0.1"]])]) == \
        (False, None)
    assert needs_default_gw([member("a", "n1", routes=[["10.9.0.0/16", 0, "10.0.0.1"]])]) == \
        (True, None)


def test_what_never_asks_for_it() -> None:
    assert needs_default_gw([]) == (False, None)
    assert needs_default_gw([member("a", "i", internal=True)]) == (False, None)
    assert needs_default_gw([member("a", "n", disable=True)]) == (False, None)
    assert needs_default_gw([member("a", "none", driver="null")]) == (False, None)
    assert needs_default_gw([member("a", "n", joined=False)]) == (False, None)
    # a join recorded without the flag (built-in drivers): no service
    ep, net = member("a", "n")
    del ep["join"]["disable_gateway_service"]
    assert needs_default_gw([(ep, net)]) == (False, None)
    # only the service's own endpoint left: it is no longer needed
    assert needs_default_gw([member("g", NETWORK, gw4="172.18.0.1")]) == (False, "g")
