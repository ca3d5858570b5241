"""The OCI runtime config (runc's config.json) of a container, as Docker would write it.

Owns Docker's defaults (capabilities, mounts, masked and read-only paths, device
rules, default network sysctls, PATH) and the rules that merge a `ContainerSpec`
with its image's config (command, environment, working dir, user). Pure functions:
must not touch files, processes or the kernel. The runtime reads what they need
(the machine's rlimits, the rootfs's /etc/passwd) and passes it in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from muslin.containers.spec import ContainerSpec
from muslin.errors import InvalidParameter

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# moby oci/caps/defaults.go
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

# moby oci/defaults.go
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# Docker's device cgroup rules: deny all, then the usual character devices
# (runc appends its own defaults: null, zero, full, random, urandom, tty, ptmx...).
DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    *({"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"}
      for ma, mi in ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1))),
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
)

# Sysctls a container may set, by namespace (moby's runconfig/opts ValidateSysctl).
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
DEFAULT_NET_SYSCTLS = {
    "net.ipv4.ping_group_range": "0 2147483647",   # ICMP echo sockets without NET_RAW
    "net.ipv4.ip_unprivileged_port_start": "0",    # ports < 1024 without NET_BIND_SERVICE
}


def sysctl_exists(name: str) -> bool:
    """True when the running kernel has the sysctl (runc refuses unknown ones)."""
    return os.path.exists("/proc/sys/" + name.replace(".", "/"))


# -- merging the spec with the image --------------------------------------------

def command(spec: ContainerSpec, image_config: Mapping[str, Any]) -> list[str]:
    """Docker's rule: the entrypoint (the spec's, else the image's) followed by the
    command (the spec's; the image's only when the spec kept the image's entrypoint)."""
    if spec.entrypoint is not None:
        entry = list(spec.entrypoint)
        cmd = list(spec.cmd) if spec.cmd is not None else []
    else:
        entry = list(image_config.get("Entrypoint") or [])
        cmd = list(spec.cmd) if spec.cmd is not None else list(image_config.get("Cmd") or [])
    args = entry + cmd
    if not args:
        raise InvalidParameter("no command specified")
    return args


def replace_or_append_env(base: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """Docker's ReplaceOrAppendEnvValues: a later `K=V` replaces an earlier K; a bare
    `K` (no "=") removes K."""
    out = list(base)
    keys = {e.partition("=")[0]: i for i, e in enumerate(out)}
    for e in overrides:
        k, eq, _ = e.partition("=")
        if k in keys:
            if eq:
                out[keys[k]] = e
            else:
                out[keys[k]] = ""
        elif eq:
            keys[k] = len(out)
            out.append(e)
    return [e for e in out if e]


def environment(spec: ContainerSpec, image_config: Mapping[str, Any]) -> list[str]:
    """PATH (Docker's default), HOSTNAME, TERM=xterm with a tty, then the image's
    environment, then the spec's, each replacing what came before."""
    env = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={spec.effective_hostname}"]
    if spec.tty:
        env.append("TERM=xterm")
    env = replace_or_append_env(env, list(image_config.get("Env") or []))
    return replace_or_append_env(env, list(spec.env))


def working_dir(spec: ContainerSpec, image_config: Mapping[str, Any]) -> str:
    cwd = spec.working_dir or str(image_config.get("WorkingDir") or "") or "/"
    if not cwd.startswith("/"):
        raise InvalidParameter(f"the working directory '{cwd}' is invalid, it needs to be "
                               "an absolute path")
    return cwd


def user_of(spec: ContainerSpec, image_config: Mapping[str, Any]) -> str:
    return spec.user or str(image_config.get("User") or "")


def resolve_user(user: str, passwd: str, group: str) -> tuple[int, int]:
    """(uid, gid) of Docker's `--user` forms: "", "name", "uid", "name:group",
    "uid:gid", looked up in the container's /etc/passwd and /etc/group texts. A
    numeric uid missing from passwd is accepted with gid 0; a name is not."""
    if not user:
        return 0, 0
    u, _, g = user.partition(":")
    users = [line.split(":") for line in passwd.splitlines()
             if line and not line.startswith("#")]
    groups = [line.split(":") for line in group.splitlines()
              if line and not line.startswith("#")]
    uid: int | None = None
    gid = 0
    for f in users:
        if len(f) >= 4 and (f[0] == u or (u.isdigit() and f[2] == u)):
            uid, gid = int(f[2]), int(f[3])
            break
    if uid is None:
        if not u.isdigit():
            raise InvalidParameter(f"unable to find user {u}: no matching entries in passwd file")
        uid = int(u)
    if g:
        if g.isdigit():
            gid = int(g)
        else:
            for f in groups:
                if len(f) >= 3 and f[0] == g:
                    gid = int(f[2])
                    break
            else:
                raise InvalidParameter(
                    f"unable to find group {g}: no matching entries in group file")
    return uid, gid


def capabilities(cap_add: Sequence[str] = (), cap_drop: Sequence[str] = ()) -> list[str]:
    """Docker's defaults, plus cap_add, less cap_drop; "ALL" works in both, names
    with or without "CAP_", any case."""
    def norm(c: str) -> str:
        c = c.upper()
        return c if c == "ALL" or c.startswith("CAP_") else "CAP_" + c

    add, drop = [norm(c) for c in cap_add], [norm(c) for c in cap_drop]
    for c in [*add, *drop]:
        if c != "ALL" and c not in ALL_CAPABILITIES:
            raise InvalidParameter(f"unknown capability: {c!r}")
    # moby's TweakCapabilities: ALL added wins, then ALL dropped, then the defaults.
    if "ALL" in add:
        return [c for c in ALL_CAPABILITIES if c not in drop]
    if "ALL" in drop:
        return list(dict.fromkeys(add))
    caps = [c for c in DEFAULT_CAPABILITIES if c not in drop]
    return caps + [c for c in dict.fromkeys(add) if c not in caps]


def sysctls(spec: ContainerSpec, exists: Callable[[str], bool] = sysctl_exists
            ) -> dict[str, str]:
    """Docker's default network sysctls (only in a network namespace of the
    container's own, and only those the kernel has), then the spec's, validated as
    Docker validates them."""
    out: dict[str, str] = {}
    # no namespace path: the runtime's host namespace, whatever the mode says
    host = spec.network_mode == "host" or spec.netns is None
    if spec.network_mode in ("private", "none") and not host:
        out.update({k: v for k, v in DEFAULT_NET_SYSCTLS.items() if exists(k)})
    for k, v in spec.sysctls.items():
        if k.startswith("net."):
            if host:
                raise InvalidParameter(f"sysctl {k!r} not allowed in host network namespace")
            if spec.network_mode == "container":
                raise InvalidParameter(
                    f"sysctl {k!r} not allowed when joining another container's network "
                    "namespace")
        elif not (k in _IPC_SYSCTLS or k.startswith("fs.mqueue.")):
            raise InvalidParameter(f"sysctl {k!r} is not allowed")
        out[k] = v
    if spec.domainname:
        out["kernel.domainname"] = spec.domainname
    return out


def rlimits(spec: ContainerSpec, machine_hard: Mapping[str, int]) -> list[dict[str, Any]]:
    """The spec's rlimits; RLIMIT_NOFILE defaults to the machine's hard limit. A
    limit above what this machine allows is refused here, rather than by runc
    (root cannot raise its hard limits on these machines)."""
    given = {r.name.lower(): r for r in spec.rlimits}
    out = []
    for name, r in given.items():
        top = machine_hard.get(name)
        if top is not None and top >= 0 and r.hard > top:
            raise InvalidParameter(f"ulimit {name}: hard limit {r.hard} exceeds this "
                                   f"machine's limit of {top}")
        out.append({"type": r.oci_type, "soft": r.soft, "hard": r.hard})
    if "nofile" not in given and machine_hard.get("nofile", -1) > 0:
        n = machine_hard["nofile"]
        out.append({"type": "RLIMIT_NOFILE", "soft": n, "hard": n})
    return out


# -- the config ------------------------------------------------------------------

def mounts(spec: ContainerSpec, etc_files: Mapping[str, str]) -> list[dict[str, Any]]:
    """Docker's default mounts, then the bind mounts of /etc/hosts, /etc/hostname and
    /etc/resolv.conf (files the runtime keeps and rewrites in place)."""
    out: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777",
                     f"size={max(spec.shm_size // 1024, 1)}k"]},
    ]
    for dest in ("/etc/resolv.conf", "/etc/hostname", "/etc/hosts"):
        src = etc_files.get(dest)
        if src:
            opts = ["rbind", "rprivate"] + (["ro"] if spec.read_only else [])
            out.append({"destination": dest, "type": "bind", "source": src, "options": opts})
    return out


