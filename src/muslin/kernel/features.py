"""What this kernel can do: probed once, by trying, in a throwaway namespace.

Link kinds are probed by creating one; SCTP by opening a socket; IPVS and ESP by
their /proc traces or the kernel config. `require(name)` raises MissingKernelFeature
naming the kernel option. Must not change anything outside the throwaway namespace.
"""

from __future__ import annotations

import gzip
import os
import socket
from dataclasses import asdict, dataclass

from muslin.errors import MissingKernelFeature
from muslin.kernel import _libc, netns, sysctl
from muslin.kernel.links import Links

OPTIONS = {
    "bridge": "CONFIG_BRIDGE",
    "veth": "CONFIG_VETH",
    "vxlan": "CONFIG_VXLAN",
    "macvlan": "CONFIG_MACVLAN",
    "vlan_8021q": "CONFIG_VLAN_8021Q",
    "ipvlan": "CONFIG_IPVLAN",
    "dummy": "CONFIG_DUMMY",
    "ipvs": "CONFIG_IP_VS",
    "ipsec_esp": "CONFIG_INET_ESP",
    "sctp": "CONFIG_IP_SCTP",
    "br_netfilter": "CONFIG_BRIDGE_NETFILTER",
    "nftables": "CONFIG_NF_TABLES",
}

BR_NF_SYSCTLS = (
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.bridge.bridge-nf-call-arptables",
)


@dataclass(frozen=True)
class Features:
    bridge: bool
    veth: bool
    vxlan: bool
    macvlan: bool
    vlan_8021q: bool
    ipvlan: bool
    dummy: bool
    ipvs: bool
    ipsec_esp: bool
    sctp: bool
    br_netfilter: bool
    nftables: bool
    br_netfilter_sysctls: dict[str, str]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def require(self, name: str) -> None:
        """Raises MissingKernelFeature (naming the kernel option) when name is missing."""
        if not getattr(self, name):
            raise MissingKernelFeature(name, OPTIONS[name])


def _kernel_config() -> dict[str, str]:
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def _probe_in_scratch_namespace() -> dict[str, object]:
    """Runs on a thread that has just unshared a fresh, empty namespace."""
    _libc.unshare(_libc.CLONE_NEWNET)
    found: dict[str, object] = {}
    links = Links()
    try:
        tries: dict[str, tuple[str, dict[str, object]]] = {
            "bridge": ("bridge", {}),
            "veth": ("veth", {"peer": {"ifname": "probe-peer"}}),
            "vxlan": ("vxlan", {"vxlan_id": 42, "vxlan_port": 4789}),
            "dummy": ("dummy", {}),
        }
        for key, (kind, kw) in tries.items():
            found[key] = _try_link(links, f"probe-{key}", kind, **kw)
        lo = links.require("lo").index
        parent_kw: dict[str, object] = {"link": lo}
        # macvlan, ipvlan and 802.1Q need a parent that is an Ethernet device.
        if found["veth"]:
            links.add_kind("probe-par", "veth", peer={"ifname": "probe-par2"})
            parent_kw = {"link": links.require("probe-par").index}
        found["macvlan"] = _try_link(links, "probe-mv", "macvlan", macvlan_mode="bridge",
                                     **parent_kw)
        found["ipvlan"] = _try_link(links, "probe-ipv", "ipvlan", ipvlan_mode=0, **parent_kw)
        found["vlan_8021q"] = _try_link(links, "probe-vl", "vlan", vlan_id=5, **parent_kw)
        found["nftables"] = _nftables()
        found["ipvs"] = os.path.exists("/proc/thread-self/net/ip_vs")
        found["br_netfilter_sysctls"] = {k: v for k in BR_NF_SYSCTLS
                                         if (v := sysctl.get(k)) is not None}
    finally:
        links.close()
    return found


def _try_link(links: Links, name: str, kind: str, **kw: object) -> bool:
    try:
        links.add_kind(name, kind, **kw)
    except Exception:  # EOPNOTSUPP and any refusal alike: the kind is unusable here
        return False
    return True


def _sctp() -> bool:
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    except OSError:
        return False
    s.close()
    return True


def _nftables() -> bool:
    from muslin.kernel.nft import Nft

    try:
        nft = Nft()
    except Exception:
        return False
    try:
        nft.table_names()
        return True
    except Exception:
        return False
    finally:
        nft.close()


_cached: Features | None = None


def features(*, refresh: bool = False) -> Features:
    """What this kernel has (probed once per process; refresh=True probes again)."""
    global _cached
    if _cached is not None and not refresh:
        return _cached
    found = netns._run_on_thread(_probe_in_scratch_namespace, "muslin-probe")
    config = _kernel_config()

    def configured(option: str) -> bool | None:
        if not config:
            return None
        return config.get(option) in ("y", "m")

    esp = configured("CONFIG_INET_ESP")
    ipvs = bool(found["ipvs"]) or bool(configured("CONFIG_IP_VS"))
    nf = found["br_netfilter_sysctls"]
    assert isinstance(nf, dict)
    _cached = Features(
        bridge=bool(found["bridge"]),
        veth=bool(found["veth"]),
        vxlan=bool(found["vxlan"]),
        macvlan=bool(found["macvlan"]),
        vlan_8021q=bool(found["vlan_8021q"]),
        ipvlan=bool(found["ipvlan"]),
        dummy=bool(found["dummy"]),
        ipvs=ipvs,
        ipsec_esp=bool(esp) if esp is not None else os.path.exists("/sys/module/esp4"),
        sctp=_sctp(),
        br_netfilter=bool(nf),
        nftables=bool(found["nftables"]),
        br_netfilter_sysctls={str(k): str(v) for k, v in nf.items()},
    )
    return _cached
