"""runc's config.json as Docker writes it: defaults, merging with the image, validation."""

from __future__ import annotations

from typing import Any

import pytest

from muslin.containers import oci
from muslin.containers.spec import ContainerSpec, Rlimit, signal_number
from muslin.errors import InvalidParameter

CID = "ab" * 32
IMAGE = {"Env": ["PATH=/usr/bin:/bin", "IMG=1"], "Cmd": ["sh"], "WorkingDir": ""}
ETC = {"/etc/hosts": "/c/hosts", "/etc/hostname": "/c/hostname",
       "/etc/resolv.conf": "/c/resolv.conf"}


def config(image: dict[str, Any] | None = None, *, netns: str | None = "/run/netns/sb",
           hard: dict[str, int] | None = None, **kw: Any) -> dict[str, Any]:
    kw.setdefault("netns", netns)
    spec = ContainerSpec(id=CID, image="busybox", **kw)
    spec.validate()
    return oci.build_config(spec, IMAGE if image is None else image, rootfs="/c/rootfs",
                            uid=0, gid=0, etc_files=ETC, netns=spec.netns,
                            cgroups_path=f"/muslin/{CID}",
                            machine_hard=hard if hard is not None else {"nofile": 20000},
                            exists=lambda name: True)


def test_defaults_are_dockers() -> None:
    c = config()
    caps = c["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == list(
        oci.DEFAULT_CAPABILITIES)
    assert {"CAP_NET_RAW", "CAP_NET_BIND_SERVICE"} <= set(caps["bounding"])
    assert "CAP_NET_ADMIN" not in caps["bounding"] and "inheritable" not in caps
    assert c["process"]["args"] == ["sh"] and c["process"]["cwd"] == "/"
    assert c["process"]["user"] == {"uid": 0, "gid": 0}
    assert c["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000}]
    assert c["hostname"] == CID[:12]
    linux = c["linux"]
    assert {"type": "network", "path": "/run/netns/sb"} in linux["namespaces"]
    assert [n["type"] for n in linux["namespaces"]] == ["pid", "ipc", "uts", "mount",
                                                        "network"]
    assert linux["sysctl"] == {"net.ipv4.ping_group_range": "0 2147483647",
                               "net.ipv4.ip_unprivileged_port_start": "0"}
    assert linux["cgroupsPath"] == f"/muslin/{CID}"
    assert "/proc/kcore" in linux["maskedPaths"] and "/proc/sys" in linux["readonlyPaths"]
    assert linux["resources"]["devices"][0] == {"allow": False, "access": "rwm"}


def test_mounts() -> None:
    mounts = {m["destination"]: m for m in config()["mounts"]}
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup",
                            "/dev/mqueue", "/dev/shm", "/etc/resolv.conf", "/etc/hostname",
                            "/etc/hosts"]
    assert "ro" in mounts["/sys"]["options"]
    assert "size=65536k" in mounts["/dev/shm"]["options"]
    assert mounts["/etc/hosts"] == {"destination": "/etc/hosts", "type": "bind",
                                    "source": "/c/hosts", "options": ["rbind", "rprivate"]}
    ro = {m["destination"]: m for m in config(read_only=True)["mounts"]}
    assert "ro" in ro["/etc/hosts"]["options"]
    assert config(read_only=True)["root"] == {"path": "/c/rootfs", "readonly": True}


def test_host_and_shared_network_namespaces() -> None:
    host = config(netns=None, network_mode="host")
    assert all(n["type"] != "network" for n in host["linux"]["namespaces"])
    assert host["linux"]["sysctl"] == {}
    by_path = config(netns="/run/lab/host", network_mode="host")
    assert {"type": "network", "path": "/run/lab/host"} in by_path["linux"]["namespaces"]
    assert by_path["linux"]["sysctl"] == {}
    assert config(network_mode="container")["linux"]["sysctl"] == {}
    assert config(network_mode="none")["linux"]["sysctl"]  # a namespace of its own
    # no namespace path at all is the host's, whatever the mode says
    assert config(netns=None)["linux"]["sysctl"] == {}
    with pytest.raises(InvalidParameter, match="host network namespace"):
        config(netns=None, network_mode="host", sysctls={"net.ipv4.ip_forward": "1"})
    with pytest.raises(InvalidParameter, match="another container"):
        config(network_mode="container", sysctls={"net.core.somaxconn": "1024"})