def build_config(spec: ContainerSpec, image_config: Mapping[str, Any], *, rootfs: str,
                 uid: int, gid: int, etc_files: Mapping[str, str], netns: str | None,
                 cgroups_path: str, machine_hard: Mapping[str, int],
                 exists: Callable[[str], bool] = sysctl_exists) -> dict[str, Any]:
    """runc's config.json for spec. `netns` is the network namespace path to join
    (None: no network namespace entry, the runtime's own). `etc_files` maps
    "/etc/hosts" etc. to the files to bind-mount."""
    caps = capabilities(spec.cap_add, spec.cap_drop)
    namespaces: list[dict[str, str]] = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                                        {"type": "mount"}]
    if netns is not None:
        namespaces.append({"type": "network", "path": netns})
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": spec.tty,
            "user": {"uid": uid, "gid": gid},
            "args": command(spec, image_config),
            "env": environment(spec, image_config),
            "cwd": working_dir(spec, image_config),
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits(spec, machine_hard),
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": spec.read_only},
        "hostname": spec.effective_hostname,
        "mounts": mounts(spec, etc_files),
        "annotations": dict(spec.labels),
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": cgroups_path,
            "sysctl": sysctls(spec, exists),
            "resources": {"devices": [dict(r) for r in DEVICE_RULES]},
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def exec_process(config_process: Mapping[str, Any], argv: Sequence[str], *,
                 tty: bool = False, env: Sequence[str] = (), workdir: str = "",
                 uid_gid: tuple[int, int] | None = None) -> dict[str, Any]:
    """The process spec of `docker exec` (runc exec --process): the container's
    process with argv, its environment plus TERM with a tty plus env (replacing),
    the working dir and user given or the container's."""
    if not argv:
        raise InvalidParameter("no exec command specified")
    base_env = list(config_process.get("env", []))
    if tty:
        base_env = replace_or_append_env(base_env, [] if any(
            e.startswith("TERM=") for e in base_env) else ["TERM=xterm"])
    proc = dict(config_process)
    proc.update({
        "terminal": tty,
        "args": list(argv),
        "env": replace_or_append_env(base_env, list(env)),
        "cwd": workdir or config_process.get("cwd", "/"),
    })
    if uid_gid is not None:
        proc["user"] = {"uid": uid_gid[0], "gid": uid_gid[1]}
    proc.pop("consoleSize", None)
    return proc
