"""Docker's v1 plugin protocol, client side, against in-process plugins on unix
sockets: discovery, activation, {"Err"} and status errors, 404 tolerance, retries,
timeouts, re-activation after a restart, and the remote IPAM and network driver
wire formats."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from muslin.cnm.remote_ipam import RemoteIpam
from muslin.drivers.api import EndpointInfo, NetworkInfo
from muslin.drivers.remote import RemoteDriver
from muslin.errors import NotFound
from muslin.ipam import IPAMPool
from muslin.plugins import PluginDirs, PluginError, Plugins, find
from muslin.plugins.registry import IPAM_DRIVER, NETWORK_DRIVER, backoff

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples"))
from plugin_server import PluginFailure, make_server

Methods = dict[str, Callable[[dict[str, Any]], dict[str, Any]]]


class FakePlugin:
    """A plugin served on a thread; records every call."""

    def __init__(self, path: str, implements: list[str], methods: Methods) -> None:
        self.path = path
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.implements = implements
        self.methods = methods
        self.start()

    def start(self) -> None:
        def recorded(name: str, fn: Callable[[dict[str, Any]], dict[str, Any]]
                     ) -> Callable[[dict[str, Any]], dict[str, Any]]:
            def call(args: dict[str, Any]) -> dict[str, Any]:
                self.calls.append((name, args))
                return fn(args)
            return call

        self.server = make_server(self.path, self.implements,
                                  {k: recorded(k, v) for k, v in self.methods.items()})
        # a client that gave up (the timeout test) breaks the pipe: not worth a traceback
        self.server.handle_error = lambda *_: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        os.unlink(self.path)

    def names(self) -> list[str]:
        return [c[0].split(".", 1)[1] for c in self.calls]


@pytest.fixture
def dirs(tmp_path: Any) -> PluginDirs:
    return PluginDirs(str(tmp_path / "run"), (str(tmp_path / "etc"), str(tmp_path / "lib")))


@pytest.fixture
def plugins(dirs: PluginDirs) -> Plugins:
    return Plugins(dirs, retry_timeout=2.5, call_timeout=2.0)


@pytest.fixture
def made() -> Iterator[list[FakePlugin]]:
    out: list[FakePlugin] = []
    yield out
    for p in out:
        p.stop()


def _listen(path: str) -> socket.socket:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    return s


def test_discovery_order_and_formats(dirs: PluginDirs, tmp_path: Any) -> None:
    assert find("nothing", dirs) is None
    assert find("../etc", dirs) is None
    nested = _listen(os.path.join(dirs.sockets, "nested", "nested.sock"))
    flat = _listen(os.path.join(dirs.sockets, "flat.sock"))
    try:
        assert find("nested", dirs).url == f"unix://{dirs.sockets}/nested/nested.sock"
        assert find("flat", dirs).url == f"unix://{dirs.sockets}/flat.sock"
    finally:
        nested.close()
        flat.close()
    os.makedirs(dirs.specs[0])
    os.makedirs(dirs.specs[1])
    with open(os.path.join(dirs.specs[1], "tcpone.spec"), "w") as f:
        f.write("tcp://127.0.0.1:7070\n")
    addr = find("tcpone", dirs)
    assert addr is not None and addr.url == "tcp://127.0.0.1:7070"
    assert addr.host_port == ("127.0.0.1", 7070)
    with open(os.path.join(dirs.specs[0], "tls.json"), "w") as f:
        json.dump({"Name": "tls", "Addr": "https://127.0.0.1:7443",
                   "TLSConfig": {"InsecureSkipVerify": True, "CAFile": "/ca.pem"}}, f)
    addr = find("tls", dirs)
    assert addr is not None and addr.tls is not None and addr.tls.insecure_skip_verify
    assert addr.tls.ca_file == "/ca.pem"
    with open(os.path.join(dirs.specs[0], "bad.spec"), "w") as f:
        f.write("ftp://x")
    with pytest.raises(Exception, match="unknown protocol"):
        find("bad", dirs)


def test_backoff_is_dockers() -> None:
    assert [backoff(n, 30) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_activation_err_and_404(plugins: Plugins, dirs: PluginDirs,
                                made: list[FakePlugin]) -> None:
    with pytest.raises(NotFound, match='plugin "nope" not found'):
        plugins.get("nope", NETWORK_DRIVER)

    def fail(_: dict[str, Any]) -> dict[str, Any]:
        raise PluginFailure("no such thing")

    fake = FakePlugin(os.path.join(dirs.sockets, "p1.sock"), ["NetworkDriver"], {
        "NetworkDriver.GetCapabilities": lambda _: {"Scope": "local"},
        "NetworkDriver.CreateNetwork": fail,
        "NetworkDriver.DeleteNetwork": lambda _: {"Err": "busy"}})
    made.append(fake)
    plugin = plugins.get("p1", NETWORK_DRIVER)
    assert plugin.implements == ("NetworkDriver",) and plugin.activations == 1
    with pytest.raises(PluginError, match="does not implement IpamDriver"):
        plugins.get("p1", IPAM_DRIVER)
    with pytest.raises(PluginError, match=r"NetworkDriver\.CreateNetwork: no such thing"):
        plugin.call("NetworkDriver.CreateNetwork", {})
    with pytest.raises(PluginError, match=r"^remote: busy$"):
        plugin.call("NetworkDriver.DeleteNetwork", {})
    assert plugin.call("NetworkDriver.Leave", {}, tolerate_404=True) is None
    with pytest.raises(PluginError) as e:
        plugin.call("NetworkDriver.Leave", {})
    assert e.value.status == 404


def test_timeout_retries_and_reactivation(plugins: Plugins, dirs: PluginDirs,
                                          made: list[FakePlugin]) -> None:
    def slow(_: dict[str, Any]) -> dict[str, Any]:
        time.sleep(6)
        return {}

    fake = FakePlugin(os.path.join(dirs.sockets, "p2.sock"), ["IpamDriver"], {
        "IpamDriver.Slow": slow, "IpamDriver.Fast": lambda _: {"ok": 1}})
    made.append(fake)
    plugin = plugins.get("p2", IPAM_DRIVER)
    with pytest.raises(PluginError, match="timeout"):
        plugin.call("IpamDriver.Slow", {})
    # gone: the call retries, then names the plugin and the cause
    before = plugin.activations
    fake.stop()
    made.remove(fake)
    with pytest.raises(PluginError, match=r'plugin "p2": IpamDriver\.Fast'):
        plugin.call("IpamDriver.Fast", {})
    # back (a new socket): activated again before the call goes through
    fake = FakePlugin(os.path.join(dirs.sockets, "p2.sock"), ["IpamDriver"], fake.methods)
    made.append(fake)
    assert plugin.call("IpamDriver.Fast", {}) == {"ok": 1}
    assert plugin.activations == before + 1


def test_restart_between_calls_reactivates(plugins: Plugins, dirs: PluginDirs,
                                           made: list[FakePlugin]) -> None:
    fake = FakePlugin(os.path.join(dirs.sockets, "p3.sock"), ["NetworkDriver"], {
        "NetworkDriver.GetCapabilities": lambda _: {"Scope": "global",
                                                    "ConnectivityScope": "local"}})
    made.append(fake)
    driver = RemoteDriver(plugins.get("p3", NETWORK_DRIVER, activate=False), None)  # type: ignore[arg-type]
    assert driver.capabilities().data_scope == "global"
    fake.stop()
    fake.start()  # a new socket file: the next call activates again
    assert driver.capabilities().connectivity_scope == "local"
    assert driver.plugin.call("NetworkDriver.GetCapabilities", None) is not None
    assert driver.plugin.activations == 2
    assert fake.names().count("GetCapabilities") == 3


def test_remote_ipam_wire_format(plugins: Plugins, dirs: PluginDirs,
                                 made: list[FakePlugin]) -> None:
    fake = FakePlugin(os.path.join(dirs.sockets, "ip.sock"), ["IpamDriver"], {
        "IpamDriver.GetDefaultAddressSpaces": lambda _: {
            "LocalDefaultAddressSpace": "L", "GlobalDefaultAddressSpace": "G"},
        "IpamDriver.RequestPool": lambda a: {"PoolID": "L/10.9.0.0/24", "Pool": "10.9.0.0/24",
                                             "Data": {}},
        "IpamDriver.RequestAddress": lambda a: {
            "Address": (a["Address"] or ("10.9.0.1" if a["Options"] else "10.9.0.7")) + "/24"},
        "IpamDriver.ReleaseAddress": lambda a: {},
        "IpamDriver.ReleasePool": lambda a: {}})
    made.append(fake)
    ipam = RemoteIpam(plugins.get("ip", IPAM_DRIVER, activate=False))
    assert ipam.default_address_spaces() == ("L", "G")
    pid, pool = ipam.request_pool("L", IPAMPool("10.9.0.0/24", ip_range="10.9.0.0/25",
                                                aux_addresses={"r": "10.9.0.5"}),
                                  v6=False, owner="n", options={"k": "v"})
    assert pid == "L/10.9.0.0/24" and str(pool.gateway) == "10.9.0.1"
    assert str(pool.ip_range) == "10.9.0.0/25" and str(pool.aux_addresses["r"]) == "10.9.0.5"
    assert ipam.request_address(pid, None, owner="e") == "10.9.0.7"
    ipam.release_address(pid, "10.9.0.7")
    ipam.release_pool(pid, addresses=["10.9.0.1"])
    calls = [(n.split(".")[1], a) for n, a in fake.calls]
    assert calls[0][0] == "GetDefaultAddressSpaces"  # GetCapabilities 404: the defaults
    assert ("RequestPool", {"AddressSpace": "L", "Pool": "10.9.0.0/24",
                            "SubPool": "10.9.0.0/25", "Options": {"k": "v"}, "V6": False}) \
        in calls
    assert ("RequestAddress", {"PoolID": pid, "Address": "",
                               "Options": {"RequestAddressType": "com.docker.network.gateway"}}) \
        in calls
    assert ("RequestAddress", {"PoolID": pid, "Address": "10.9.0.5", "Options": {}}) in calls
    assert [n for n, _ in calls][-3:] == ["ReleaseAddress", "ReleaseAddress", "ReleasePool"]


def test_remote_driver_wire_format(plugins: Plugins, dirs: PluginDirs,
                                   made: list[FakePlugin]) -> None:
    fake = FakePlugin(os.path.join(dirs.sockets, "nd.sock"), ["NetworkDriver"], {
        "NetworkDriver.GetCapabilities": lambda _: {"Scope": "local"},
        "NetworkDriver.CreateNetwork": lambda a: {},
        "NetworkDriver.DeleteNetwork": lambda a: {"Err": "in use"},
        "NetworkDriver.CreateEndpoint": lambda a: {"Interface": {"MacAddress":
                                                                 "02:00:00:00:00:07"}},
        "NetworkDriver.DeleteEndpoint": lambda a: {},
        "NetworkDriver.EndpointOperInfo": lambda a: {"Value": {"x": "y"}},
        "NetworkDriver.AllocateNetwork": lambda a: {"Options": {"vni": "7"}},
        "NetworkDriver.FreeNetwork": lambda a: {},
        "NetworkDriver.DiscoverNew": lambda a: {},
        "NetworkDriver.DiscoverDelete": lambda a: {}})
    made.append(fake)
    d = RemoteDriver(plugins.get("nd", NETWORK_DRIVER, activate=False), None)  # type: ignore[arg-type]
    net = NetworkInfo("n1", "net", {"o": "1"}, False, False, ("10.1.0.0/24",),
                      ("10.1.0.1/24",))
    ep = EndpointInfo("e1", "ep", "n1", "02:42:00:00:00:01", "10.1.0.2/24", None)
    assert d.create_network(net) == {"remote": "nd"}
    d.delete_network(net)  # {"Err"} on delete: logged, carried on (as Docker)
    assert d.create_endpoint(net, ep, mac_requested=False) == {"mac": "02:00:00:00:00:07"}
    with pytest.raises(PluginError, match="driver modified interface MAC address"):
        d.create_endpoint(net, ep, mac_requested=True)
    assert d.endpoint_oper_info(ep) == {"x": "y"}
    assert d.allocate_network(net) == {"vni": "7"}
    d.free_network("n1")
    d.discover_new({"Address": "198.51.100.2", "Self": True})
    d.discover_delete({"Address": "198.51.100.2", "Self": True})
    d.program_external_connectivity(net, ep)  # 404: not mandatory
    d.revoke_external_connectivity(net, ep)
    by_name = {n.split(".")[1]: a for n, a in fake.calls}
    assert by_name["CreateNetwork"] == {
        "NetworkID": "n1", "Options": {"com.docker.network.generic": {"o": "1"},
                                       "com.docker.network.enable_ipv6": False},
        "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": "10.1.0.0/24",
                      "Gateway": "10.1.0.1/24", "AuxAddresses": {}}], "IPv6Data": []}
    assert by_name["CreateEndpoint"]["Interface"] == {
        "Address": "10.1.0.2/24", "AddressIPv6": "", "MacAddress": "02:42:00:00:00:01"}
    assert by_name["DiscoverNew"] == {"DiscoveryType": 1, "DiscoveryData": {
        "Address": "198.51.100.2", "Self": True}}
    # the refused create endpoint was rolled back with DeleteEndpoint
    assert fake.names().count("DeleteEndpoint") == 1
