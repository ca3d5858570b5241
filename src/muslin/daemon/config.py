"""muslind's configuration: command-line flags and daemon.json, with Docker's names.

Pure apart from reading the file: merges flags over the file, refuses unknown keys,
bad values and keys given both ways, each error naming the key as dockerd does.
Must not start anything.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from muslin import ipam
from muslin.errors import InvalidParameter

DEFAULT_CONFIG_FILE = "/etc/muslin/daemon.json"
DEFAULT_HOST = "unix:///run/muslin/muslin.sock"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
LOG_DRIVERS = ("json-file", "local", "syslog", "journald", "gelf", "splunk", "none")


@dataclass
class DaemonConfig:
    config_file: str = DEFAULT_CONFIG_FILE
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_HOST])
    data_root: str = "/var/lib/muslin"
    exec_root: str = "/run/muslin"
    pidfile: str = ""
    log_level: str = "info"
    default_address_pools: list[dict[str, Any]] = field(default_factory=list)
    bip: str = ""
    fixed_cidr_v6: str = ""
    ipv6: bool = False
    mtu: int = 0
    icc: bool = True
    ip_masq: bool = True
    ip_forward: bool = True
    iptables: bool = True
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opts: list[str] = field(default_factory=list)
    resolv_conf: str = "/etc/resolv.conf"
    live_restore: bool = False
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    userland_proxy: bool = False
    # remote drivers: where plugins are found (Docker's directories by default) and how
    # long a call retries an unreachable plugin (Docker: 30 s)
    plugin_sockets_dir: str = "/run/docker/plugins"
    plugin_spec_dirs: list[str] = field(
        default_factory=lambda: ["/etc/docker/plugins", "/usr/lib/docker/plugins"])
    plugin_timeout: float = 30.0
    prefix: str | None = None

    @property
    def socket_path(self) -> str:
        return self.hosts[0][len("unix://"):]

    @property
    def pidfile_path(self) -> str:
        return self.pidfile or f"{self.exec_root}/muslind.pid"


def _bool(key: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise InvalidParameter(f"invalid value for {key}: expected true or false, got {v!r}")


def _str(key: str, v: Any) -> str:
    if isinstance(v, str):
        return v
    raise InvalidParameter(f"invalid value for {key}: expected a string, got {v!r}")


def _strs(key: str, v: Any) -> list[str]:
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    raise InvalidParameter(f"invalid value for {key}: expected a list of strings, got {v!r}")


def _log_level(key: str, v: Any) -> str:
    s = _str(key, v).lower()
    if s == "warning":
        s = "warn"
    if s not in LOG_LEVELS:
        raise InvalidParameter(f"invalid value for {key}: {v!r}: accepted are "
                               + ", ".join(LOG_LEVELS))
    return s


def _mtu(key: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not (v == 0 or 68 <= v <= 65535):
        raise InvalidParameter(f"invalid value for {key}: {v!r}: an integer from 68 to 65535")
    return v


def _cidr(key: str, v: Any) -> str:
    s = _str(key, v)
    try:
        ipaddress.ip_interface(s)
    except ValueError:
        raise InvalidParameter(f"invalid value for {key}: {s!r}: an address in CIDR "
                               "notation, such as 172.17.0.1/16") from None
    if "/" not in s:
        raise InvalidParameter(f"invalid value for {key}: {s!r}: a prefix length is needed")
    return s


def _pools(key: str, v: Any) -> list[dict[str, Any]]:
    if not isinstance(v, list):
        raise InvalidParameter(f"invalid value for {key}: expected a list of "
                               '{"base": CIDR, "size": N}')
    ipam.parse_address_pools(v)  # raises naming default-address-pools[i].field
    return list(v)


def _log_driver(key: str, v: Any) -> str:
    s = _str(key, v)
    if s not in LOG_DRIVERS:
        raise InvalidParameter(f"invalid value for {key}: {s!r}: accepted are "
                               + ", ".join(LOG_DRIVERS))
    return s


def _str_map(key: str, v: Any) -> dict[str, str]:
    if isinstance(v, dict) and all(isinstance(x, str) for x in v.values()):
        return dict(v)
    raise InvalidParameter(f"invalid value for {key}: expected an object of strings")


def _seconds(key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 3600:
        raise InvalidParameter(f"invalid value for {key}: {v!r}: seconds, more than 0 and "
                               "at most 3600")
    return float(v)


def _hosts(key: str, v: Any) -> list[str]:
    hosts = _strs(key, v)
    for h in hosts:
        if not h.startswith("unix://") or len(h) <= len("unix://"):
            raise InvalidParameter(f"invalid value for {key}: {h!r}: only unix:///path "
                                   "sockets are supported")
    return hosts or [DEFAULT_HOST]


# daemon.json key -> (attribute, validator)
KEYS: dict[str, tuple[str, Callable[[str, Any], Any]]] = {
    "hosts": ("hosts", _hosts),
    "data-root": ("data_root", _str),
    "exec-root": ("exec_root", _str),
    "pidfile": ("pidfile", _str),
    "log-level": ("log_level", _log_level),
    "default-address-pools": ("default_address_pools", _pools),
    "bip": ("bip", _cidr),
    "fixed-cidr-v6": ("fixed_cidr_v6", _cidr),
    "ipv6": ("ipv6", _bool),
    "mtu": ("mtu", _mtu),
    "icc": ("icc", _bool),
    "ip-masq": ("ip_masq", _bool),
    "ip-forward": ("ip_forward", _bool),
    "iptables": ("iptables", _bool),
    "dns": ("dns", _strs),
    "dns-search": ("dns_search", _strs),
    "dns-opts": ("dns_opts", _strs),
    "resolv-conf": ("resolv_conf", _str),
    "live-restore": ("live_restore", _bool),
    "log-driver": ("log_driver", _log_driver),
    "log-opts": ("log_opts", _str_map),
    "userland-proxy": ("userland_proxy", _bool),
    "plugin-sockets-dir": ("plugin_sockets_dir", _str),
    "plugin-spec-dirs": ("plugin_spec_dirs", _strs),
    "plugin-timeout": ("plugin_timeout", _seconds),
}
RELOADABLE = ("log-level", "default-address-pools", "live-restore", "dns", "dns-search",
              "dns-opts", "log-driver", "log-opts")


def _boolean_flag(s: str) -> bool:
    if s.lower() in ("true", "1"):
        return True
    if s.lower() in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {s!r}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="muslind", description="muslin daemon: Docker-style "
                                "container networking behind the Docker Engine API")
    p.add_argument("--config-file", default=DEFAULT_CONFIG_FILE)
    p.add_argument("-H", "--host", dest="hosts", action="append")
    p.add_argument("--data-root")
    p.add_argument("--exec-root")
    p.add_argument("-p", "--pidfile")
    p.add_argument("-l", "--log-level")
    p.add_argument("-D", "--debug", action="store_true")
    p.add_argument("--default-address-pool", dest="default_address_pools", action="append",
                   metavar="base=CIDR,size=N")
    p.add_argument("--bip")
    p.add_argument("--fixed-cidr-v6")
    for name in ("ipv6", "icc", "ip-masq", "ip-forward", "iptables", "live-restore",
                 "userland-proxy"):
        p.add_argument(f"--{name}", type=_boolean_flag, nargs="?", const=True)
    p.add_argument("--mtu", type=int)
    p.add_argument("--dns", action="append")
    p.add_argument("--dns-search", action="append")
    p.add_argument("--dns-opt", dest="dns_opts", action="append")
    p.add_argument("--resolv-conf", help="the host's resolv.conf: its servers answer "
                   "containers without --dns (default /etc/resolv.conf)")
    p.add_argument("--log-driver")
    p.add_argument("--log-opt", dest="log_opts", action="append", metavar="KEY=VALUE")
    p.add_argument("--plugin-sockets-dir", help="where plugin sockets are found "
                   "(default /run/docker/plugins)")
    p.add_argument("--plugin-spec-dir", dest="plugin_spec_dirs", action="append",
                   help="where plugin .spec/.json files are found (repeatable; default "
                   "/etc/docker/plugins and /usr/lib/docker/plugins)")
    p.add_argument("--plugin-timeout", type=float, help="seconds a call retries an "
                   "unreachable plugin (default 30)")
    p.add_argument("--prefix", help="name prefix of an isolated instance (tests)")
    return p


def _pool_flag(spec: str) -> dict[str, Any]:
    """--default-address-pool base=10.10.0.0/16,size=24"""
    d = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
    try:
        size = int(d.get("size", "0") or 0)
    except ValueError:
        raise InvalidParameter(f"invalid value for default-address-pool: {spec!r}: "
                               "size must be an integer") from None
    return {"base": d.get("base", ""), "size": size}


def _flag_values(ns: argparse.Namespace) -> dict[str, Any]:
    """Flags given on the command line, as daemon.json keys and values."""
    out: dict[str, Any] = {}
    for key, (attr, _) in KEYS.items():
        v = getattr(ns, attr, None)
        if v is None:
            continue
        if key == "default-address-pools":
            out[key] = [_pool_flag(str(spec)) for spec in v]
        elif key == "log-opts":
            out[key] = dict(str(s).split("=", 1) for s in v if "=" in str(s))
        else:
            out[key] = v
    if ns.debug and "log-level" not in out:
        out["log-level"] = "debug"
    return out


def read_file(path: str, *, required: bool) -> dict[str, Any]:
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        if required:
            raise InvalidParameter(f"unable to configure the daemon: {path}: no such "
                                   "file") from None
        return {}
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InvalidParameter(f"unable to configure the daemon: {path}: invalid JSON: "
                               f"{e}") from None
    if not isinstance(data, dict):
        raise InvalidParameter(f"unable to configure the daemon: {path}: expected a JSON "
                               "object")
    return data


def load(argv: Sequence[str] | None = None) -> DaemonConfig:
    ns = parser().parse_args(argv)
    flags = _flag_values(ns)
    explicit_file = ns.config_file != DEFAULT_CONFIG_FILE
    file_values = read_file(ns.config_file, required=explicit_file)
    unknown = sorted(set(file_values) - set(KEYS))
    if unknown:
        raise InvalidParameter("the following directives don't match any configuration "
                               f"option: {', '.join(unknown)}")
    both = sorted(set(file_values) & set(flags))
    if both:
        raise InvalidParameter("the following directives are specified both as a flag and "
                               f"in the configuration file: {', '.join(both)}")
    cfg = DaemonConfig(config_file=ns.config_file, prefix=ns.prefix)
    for key, value in {**file_values, **flags}.items():
        attr, check = KEYS[key]
        setattr(cfg, attr, check(key, value))
    _check_log_opts(cfg.log_driver, cfg.log_opts)
    return cfg


def _check_log_opts(driver: str, opts: dict[str, str]) -> None:
    """The daemon's default log driver and options, validated as a container's."""
    from muslin.logdrivers import options

    try:
        options.parse(driver, opts)
    except InvalidParameter as e:
        raise InvalidParameter(f"invalid value for log-opts: {e}") from None


def reload_values(cfg: DaemonConfig) -> dict[str, Any]:
    """The reloadable keys of the config file, validated (for SIGHUP)."""
    values = read_file(cfg.config_file, required=False)
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise InvalidParameter("the following directives don't match any configuration "
                               f"option: {', '.join(unknown)}")
    out = {}
    for key, value in values.items():
        attr, check = KEYS[key]
        if key in RELOADABLE:
            out[attr] = check(key, value)
    _check_log_opts(out.get("log_driver", "json-file"), out.get("log_opts", {}))
    return out
