"""`muslin version`, `muslin info` and `muslin system events`.

Owns the Client/Server text of `version` (docker's layout through a tabwriter), the
short `info`, and the event stream printed as `docker events` prints it, with its
--since/--until values turned into the timestamps the API takes (durations like
`10m`, RFC 3339 dates, unix seconds).
"""

from __future__ import annotations

import re
import time

from muslin.cli.client import API_VERSION, filters_query
from muslin.cli.errors import StatusError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from muslin.cli.cmdline import Options
    from muslin.cli.context import Context
    from muslin.cli.gotemplate import Template


def _template(fmt: str, code: int = 64, prefix: str = "template parsing error: ") -> Template:
    from muslin.cli.gotemplate import Template, TemplateError

    try:
        return Template("{{json .}}" if fmt == "json" else fmt)
    except TemplateError as e:
        raise StatusError(f"{prefix}{e}", code) from None


def _client_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("muslin")
    except metadata.PackageNotFoundError:
        return "unknown"


def _arch() -> str:
    import os

    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "i386": "386"}.get(machine, machine)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def reformat_date(build_time: str) -> str:
    """docker's reformatDate: an RFC 3339 build time as time.ANSIC."""
    from muslin.cli.views import days_from_civil

    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$",
                 build_time)
    if not m:
        return build_time
    y, mo, d = int(m[1]), int(m[2]), int(m[3])
    if not 1 <= mo <= 12:
        return build_time
    weekday = (days_from_civil(y, mo, d) + 3) % 7  # 1970-01-01 was a Thursday
    return f"{_DAYS[weekday]} {_MONTHS[mo - 1]} {d:2d} {m[4]}:{m[5]}:{m[6]} {y}"


# -- version -------------------------------------------------------------------------


def version_text(client: dict[str, Any], server: dict[str, Any] | None) -> str:
    """docker's default version template through its tabwriter (`server` as returned
    by `_components`)."""
    from muslin.cli.tabwriter import tabwrite

    api = client["ApiVersion"]
    downgraded = (f" (downgraded from {client['DefaultAPIVersion']})"
                  if api != client["DefaultAPIVersion"] else "")
    lines = ["Client:",
             f" Version:\t{client['Version']}",
             f" API version:\t{api}{downgraded}",
             f" Python version:\t{client['PythonVersion']}",
             f" OS/Arch:\t{client['Os']}/{client['Arch']}",
             f" Context:\t{client['Context']}"]
    if server is not None:
        platform = server.get("Platform") or {}
        name = platform.get("Name", "") if isinstance(platform, dict) else ""
        lines += ["", "Server:" + (f" {name}" if name else "")]
        for comp in server.get("Components") or []:
            details = comp.get("Details") or {}
            lines.append(f" {comp.get('Name', '')}:")
            if comp.get("Name") == "Engine":
                lines.append(f"  Version:\t{comp.get('Version', '')}")
                lines.append(f"  API version:\t{details.get('ApiVersion', '')} (minimum "
                             f"version {details.get('MinAPIVersion', '')})")
                for label, key in (("Go version", "GoVersion"),
                                   ("Python version", "PythonVersion"),
                                   ("Git commit", "GitCommit"), ("Built", "BuildTime")):
                    if details.get(key):
                        lines.append(f"  {label}:\t{details[key]}")
                lines.append(f"  OS/Arch:\t{details.get('Os', '')}/{details.get('Arch', '')}")
                lines.append(f"  Experimental:\t{details.get('Experimental', 'false')}")
            else:
                lines.append(f"  Version:\t{comp.get('Version', '')}")
                lines += [f"  {k}:\t{details[k]}" for k in sorted(details)]
    return tabwrite("\n".join(lines) + "\n", minwidth=20, padding=1)


def _components(server: dict[str, Any]) -> list[dict[str, Any]]:
    comps = [c for c in server.get("Components") or [] if isinstance(c, dict)]
    for c in comps:
        if c.get("Name") == "Engine" and isinstance(c.get("Details"), dict):
            c["Details"] = dict(c["Details"])
            if "BuildTime" in c["Details"]:
                c["Details"]["BuildTime"] = reformat_date(str(c["Details"]["BuildTime"]))
    if not any(c.get("Name") == "Engine" for c in comps):
        comps.append({"Name": "Engine", "Version": server.get("Version", ""), "Details": {
            "ApiVersion": server.get("ApiVersion", ""),
            "MinAPIVersion": server.get("MinAPIVersion", ""),
            "GitCommit": server.get("GitCommit", ""), "GoVersion": server.get("GoVersion", ""),
            "Os": server.get("Os", ""), "Arch": server.get("Arch", ""),
            "BuildTime": reformat_date(str(server.get("BuildTime", ""))),
            "Experimental": "true" if server.get("Experimental") else "false",
        }})
    return comps


