"""Log drivers' names and options, validated as dockerd validates them.

Owns the accepted options of each driver, the built-in options every driver takes
(`mode`, `max-buffer-size`, the `cache-*` options of the local cache), the merge of a
container's LogConfig with the daemon's defaults, go-units' size parsing, and the
parsed, typed configuration (`LogConfig`) the rest of the package works from. Pure:
no I/O, no sockets; errors are `InvalidParameter` with Docker's texts.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from muslin.errors import InvalidParameter

DRIVERS = ("json-file", "local", "syslog", "journald", "gelf", "splunk", "none")
READABLE = ("json-file", "local")  # drivers whose own files `logs` reads
MODES = ("blocking", "non-blocking")

_COMMON_ATTRS = ("labels", "labels-regex", "env", "env-regex", "tag")
DRIVER_OPTS: dict[str, tuple[str, ...]] = {
    "json-file": ("max-file", "max-size", "compress", *_COMMON_ATTRS),
    "local": ("max-file", "max-size", "compress"),
    "syslog": ("syslog-address", "syslog-facility", "syslog-tls-ca-cert", "syslog-tls-cert",
               "syslog-tls-key", "syslog-tls-skip-verify", "syslog-format", *_COMMON_ATTRS),
    "journald": (*_COMMON_ATTRS,),
    "gelf": ("gelf-address", "gelf-compression-type", "gelf-compression-level",
             "gelf-tcp-max-reconnect", "gelf-tcp-reconnect-delay", *_COMMON_ATTRS),
    "splunk": ("splunk-url", "splunk-token", "splunk-source", "splunk-sourcetype",
               "splunk-index", "splunk-capath", "splunk-caname", "splunk-insecureskipverify",
               "splunk-format", "splunk-verify-connection", "splunk-gzip", "splunk-gzip-level",
               *_COMMON_ATTRS),
    "none": (),
}
CACHE_OPTS = ("cache-disabled", "cache-max-size", "cache-max-file", "cache-compress")
BUILTIN_OPTS = ("mode", "max-buffer-size", *CACHE_OPTS)

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17,
    "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}
SYSLOG_FORMATS = ("", "rfc3164", "rfc5424", "rfc5424micro")

DEFAULT_MAX_BUFFER = 1024 * 1024          # Docker's non-blocking ring buffer: 1 MiB
LOCAL_DEFAULT_MAX_SIZE = 20 * 1000 * 1000  # local driver and cache: 20 MB, 5 files, gzip
LOCAL_DEFAULT_MAX_FILE = 5

_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")


def _size(text: str, base: int) -> int:
    m = _SIZE.match(text)
    if not m:
        raise InvalidParameter(f"invalid size: '{text}'")
    number = float(m.group(1))
    power = "kmgtp".find((m.group(2) or " ").lower()) + 1
    return int(number * base ** power)


def from_human_size(text: str) -> int:
    """go-units FromHumanSize: decimal units ("10m" = 10,000,000 bytes)."""
    return _size(text, 1000)


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: binary units ("1m" = 1,048,576 bytes)."""
    return _size(text, 1024)


