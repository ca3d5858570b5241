"""`muslin network ...`: create, ls, inspect, rm, connect, disconnect, prune.

Owns turning each command's flags into the request docker sends (with docker's IPAM
consolidation: each --ip-range, --gateway and --aux-address joins the --subnet that
contains it) and printing the answers as docker prints them.
"""

from __future__ import annotations

from muslin.cli.client import APIError, filters_query, path_segment
from muslin.cli.errors import Cancelled, StatusError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from muslin.cli.cmdline import Options
    from muslin.cli.context import Context

PRUNE_WARNING = ("WARNING! This will remove all custom networks not used by at least one "
                 "container.\nAre you sure you want to continue?")


# -- create --------------------------------------------------------------------------


def _subnet_matches(subnet: str, data: str) -> bool:
    """docker's subnetMatches: does the CIDR `subnet` contain `data`'s address?"""
    import ipaddress

    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise StatusError(f"invalid subnet: invalid CIDR address: {subnet}") from None
    try:
        if "/" in data:
            addr: Any = ipaddress.ip_interface(data).ip
        else:
            addr = ipaddress.ip_address(data)
    except ValueError:
        if "/" in data:
            raise StatusError(f"invalid CIDR address: {data}") from None
        return False
    return addr.version == net.version and addr in net


def consolidate_ipam(subnets: list[str], ranges: list[str], gateways: list[str],
                     aux: dict[str, str]) -> list[dict[str, Any]]:
    """docker's consolidateIpam: one IPAM config per subnet, in the order given."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise StatusError("every ip-range or gateway must have a corresponding subnet")
    configs: dict[str, dict[str, Any]] = {}
    for s in subnets:
        for k in configs:
            if _subnet_matches(s, k) or _subnet_matches(k, s):
                raise StatusError("multiple overlapping subnet configuration is not supported")
        configs[s] = {"Subnet": s}
    for what, key, values in (("range", "IPRange", ranges), ("gateway", "Gateway", gateways)):
        for v in values:
            match = False
            for s in subnets:
                if not _subnet_matches(s, v):
                    continue
                if key in configs[s]:
                    many = "ranges" if what == "range" else "gateways"
                    where = "on the same subnet" if what == "range" else "for the same subnet"
                    raise StatusError(f"cannot configure multiple {many} ({v}, "
                                      f"{configs[s][key]}) {where} ({s})")
                configs[s][key] = v
                match = True
            if not match:
                raise StatusError(f"no matching subnet for {what} {v}")
    for name, addr in aux.items():
        match = False
        for s in subnets:
            if _subnet_matches(s, addr):
                configs[s].setdefault("AuxiliaryAddresses", {})[name] = addr
                match = True
        if not match:
            raise StatusError(f"no matching subnet for aux-address {addr}")
    return list(configs.values())


def create_request(name: str, opts: Options) -> dict[str, Any]:
    """The body of POST /networks/create that `docker network create` sends."""
    labels: dict[str, str] = {}
    for item in opts.strings("label"):
        k, _, v = item.partition("=")
        labels[k] = v
    body: dict[str, Any] = {
        "Name": name,
        "Driver": opts.string("driver"),
        "Scope": opts.string("scope"),
        "IPAM": {
            "Driver": opts.string("ipam-driver"),
            "Config": consolidate_ipam(opts.strings("subnet"), opts.strings("ip-range"),
                                       opts.strings("gateway"), opts.mapping("aux-address")),
            "Options": opts.mapping("ipam-opt"),
        },
        "Internal": opts.boolean("internal"),
        "Attachable": opts.boolean("attachable"),
        "Ingress": opts.boolean("ingress"),
        "ConfigOnly": opts.boolean("config-only"),
        "ConfigFrom": ({"Network": opts.string("config-from")}
                       if opts.string("config-from") else None),
        "Options": opts.mapping("opt"),
        "Labels": labels,
    }
    if opts.is_set("ipv6"):  # a *bool in docker: sent only when given
        body["EnableIPv6"] = opts.boolean("ipv6")
    return body


def create(ctx: Context, opts: Options, args: list[str]) -> int:
    body = create_request(args[0], opts)
    resp = ctx.client.post_json("/networks/create", body)
    ctx.out(f"{resp.get('Id', '') if isinstance(resp, dict) else ''}\n")
    return 0


# -- ls ------------------------------------------------------------------------------


def list_format(fmt: str, quiet: bool) -> str:
    """docker's network.NewFormat."""
    if fmt == "table":
        return "{{.ID}}" if quiet else "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    if fmt == "raw":
        if quiet:
            return "network_id: {{.ID}}"
        return "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
    return fmt