def version(ctx: Context, opts: Options, args: list[str]) -> int:
    import sys

    fmt = opts.string("format")
    tmpl = _template(fmt) if fmt else None
    server: dict[str, Any] | None = None
    failure: StatusError | None = None
    try:
        ctx.client.negotiate()
        got = ctx.client.get_json("/version")
        server = got if isinstance(got, dict) else {}
        server["Components"] = _components(server)  # as docker: before any --format
    except StatusError as e:
        failure = e
    client = {
        "Version": _client_version(),
        "ApiVersion": ctx.client.api_version or API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "PythonVersion": ".".join(str(p) for p in sys.version_info[:3]),
        "Os": sys.platform,
        "Arch": _arch(),
        "Context": "default",
    }
    if tmpl is None:
        ctx.out(version_text(client, server))
    else:
        from muslin.cli import govalues as gv
        from muslin.cli.gotemplate import TemplateError
        from muslin.cli.views import TypedStruct, typed

        client_struct = TypedStruct("main.clientVersion", [
            ("Version", client["Version"]), ("APIVersion", client["ApiVersion"]),
            ("DefaultAPIVersion", client["DefaultAPIVersion"]),
            ("PythonVersion", client["PythonVersion"]), ("Os", client["Os"]),
            ("Arch", client["Arch"]), ("Context", client["Context"])], gv.JSONObject(client))
        info = TypedStruct("main.versionInfo", [
            ("Client", client_struct),
            ("Server", typed("types.Version", server) if server is not None else None)], None)
        try:
            ctx.out(tmpl.execute(info) + "\n")
        except TemplateError as e:
            ctx.out(e.partial + "\n")
            if failure is None:
                raise StatusError(str(e)) from None
    if failure is not None:
        raise failure
    return 0


# -- info ----------------------------------------------------------------------------


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024
        i += 1
    return f"{size:.4g}{units[i]}"


def _go(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def info_text(client: dict[str, Any], s: dict[str, Any] | None) -> str:
    """`docker info`'s layout for the fields a network daemon has."""
    out = ["Client:", f" Version:    {client['Version']}", f" Context:    {client['Context']}",
           f" Debug Mode: {_go(client['Debug'])}", "", "Server:"]
    if s is None:
        return "\n".join(out) + "\n"

    def line(label: str, value: Any, nonempty: bool = False) -> None:
        if not nonempty or _go(value) != "":
            out.append(f"{label} {_go(value)}")

    line(" Containers:", s.get("Containers", 0))
    line("  Running:", s.get("ContainersRunning", 0))
    line("  Paused:", s.get("ContainersPaused", 0))
    line("  Stopped:", s.get("ContainersStopped", 0))
    line(" Images:", s.get("Images", 0))
    line(" Server Version:", s.get("ServerVersion"), True)
    line(" Storage Driver:", s.get("Driver"), True)
    for pair in s.get("DriverStatus") or []:
        out.append(f"  {pair[0]}: {pair[1]}")
    for pair in s.get("SystemStatus") or []:
        out.append(f" {pair[0]}: {pair[1]}")
    line(" Logging Driver:", s.get("LoggingDriver"), True)
    line(" Cgroup Driver:", s.get("CgroupDriver"), True)
    line(" Cgroup Version:", s.get("CgroupVersion"), True)
    plugins = s.get("Plugins") or {}
    out.append(" Plugins:")
    line("  Volume:", " ".join(plugins.get("Volume") or []))
    line("  Network:", " ".join(plugins.get("Network") or []))
    if plugins.get("Authorization"):
        line("  Authorization:", " ".join(plugins["Authorization"]))
    line("  Log:", " ".join(plugins.get("Log") or []))
    swarm = s.get("Swarm") or {}
    line(" Swarm:", swarm.get("LocalNodeState", "") if isinstance(swarm, dict) else "")
    line(" Kernel Version:", s.get("KernelVersion"), True)
    line(" Operating System:", s.get("OperatingSystem"), True)
    line(" OSType:", s.get("OSType"), True)
    line(" Architecture:", s.get("Architecture"), True)
    line(" CPUs:", s.get("NCPU", 0))
    line(" Total Memory:", bytes_size(float(s.get("MemTotal") or 0)))
    line(" Name:", s.get("Name"), True)
    line(" ID:", s.get("ID"), True)
    line(" Docker Root Dir:", s.get("DockerRootDir", ""))
    line(" Debug Mode:", bool(s.get("Debug")))
    for label, key in ((" HTTP Proxy:", "HttpProxy"), (" HTTPS Proxy:", "HttpsProxy"),
                       (" No Proxy:", "NoProxy")):
        line(label, s.get(key), True)
    if s.get("Labels"):
        out.append(" Labels:")
        out += [f"  {lbl}" for lbl in s["Labels"]]
    line(" Experimental:", bool(s.get("ExperimentalBuild")))
    line(" Live Restore Enabled:", bool(s.get("LiveRestoreEnabled")))
    pools = s.get("DefaultAddressPools") or []
    if pools:
        out.append(" Default Address Pools:")
        out += [f"   Base: {p.get('Base', '')}, Size: {p.get('Size', 0)}" for p in pools]
    return "\n".join(out) + "\n\n"


def info(ctx: Context, opts: Options, args: list[str]) -> int:
    fmt = opts.string("format")
    tmpl = _template(fmt) if fmt else None
    client = {"Version": _client_version(), "Context": "default", "Debug": ctx.debug,
              "Plugins": [], "Warnings": None}
    server: dict[str, Any] | None = None
    errors: list[str] = []
    failure: StatusError | None = None
    try:
        got = ctx.client.get_json("/info")
        server = got if isinstance(got, dict) else {}
    except StatusError as e:
        errors.append(e.message)
        failure = e
    if tmpl is not None:
        from muslin.cli.gotemplate import TemplateError

        data: dict[str, Any] = dict(server or {})
        data["ClientInfo"] = client
        if errors:
            data["ServerErrors"] = errors
            ctx.err("".join(f"{e}\n" for e in errors))
        try:
            ctx.out(tmpl.execute(data) + "\n")
        except TemplateError as e:
            ctx.out(e.partial + "\n")
            raise StatusError(str(e)) from None
        return 1 if errors else 0
    ctx.out(info_text(client, server))
    if server is not None:
        ctx.err("".join(f"{w}\n" for w in server.get("Warnings") or []))
    if failure is not None:  # one line, as docker 28 prints it (27 added two more)
        raise failure
    return 0


# -- events --------------------------------------------------------------------------

_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0}
_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?)?"
                   r"(Z|z|[+-]\d\d:\d\d)?$")