def parse_bool(key: str, text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise InvalidParameter(f'invalid value for {key}: strconv.ParseBool: parsing "{text}": '
                           "invalid syntax")


def _int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidParameter(f'invalid value for {key}: strconv.Atoi: parsing "{text}": '
                               "invalid syntax") from None


@dataclass(frozen=True)
class Rotation:
    """A rotated file set: max_size 0 is unlimited (and then one file)."""

    max_size: int = 0
    max_file: int = 1
    compress: bool = False


@dataclass(frozen=True)
class Address:
    """A receiver's address: scheme (udp, tcp, tcp+tls, unix, unixgram), host, port or
    path."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""


@dataclass(frozen=True)
class LogConfig:
    """One container's logging, validated (`parse`)."""

    driver: str
    opts: Mapping[str, str] = field(default_factory=dict)
    mode: str = "blocking"
    max_buffer_size: int = DEFAULT_MAX_BUFFER
    rotation: Rotation = Rotation()          # json-file and local
    cache: Rotation | None = None            # the dual-logging cache (None: no cache)

    @property
    def readable(self) -> bool:
        """`logs` can read this container's output (its driver's files or the cache)."""
        return self.driver in READABLE or self.cache is not None


def _address(key: str, text: str, schemes: tuple[str, ...], default_port: int) -> Address:
    if "://" not in text:
        raise InvalidParameter(f"{key} should be in form proto://address, got {text}")
    u = urllib.parse.urlsplit(text)
    if u.scheme not in schemes:
        raise InvalidParameter(f"unsupported scheme: '{u.scheme}'")
    if u.scheme in ("unix", "unixgram"):
        return Address(u.scheme, path=u.path)
    try:
        port = u.port or default_port
    except ValueError:
        raise InvalidParameter(f"invalid value for {key}: {text}: bad port") from None
    if not u.hostname:
        raise InvalidParameter(f"invalid value for {key}: {text}: a host is needed")
    return Address(u.scheme, host=u.hostname, port=port)


def syslog_address(text: str) -> Address:
    if not text:
        return Address("unixgram", path="/dev/log")
    return _address("syslog-address", text, ("udp", "tcp", "tcp+tls", "unix", "unixgram"), 514)


def gelf_address(text: str) -> Address:
    if not text:
        raise InvalidParameter("gelf-address is a required parameter")
    if "://" not in text:
        raise InvalidParameter(f"gelf-address should be in form proto://address, got {text}")
    u = urllib.parse.urlsplit(text)
    if u.scheme not in ("udp", "tcp"):
        raise InvalidParameter("gelf: endpoint needs to be TCP or UDP")
    try:
        port = u.port
    except ValueError:
        port = None
    if not u.hostname or port is None:
        raise InvalidParameter(f"gelf: please provide gelf-address as {u.scheme}://host:port")
    return Address(u.scheme, host=u.hostname, port=port)


def facility(text: str) -> int:
    if not text:
        return FACILITIES["daemon"]
    if text in FACILITIES:
        return FACILITIES[text]
    if text.isdigit() and 0 <= int(text) <= 23:
        return int(text)
    raise InvalidParameter("invalid syslog facility")


def _rotation(opts: Mapping[str, str], prefix: str, *, local: bool) -> Rotation:
    """json-file's (local=False) or local's max-size/max-file/compress, with Docker's
    checks and defaults."""
    size_key, file_key, comp_key = (f"{prefix}max-size", f"{prefix}max-file",
                                    f"{prefix}compress")
    if local:
        max_size, max_file, compress = LOCAL_DEFAULT_MAX_SIZE, LOCAL_DEFAULT_MAX_FILE, True
    else:
        max_size, max_file, compress = 0, 1, False
    if size_key in opts:
        try:
            max_size = from_human_size(opts[size_key])
        except InvalidParameter as e:
            raise InvalidParameter(f"invalid value for {size_key}: {opts[size_key]}: {e}"
                                   ) from None
        if not local and max_size <= 0:
            raise InvalidParameter(f"{size_key} must be a positive number")
        if local and max_size < 0:
            raise InvalidParameter(f"{size_key} must not be negative")
    if file_key in opts:
        max_file = _int(file_key, opts[file_key])
        if not local and max_file < 1:
            raise InvalidParameter(f"{file_key} cannot be less than 1")
        if local and max_file < 0:
            raise InvalidParameter(f"{file_key} must not be negative")
    if comp_key in opts:
        compress = parse_bool(comp_key, opts[comp_key])
        if not local and compress and (max_file == 1 or max_size <= 0):
            raise InvalidParameter(f"{comp_key} cannot be true when {file_key} is less than 2 "
                                   f"or {size_key} is not set")
    if local and compress and max_file <= 1:
        if comp_key in opts:
            raise InvalidParameter("compression cannot be enabled when max file count is 1")
        compress = False
    if max_size <= 0:
        max_file = 1
    return Rotation(max_size, max(max_file, 1), compress)


def _check_driver(driver: str, opts: Mapping[str, str]) -> None:
    """The driver's own options (Docker's ValidateLogOpt of each driver)."""
    if driver == "syslog":
        syslog_address(opts.get("syslog-address", ""))
        facility(opts.get("syslog-facility", ""))
        if opts.get("syslog-format", "") not in SYSLOG_FORMATS:
            raise InvalidParameter(f"Invalid syslog format: {opts['syslog-format']}")
    elif driver == "gelf":
        gelf_address(opts.get("gelf-address", ""))
        ctype = opts.get("gelf-compression-type", "gzip")
        if ctype not in ("gzip", "zlib", "none"):
            raise InvalidParameter("Unknown gelf compression type: " + ctype)
        if "gelf-compression-level" in opts:
            level = _int("gelf-compression-level", opts["gelf-compression-level"])
            if not -1 <= level <= 9:
                raise InvalidParameter("gelf-compression-level must be between -1 and 9")
    elif driver == "splunk":
        for key in ("splunk-url", "splunk-token"):
            if not opts.get(key):
                raise InvalidParameter(f"splunk: {key} is expected")
        u = urllib.parse.urlsplit(opts["splunk-url"])
        if u.scheme not in ("http", "https") or not u.hostname or u.path not in ("", "/") \
                or u.query or u.fragment:
            raise InvalidParameter("splunk: expected format scheme://dns_name_or_ip:port for "
                                   "splunk-url")
        fmt = opts.get("splunk-format", "inline")
        if fmt not in ("inline", "json", "raw"):
            raise InvalidParameter(f"Unknown format specified {fmt}, supported formats are "
                                   "inline, json and raw")
        for key in ("splunk-insecureskipverify", "splunk-verify-connection", "splunk-gzip"):
            if key in opts:
                parse_bool(key, opts[key])
    elif driver in ("json-file", "local"):
        _rotation(opts, "", local=driver == "local")


def parse(driver: str, opts: Mapping[str, str]) -> LogConfig:
    """Validates a driver and its options as dockerd does (unknown driver, unknown
    option, bad values: InvalidParameter with Docker's text) and returns the typed
    configuration."""
    if driver not in DRIVERS:
        raise InvalidParameter(f"logger: no log driver named '{driver}' is registered")
    if driver == "none":
        if opts:
            raise InvalidParameter("invalid logging opts for driver none")
        return LogConfig("none", {})
    mode = opts.get("mode", "")
    if mode not in ("", *MODES):
        raise InvalidParameter(f"logger: unknown log mode: {mode}")
    max_buffer = DEFAULT_MAX_BUFFER
    if "max-buffer-size" in opts:
        if mode != "non-blocking":
            raise InvalidParameter("logger: max-buffer-size option is only supported with "
                                   "'mode=non-blocking'")
        try:
            max_buffer = ram_in_bytes(opts["max-buffer-size"])
        except InvalidParameter as e:
            raise InvalidParameter(f"error parsing option max-buffer-size: {e}") from None
    if "cache-disabled" in opts:
        try:
            disabled = parse_bool("cache-disabled", opts["cache-disabled"])
        except InvalidParameter:
            raise InvalidParameter(f"invalid value for option cache-disabled: "
                                   f"{opts['cache-disabled']}") from None
    else:
        disabled = False
    own = {k: v for k, v in opts.items() if k not in BUILTIN_OPTS}
    for key in own:
        if key not in DRIVER_OPTS[driver]:
            raise InvalidParameter(f"unknown log opt '{key}' for {driver} log driver")
    _check_driver(driver, own)
    cache = None
    if driver not in READABLE and not disabled:
        cache = _rotation(opts, "cache-", local=True)
    rotation = _rotation(own, "", local=driver == "local") if driver in READABLE else Rotation()
    return LogConfig(driver, dict(opts), mode or "blocking", max_buffer, rotation, cache)


def merge(requested: Mapping[str, object] | None, default_driver: str,
          default_opts: Mapping[str, str]) -> dict[str, object]:
    """A container's HostConfig.LogConfig made whole with the daemon's defaults, as
    dockerd: no type takes the daemon's driver and, when no option is given, its
    options; the daemon's cache-* options apply to every container that does not set
    them. Returns Docker's {"Type", "Config"} shape."""
    requested = requested or {}
    kind = str(requested.get("Type") or "")
    raw = requested.get("Config") or {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise InvalidParameter("invalid value for HostConfig.LogConfig.Config: expected an "
                               "object of strings")
    config = {str(k): str(v) for k, v in raw.items()}
    if not kind:
        kind = default_driver
        if not config:
            config = dict(default_opts)
    elif kind == default_driver and not config:
        config = dict(default_opts)
    if kind != "none":
        for k, v in default_opts.items():
            if k in CACHE_OPTS:
                config.setdefault(k, v)
    return {"Type": kind, "Config": config}