def test_user_sysctls() -> None:
    c = config(sysctls={"net.ipv4.ping_group_range": "0 0", "kernel.shmmax": "1",
                        "fs.mqueue.msg_max": "10"}, domainname="example.test")
    assert c["linux"]["sysctl"] == {"net.ipv4.ping_group_range": "0 0",
                                    "net.ipv4.ip_unprivileged_port_start": "0",
                                    "kernel.shmmax": "1", "fs.mqueue.msg_max": "10",
                                    "kernel.domainname": "example.test"}
    with pytest.raises(InvalidParameter, match="not allowed"):
        config(sysctls={"vm.swappiness": "1"})
    # default sysctls the kernel lacks are left out (runc refuses unknown ones)
    spec = ContainerSpec(id=CID, image="x", netns="/n")
    assert oci.sysctls(spec, exists=lambda n: n != "net.ipv4.ping_group_range") == {
        "net.ipv4.ip_unprivileged_port_start": "0"}


def test_capabilities_add_and_drop() -> None:
    assert oci.capabilities(["net_admin"], ["CAP_MKNOD"]) == [
        c for c in oci.DEFAULT_CAPABILITIES if c != "CAP_MKNOD"] + ["CAP_NET_ADMIN"]
    assert oci.capabilities(["ALL"], ["SYS_ADMIN"]) == [
        c for c in oci.ALL_CAPABILITIES if c != "CAP_SYS_ADMIN"]
    assert oci.capabilities(["NET_RAW"], ["ALL"]) == ["CAP_NET_RAW"]
    with pytest.raises(InvalidParameter, match="unknown capability"):
        oci.capabilities(["FLY"])


def test_rlimits_stay_within_the_machines() -> None:
    c = config(rlimits=(Rlimit("nofile", 1024, 4096), Rlimit("nproc", 100, 200)),
               hard={"nofile": 20000, "nproc": 1000})
    assert c["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
        {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200}]
    with pytest.raises(InvalidParameter, match="exceeds this machine's limit of 20000"):
        config(rlimits=(Rlimit("nofile", 1048576, 1048576),))
    with pytest.raises(InvalidParameter, match="soft limit"):
        config(rlimits=(Rlimit("nofile", 10, 5),))
    # an unlimited machine limit (-1) is no ceiling
    assert config(rlimits=(Rlimit("core", 1, 2),), hard={"nofile": 20000, "core": -1})


def test_command_rules() -> None:
    def cmd(image: dict[str, Any], **kw: Any) -> list[str]:
        return oci.command(ContainerSpec(id=CID, image="x", **kw), image)

    img = {"Entrypoint": ["/entry"], "Cmd": ["default"]}
    assert cmd(img) == ["/entry", "default"]
    assert cmd(img, cmd=["mine"]) == ["/entry", "mine"]
    assert cmd(img, entrypoint=["/other"]) == ["/other"]  # the image's Cmd goes too
    assert cmd(img, entrypoint=["/other"], cmd=["a"]) == ["/other", "a"]
    assert cmd({"Cmd": ["sh"]}, cmd=["echo", "hi"]) == ["echo", "hi"]
    with pytest.raises(InvalidParameter, match="no command specified"):
        cmd({})
    with pytest.raises(InvalidParameter, match="no command specified"):
        cmd(img, entrypoint=[])