def render_ls(networks: list[dict[str, Any]], fmt: str, quiet: bool, trunc: bool) -> str:
    """What `network ls` prints for the daemon's list (sorted by name like docker)."""
    from muslin.cli.formatter import FormatError, natural_key, render_list
    from muslin.cli.views import NETWORK_HEADERS, NetworkContext

    nets = sorted(networks, key=lambda n: natural_key(str(n.get("Name", ""))))
    rows = [NetworkContext(n, trunc) for n in nets]
    try:
        return render_list(list_format(fmt or "table", quiet), rows, NETWORK_HEADERS)
    except FormatError as e:
        raise StatusError(str(e)) from None


def ls(ctx: Context, opts: Options, args: list[str]) -> int:
    networks = ctx.client.get_json("/networks", filters_query(opts.filters("filter")))
    ctx.out(render_ls(networks if isinstance(networks, list) else [], opts.string("format"),
                      opts.boolean("quiet"), not opts.boolean("no-trunc")))
    return 0


# -- inspect -------------------------------------------------------------------------


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from muslin.cli.formatter import FormatError, inspect_output, parse

    fmt = opts.string("format")
    if fmt not in ("", "json"):
        try:
            parse(fmt)
        except FormatError as e:
            raise StatusError(str(e), 64) from None
    query = {"verbose": "true"} if opts.boolean("verbose") else None
    raws: list[str] = []
    errors: list[str] = []
    for name in args:
        try:
            data = ctx.client.call("GET", f"/networks/{path_segment(name)}", query=query)
        except APIError as e:
            errors.append(f"Error: No such network: {name}" if e.status == 404 else str(e))
            continue
        raws.append(data.decode("utf-8", "replace"))
    try:
        out, template_errors = inspect_output(raws, fmt, "network.Inspect")
    except FormatError as e:
        raise StatusError(str(e), 64) from None
    ctx.out(out)
    errors += template_errors
    if errors:
        raise StatusError("\n".join(errors))
    return 0


# -- rm, connect, disconnect, prune --------------------------------------------------


def rm(ctx: Context, opts: Options, args: list[str]) -> int:
    status = 0
    for name in args:
        try:
            ctx.client.call("DELETE", f"/networks/{path_segment(name)}")
        except APIError as e:
            if opts.boolean("force") and e.status == 404:
                continue
            ctx.stdout.flush()
            ctx.err(f"{e.message}\n")
            status = 1
            continue
        ctx.out(f"{name}\n")
    return status


def connect(ctx: Context, opts: Options, args: list[str]) -> int:
    driver_opts: dict[str, str] = {}
    for item in opts.strings("driver-opt"):
        k, eq, v = item.partition("=")
        if not eq or not k.strip():
            raise StatusError("invalid key/value pair format in driver options")
        driver_opts[k.strip()] = v.strip()
    ipam = {key: value for key, value in (("IPv4Address", opts.string("ip")),
                                          ("IPv6Address", opts.string("ip6")),
                                          ("LinkLocalIPs", opts.strings("link-local-ip")))
            if value}
    endpoint: dict[str, Any] = {"IPAMConfig": ipam}
    for key, value in (("Links", opts.strings("link")), ("Aliases", opts.strings("alias")),
                       ("DriverOpts", driver_opts)):
        if value:
            endpoint[key] = value
    ctx.client.call("POST", f"/networks/{path_segment(args[0])}/connect",
                    body={"Container": args[1], "EndpointConfig": endpoint})
    return 0


def disconnect(ctx: Context, opts: Options, args: list[str]) -> int:
    ctx.client.call("POST", f"/networks/{path_segment(args[0])}/disconnect",
                    body={"Container": args[1], "Force": opts.boolean("force")})
    return 0


def prune(ctx: Context, opts: Options, args: list[str]) -> int:
    if not opts.boolean("force"):
        warning = PRUNE_WARNING.replace("WARNING!", ctx.colour("WARNING!", "1;33"), 1)
        if not ctx.confirm(warning):
            raise Cancelled()
    report = ctx.client.post_json("/networks/prune", None,
                                  filters_query(opts.filters("filter")))
    deleted = report.get("NetworksDeleted") if isinstance(report, dict) else None
    if deleted:
        # docker builds "Deleted Networks:\n<name>\n..." and Println adds one more newline
        ctx.out("Deleted Networks:\n" + "".join(f"{d}\n" for d in deleted) + "\n")
    return 0
