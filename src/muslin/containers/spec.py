"""What a container is asked to be: `ContainerSpec`, as the Engine layer hands it over.

Owns the spec's fields, their validation and their JSON form (the runtime keeps it
next to the bundle, so a restarted daemon reads it back). Must not touch the
filesystem or the kernel, and knows nothing of images, networks or runc: the Engine
layer fills it in, `muslin.containers.oci` turns it into an OCI config.
"""

from __future__ import annotations

import dataclasses
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from muslin.errors import InvalidParameter

# The network modes the OCI config distinguishes (Docker's HostConfig.NetworkMode,
# with user-defined and bridge networks both "private": a sandbox of their own).
NETWORK_MODES = ("private", "none", "host", "container")

_ID = re.compile(r"[0-9a-f]{64}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,62})?")


@dataclass(frozen=True)
class Rlimit:
    """A resource limit, named as Docker's --ulimit does ("nofile", "nproc", ...)."""

    name: str
    soft: int
    hard: int

    @property
    def oci_type(self) -> str:
        return "RLIMIT_" + self.name.upper()


@dataclass(frozen=True)
class ContainerSpec:
    """One container, as the runtime creates it.

    `netns` is the path of the network namespace the container joins (a sandbox's
    `netns_path`, or the lab host's for a host-network container); None means the
    runtime's own host namespace (`Runtime(host_netns=...)`, or the machine's).
    `network_mode` says whose namespace that is: Docker sets its default network
    sysctls only in a namespace of the container's own ("private", "none") and
    refuses `net.*` sysctls in the host's or another container's.
    `cmd`/`entrypoint` None mean the image's; `etc_hosts`/`resolv_conf` are the
    files' contents (build them with `muslin.containers.etcfiles`); None gives
    Docker's defaults (no addresses; the host's resolv.conf, made fit).
    """

    id: str
    image: str
    name: str = ""
    cmd: Sequence[str] | None = None
    entrypoint: Sequence[str] | None = None
    env: Sequence[str] = ()
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    domainname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    netns: str | None = None
    network_mode: str = "private"
    sysctls: Mapping[str, str] = field(default_factory=dict)
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    read_only: bool = False
    rlimits: Sequence[Rlimit] = ()
    shm_size: int = 64 * 1024 * 1024
    etc_hosts: str | None = None
    resolv_conf: str | None = None
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    log_size_max: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def effective_hostname(self) -> str:
        """Docker's default hostname is the short id."""
        return self.hostname or self.id[:12]

    def validate(self) -> None:
        if not _ID.fullmatch(self.id):
            raise InvalidParameter(f"invalid container id {self.id!r}: 64 lowercase hex digits")
        if not self.image:
            raise InvalidParameter("no image given")
        if self.network_mode not in NETWORK_MODES:
            raise InvalidParameter(f"invalid network mode {self.network_mode!r}: one of "
                                   f"{', '.join(NETWORK_MODES)}")
        if self.hostname and not _HOSTNAME.fullmatch(self.hostname):
            raise InvalidParameter(f"invalid hostname format: {self.hostname}")
        for e in self.env:
            if not e or e.startswith("="):
                raise InvalidParameter(f"invalid environment variable: {e!r}")
        for r in self.rlimits:
            if r.soft < 0 or r.hard < 0 or r.soft > r.hard:
                raise InvalidParameter(
                    f"ulimit {r.name}: soft limit {r.soft} must not exceed hard limit {r.hard}")
        if self.shm_size <= 0:
            raise InvalidParameter("SHM size can not be less than 0")
        if self.stop_timeout < 0:
            raise InvalidParameter("stop timeout must not be negative")
        signal_number(self.stop_signal)

    # -- JSON ----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("cmd", "entrypoint"):
            if d[k] is not None:
                d[k] = list(d[k])
        d["env"], d["cap_add"], d["cap_drop"] = list(self.env), list(self.cap_add), list(
            self.cap_drop)
        d["sysctls"], d["labels"] = dict(self.sysctls), dict(self.labels)
        d["rlimits"] = [dataclasses.asdict(r) for r in self.rlimits]
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ContainerSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["rlimits"] = tuple(Rlimit(**r) for r in d.get("rlimits", ()))
        for k in ("env", "cap_add", "cap_drop"):
            kw[k] = tuple(d.get(k, ()))
        for k in ("cmd", "entrypoint"):
            if d.get(k) is not None:
                kw[k] = tuple(d[k])
        return cls(**kw)


def signal_number(sig: str | int) -> int:
    """A signal given as Docker accepts it ("KILL", "SIGKILL", "9", 9) as its number."""
    if isinstance(sig, int) or (isinstance(sig, str) and sig.isdigit()):
        n = int(sig)
        if 0 < n < signal.NSIG:
            return n
        raise InvalidParameter(f"invalid signal: {sig}")
    name = sig.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
            base = signal.SIGRTMIN if name.startswith("SIGRTMIN") else signal.SIGRTMAX
            try:
                off = int(name[9:])
            except ValueError:
                pass
            else:
                n = base + off if name.startswith("SIGRTMIN") else base - off
                if signal.SIGRTMIN <= n <= signal.SIGRTMAX:
                    return int(n)
        raise InvalidParameter(f"invalid signal: {sig}") from None