def test_environment_and_working_dir() -> None:
    env = config(env=["IMG=2", "NEW=x", "PATH=/mine"], tty=True)["process"]["env"]
    assert env == ["PATH=/mine", f"HOSTNAME={CID[:12]}", "TERM=xterm", "IMG=2", "NEW=x"]
    env = config(env=["IMG"], hostname="web")["process"]["env"]
    assert env == ["PATH=/usr/bin:/bin", "HOSTNAME=web"]  # a bare name unsets
    assert config({"Cmd": ["sh"]})["process"]["env"][0] == f"PATH={oci.DEFAULT_PATH}"
    assert config({"Cmd": ["sh"], "WorkingDir": "/srv"})["process"]["cwd"] == "/srv"
    assert config(working_dir="/tmp")["process"]["cwd"] == "/tmp"
    with pytest.raises(InvalidParameter, match="absolute path"):
        config(working_dir="tmp")


PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nweb:x:33:33::/:\n"
GROUP = "root:x:0:\nstaff:x:50:\nnogroup:x:65534:\n"


@pytest.mark.parametrize(("user", "ids"), [
    ("", (0, 0)), ("root", (0, 0)), ("nobody", (65534, 65534)), ("33", (33, 33)),
    ("1000", (1000, 0)), ("web:staff", (33, 50)), ("1000:2000", (1000, 2000)),
    ("nobody:0", (65534, 0)),
])
def test_resolve_user(user: str, ids: tuple[int, int]) -> None:
    assert oci.resolve_user(user, PASSWD, GROUP) == ids


def test_resolve_user_unknown_names() -> None:
    with pytest.raises(InvalidParameter, match="unable to find user ghost"):
        oci.resolve_user("ghost", PASSWD, GROUP)
    with pytest.raises(InvalidParameter, match="unable to find group ghosts"):
        oci.resolve_user("web:ghosts", PASSWD, GROUP)


def test_exec_process() -> None:
    base = config()["process"]
    p = oci.exec_process(base, ["ps"], tty=True, env=["IMG=exec", "X=1"], workdir="/tmp",
                         uid_gid=(65534, 65534))
    assert p["args"] == ["ps"] and p["terminal"] is True and p["cwd"] == "/tmp"
    assert p["user"] == {"uid": 65534, "gid": 65534}
    assert p["env"] == ["PATH=/usr/bin:/bin", f"HOSTNAME={CID[:12]}", "IMG=exec", "TERM=xterm",
                        "X=1"]
    assert p["capabilities"] == base["capabilities"] and p["rlimits"] == base["rlimits"]
    plain = oci.exec_process(base, ["true"])
    assert plain["cwd"] == "/" and plain["user"] == base["user"] and not plain["terminal"]
    with pytest.raises(InvalidParameter):
        oci.exec_process(base, [])


def test_spec_validation_and_json() -> None:
    spec = ContainerSpec(id=CID, image="busybox", cmd=("a",), env=("A=1",),
                         rlimits=(Rlimit("nofile", 1, 2),), sysctls={"kernel.shmmax": "1"},
                         labels={"k": "v"}, netns="/n", tty=True)
    assert ContainerSpec.from_json(spec.to_json()) == spec
    for bad in ({"id": "short"}, {"network_mode": "bridge"}, {"hostname": "-bad"},
                {"env": ("=x",)}, {"stop_signal": "SIGNOPE"}, {"shm_size": 0}):
        with pytest.raises(InvalidParameter):
            ContainerSpec(**{"id": CID, "image": "busybox", **bad}).validate()  # type: ignore[arg-type]


def test_signal_numbers() -> None:
    assert signal_number("KILL") == signal_number("SIGKILL") == signal_number("9") == 9
    assert signal_number(15) == 15 and signal_number("sigusr1") == 10
    assert signal_number("SIGRTMIN+1") == signal_number("SIGRTMIN") + 1
    for bad in ("NOPE", "0", 99, "SIGRTMAX+1"):
        with pytest.raises(InvalidParameter):
            signal_number(bad)