def parse_duration(value: str) -> float | None:
    """time.ParseDuration in seconds, or None when `value` is not a duration."""
    s = value
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    if s == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(s):
        m = _DURATION.match(s, pos)
        if not m or m.group(1) in ("", "."):
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total if s else None


def get_timestamp(value: str, now: float) -> str:
    """docker's timetypes.GetTimestamp: a duration (before now), a date, or unix seconds."""
    from muslin.cli.views import days_from_civil

    d = parse_duration(value)
    if d is not None and value != "0":
        return str(int(now - d) if now - d >= 0 else -int(d - now))
    m = _DATE.match(value)
    if m:
        y, mo, dd, hh, mi, ss, frac, zone = m.groups()
        if zone in (None, ""):
            offset = time.localtime(now).tm_gmtoff
        elif zone in ("Z", "z"):
            offset = 0
        else:
            offset = (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
        secs = (days_from_civil(int(y), int(mo), int(dd)) * 86400 + int(hh or 0) * 3600
                + int(mi or 0) * 60 + int(ss or 0) - offset)
        return f"{secs}.{int((frac or '0').ljust(9, '0')):09d}"
    if "-" not in value and re.fullmatch(r"\d+(\.\d+)?", value):
        return value
    if "-" in value:
        raise StatusError(f'parsing time "{value}": cannot parse as a date')
    raise StatusError(f'failed to parse value as time or duration: "{value}"')


def pretty_event(ev: dict[str, Any]) -> str:
    """docker's prettyPrintEvent, without the newline."""
    from muslin.cli.views import event_time

    nano = ev.get("timeNano") or 0
    secs = ev.get("time") or 0
    prefix = event_time(int(nano), int(secs)) + " " if (nano or secs) else ""
    actor = ev.get("Actor") or {}
    text = f"{prefix}{ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        text += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return text


def events(ctx: Context, opts: Options, args: list[str]) -> int:
    from muslin.cli.gotemplate import TemplateError
    from muslin.cli.views import typed

    fmt = opts.string("format")
    tmpl = None
    if fmt:
        tmpl = _template(fmt, 64, "Error parsing format: ")
        try:
            tmpl.execute(typed("events.Message", {}))
        except TemplateError as e:
            raise StatusError(f"Error parsing format: {e}", 64) from None
    now = time.time()
    query: dict[str, str] = {}
    if opts.string("since"):
        query["since"] = get_timestamp(opts.string("since"), now)
    if opts.string("until"):
        query["until"] = get_timestamp(opts.string("until"), now)
    query.update(filters_query(opts.filters("filter")))
    try:
        for ev in ctx.client.stream_json("/events", query):
            if not isinstance(ev, dict):
                continue
            if tmpl is None:
                ctx.out(pretty_event(ev) + "\n")
            else:
                try:
                    ctx.out(tmpl.execute(typed("events.Message", ev)) + "\n")
                except TemplateError as e:
                    ctx.out(e.partial + "\n")
                    raise StatusError(str(e)) from None
            ctx.stdout.flush()
    except KeyboardInterrupt:
        return 0
    return 0
