"""Where a plugin named NAME listens, found as Docker finds v1 plugins.

Sockets `SOCKETS/NAME.sock` or `SOCKETS/NAME/NAME.sock` first, then in each spec
directory `NAME.spec` (one URL: unix:///path, tcp://host:port, http(s)://...) or
`NAME.json` ({"Name", "Addr", "TLSConfig": {"InsecureSkipVerify", "CAFile",
"CertFile", "KeyFile"}}), each also under `NAME/`. The directories are settings of
the instance. Reads files only; never connects.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field

from muslin.errors import InvalidParameter

DEFAULT_SOCKETS_DIR = "/run/docker/plugins"
DEFAULT_SPEC_DIRS = ("/etc/docker/plugins", "/usr/lib/docker/plugins")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SCHEMES = ("unix", "tcp", "http", "https")


@dataclass(frozen=True)
class PluginDirs:
    """The plugin directories of one instance (Docker's by default)."""

    sockets: str = DEFAULT_SOCKETS_DIR
    specs: tuple[str, ...] = DEFAULT_SPEC_DIRS


@dataclass(frozen=True)
class TlsConfig:
    insecure_skip_verify: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True)
class PluginAddress:
    """A plugin's address: `url` is unix:///path, tcp://host:port or http(s)://."""

    name: str
    url: str
    tls: TlsConfig | None = field(default=None)
    source: str = ""  # the socket or spec file it was found in

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def unix_path(self) -> str | None:
        return self.url[len("unix://"):] if self.scheme == "unix" else None

    @property
    def host_port(self) -> tuple[str, int]:
        rest = self.url.split("://", 1)[1].split("/", 1)[0]
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidParameter(f"plugin {self.name}: address {self.url!r} needs "
                                   "host:port")
        return host.strip("[]"), int(port)


def _paths(base: str, name: str, ext: str) -> list[str]:
    return [os.path.join(base, name + ext), os.path.join(base, name, name + ext)]


def _check_url(name: str, url: str, source: str) -> str:
    url = url.strip()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in _SCHEMES or len(url) <= len(scheme) + 3:
        raise InvalidParameter(f"plugin {name}: {source}: unknown protocol in {url!r}: "
                               "expected unix://, tcp://, http:// or https://")
    return url


def _read_json(name: str, path: str) -> PluginAddress:
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise InvalidParameter(f"plugin {name}: {path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Addr"), str):
        raise InvalidParameter(f"plugin {name}: {path}: expected an object with Addr")
    tls = None
    cfg = doc.get("TLSConfig")
    if isinstance(cfg, dict):
        tls = TlsConfig(bool(cfg.get("InsecureSkipVerify", False)),
                        str(cfg.get("CAFile") or ""), str(cfg.get("CertFile") or ""),
                        str(cfg.get("KeyFile") or ""))
    return PluginAddress(name, _check_url(name, doc["Addr"], path), tls, path)


def find(name: str, dirs: PluginDirs) -> PluginAddress | None:
    """The plugin's address, or None when no socket or spec file names it."""
    if not _NAME.fullmatch(name):
        return None
    for p in _paths(dirs.sockets, name, ".sock"):
        try:
            if stat.S_ISSOCK(os.stat(p).st_mode):
                return PluginAddress(name, "unix://" + p, None, p)
        except OSError:
            continue
    for base in dirs.specs:
        for p in _paths(base, name, ".spec") + _paths(base, name, ".json"):
            if not os.path.isfile(p):
                continue
            if p.endswith(".json"):
                return _read_json(name, p)
            with open(p) as f:
                return PluginAddress(name, _check_url(name, f.read(), p), None, p)
    return None
