"""The macvlan driver's pure checks: modes, parent names, VLAN ids, passthru."""

from __future__ import annotations

import pytest

from muslin.drivers.api import EndpointInfo, NetworkInfo
from muslin.drivers.macvlan import (
    MacvlanDriver,
    check_mode,
    check_parent_name,
    check_passthru,
    parse_vlan,
    stub_names,
)
from muslin.errors import Conflict, InvalidParameter


def _net(name: str, parent: str, mode: str | None = None) -> NetworkInfo:
    opts = {"parent": parent, **({"macvlan_mode": mode} if mode else {})}
    return NetworkInfo(id=name * 8, name=name, options=opts, internal=False,
                       enable_ipv6=False, subnets=(), gateways=())


def test_modes() -> None:
    for mode in ("", "bridge", "private", "vepa", "passthru"):
        check_mode(mode)
    with pytest.raises(InvalidParameter, match=r"macvlan_mode.*bridge, private, vepa, passthru"):
        check_mode("Bridge")


def test_vlan_parents() -> None:
    assert parse_vlan("eth0.100") == ("eth0", 100)
    assert parse_vlan("eth0") is None and parse_vlan("br-1.x") is None
    for bad in ("eth0.0", "eth0.4095"):
        with pytest.raises(InvalidParameter, match="between 1 and 4094"):
            parse_vlan(bad)


def test_parent_names() -> None:
    check_parent_name("eth1")
    with pytest.raises(InvalidParameter, match="loopback"):
        check_parent_name("lo")
    for bad in ("a" * 16, "eth 0", "a/b"):
        with pytest.raises(InvalidParameter, match="option parent"):
            check_parent_name(bad)


def test_passthru_takes_its_parent_alone() -> None:
    others = [_net("a", "eth1"), _net("b", "eth2", "passthru")]
    check_passthru("eth3", "passthru", others)
    check_passthru("eth1", "bridge", others)
    with pytest.raises(Conflict, match="cannot use mode passthru, macvlan network a"):
        check_passthru("eth1", "passthru", others)
    with pytest.raises(Conflict, match="network b is already using parent interface eth2"):
        check_passthru("eth2", "vepa", others)


def test_kernel_names_fit_ifnamsiz() -> None:
    net_id = "f" * 64
    assert all(len(n) <= 15 for n in stub_names(net_id))
    ep = EndpointInfo(id=net_id, name="c", network_id=net_id, mac="", ipv4=None, ipv6=None)
    assert len(MacvlanDriver.host_ifname(ep)) <= 15
