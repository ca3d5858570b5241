"""`muslin run|create|start|stop|kill|restart|pause|unpause|rm|ps|exec|attach|logs|
inspect|rename|port|wait` and their `muslin container ...` forms.

Owns turning docker's container flags into the request docker sends (`POST
/containers/create`: the Config fields, HostConfig and NetworkingConfig, with docker's
parsing of -p, --expose, -e, --network, --restart, --log-opt, ... and its error texts),
the run sequence (create, pull on a missing image, attach, wait, start, stream, exit
with the container's status), exec, logs, and printing what the daemon answers as
docker prints it (`ps` rows, `port` lines, inspect output, per-container errors).
"""

from __future__ import annotations

import re

from muslin.cli import govalues as gv
from muslin.cli.client import APIError, filters_query, path_segment
from muslin.cli.errors import StatusError
from muslin.units import human_duration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from muslin.cli.cmdline import Options
    from muslin.cli.context import Context
    from muslin.cli.stream import Hijacked


def usage_error(command: str, message: str, with_help: bool = True, code: int = 125
                ) -> StatusError:
    """docker's reportError: `muslin: <message>.` (and the help hint), exit 125."""
    text = "muslin: " + message.removesuffix(".") + "."
    if with_help:
        text += f"\nSee 'muslin {command} --help'."
    return StatusError(text, code)


def start_error_code(message: str) -> int:
    """docker's runStartContainerErr: 127 not found, 126 not executable, else 125."""
    m = message.removeprefix("Error response from daemon: ")
    if ("executable file not found" in m or "no such file or directory" in m
            or "system cannot find the file specified" in m):
        return 127
    if "permission denied" in m or "is a directory" in m:
        return 126
    return 125


# -- flag validators (pflag errors: `invalid argument "v" for "--flag" flag: ...`) -----


def validate_env(value: str) -> str:
    """opts.ValidateEnv (the value of a bare `KEY` is looked up when the request is
    built, in the command's environment)."""
    if value.partition("=")[0] == "":
        raise ValueError(f"invalid environment variable: {value}")
    return value


def go_parse_ip(text: str) -> str | None:
    """net.ParseIP(text).String(), or None when Go would not parse it."""
    import ipaddress

    if "%" in text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def validate_ip(value: str) -> str:
    """opts.ValidateIPAddress: the address in canonical form."""
    ip = go_parse_ip(value.strip())
    if ip is None:
        raise ValueError(f"IP address is not correctly formatted: {value}")
    return ip


_ALPHA = re.compile(r"[a-zA-Z]")
_DOMAIN = re.compile(r"^(:?(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))"
                     r"(:?\.(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)\.?\s*$")


def validate_dns_search(value: str) -> str:
    """opts.ValidateDNSSearch."""
    value = value.strip(" ")
    if value == ".":
        return value
    m = _DOMAIN.match(value) if _ALPHA.search(value) else None
    if m is None or len(m.group(1)) >= 255:
        raise ValueError(f"{value} is not a valid domain")
    return m.group(1)


def validate_extra_host(value: str) -> str:
    """opts.ValidateExtraHost: `host:ip` or `host=ip` (sent as host:ip)."""
    host, eq, ip = value.partition("=")
    if not eq:
        host, eq, ip = value.partition(":")
    if not eq or not host or ":" in host:
        raise ValueError(f'bad format for add-host: "{value}"')
    if ip != "host-gateway":
        addr = ip[1:-1] if len(ip) > 2 and ip[0] == "[" and ip[-1] == "]" else ip
        if go_parse_ip(addr.strip()) is None:
            raise ValueError(f'invalid IP address in add-host: "{addr}"')
        ip = addr
    return f"{host}:{ip}"


def validate_link(value: str) -> str:
    """opts.ValidateLink: `name` or `name:alias`."""
    if value == "":
        raise ValueError("empty string specified for links")
    if value.count(":") > 1:
        raise ValueError(f"bad format for links: {value}")
    return value


_SYSCTLS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                      "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                      "kernel.shm_rmid_forced"))


def validate_sysctl(value: str) -> str:
    """opts.ValidateSysctl: namespaced sysctls only."""
    key, eq, _ = value.partition("=")
    if eq and key and (key in _SYSCTLS or key.startswith(("net.", "fs.mqueue."))):
        return value
    raise ValueError(f"sysctl '{value}' is not allowed")


def validate_attach(value: str) -> str:
    v = value.lower()
    if v in ("stdin", "stdout", "stderr"):
        return v
    raise ValueError("valid streams are STDIN, STDOUT and STDERR")


def validate_network(value: str) -> str:
    parse_network_opt(value)
    return value


# -- ports: go-connections/nat as docker's run uses it ---------------------------------

_DIGITS = re.compile(r"[0-9]+")


def _parse_uint16(text: str) -> int:
    """strconv.ParseUint(text, 10, 16)."""
    if not _DIGITS.fullmatch(text):
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    v = int(text)
    if v > 65535:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return v


def parse_port_range(ports: str) -> tuple[int, int]:
    """nat.ParsePortRange: `80` or `8000-8010`."""
    if ports == "":
        raise ValueError("empty string specified for ports")
    if "-" not in ports:
        v = _parse_uint16(ports)
        return v, v
    parts = ports.split("-")
    start, end = _parse_uint16(parts[0]), _parse_uint16(parts[1])
    if end < start:
        raise ValueError(f"invalid range specified for port: {ports}")
    return start, end


def split_proto_port(raw: str) -> tuple[str, str]:
    """nat.SplitProtoPort: (proto, port), tcp by default."""
    parts = raw.split("/")
    if raw == "" or parts[0] == "":
        return "", ""
    if len(parts) == 1:
        return "tcp", raw
    if parts[1] == "":
        return "tcp", parts[0]
    return parts[1], parts[0]


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    n = len(parts)
    if n == 1:
        return "", "", parts[0]
    if n == 2:
        return "", parts[0], parts[1]
    if n == 3:
        return parts[0], parts[1], parts[2]
    return ":".join(parts[:n - 2]), parts[n - 2], parts[n - 1]


def parse_port_spec(raw: str) -> list[tuple[str, str, str]]:
    """nat.ParsePortSpec: `[ip:][hostPort:]containerPort[/proto]` as (port key like
    "80/tcp", host IP, host port) mappings, one per container port of a range."""
    ip, host_port, container_port = _split_parts(raw)
    proto, container_port = split_proto_port(container_port)
    if ip and ip[0] == "[":
        end = ip.find("]")
        if end < 0:
            raise ValueError(f"invalid IP address {ip}: address {ip}:: missing ']' in address")
        if end != len(ip) - 1:
            raise ValueError(f"invalid IP address {ip}: address {ip}:: missing port in address")
        ip = ip[1:end]
    if ip and go_parse_ip(ip) is None:
        raise ValueError(f"invalid IP address: {ip}")
    if container_port == "":
        raise ValueError(f"no port specified: {raw}<empty>")
    try:
        start, end_port = parse_port_range(container_port)
    except ValueError:
        raise ValueError(f"invalid containerPort: {container_port}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = parse_port_range(host_port)
        except ValueError:
            raise ValueError(f"invalid hostPort: {host_port}") from None
    if host_port and end_port - start != host_end - host_start and end_port != start:
        raise ValueError(f"invalid ranges specified for container and host Ports: "
                         f"{container_port} and {host_port}")
    proto = proto.lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise ValueError(f"invalid proto: {proto}")
    out = []
    for i in range(end_port - start + 1):
        hp = str(host_start + i) if host_port else ""
        if start == end_port and host_start != host_end:
            hp = f"{hp}-{host_end}"
        out.append((f"{start + i}/{proto}", ip, hp))
    return out


def convert_publish_notation(specs: list[str]) -> list[str]:
    """docker's convertToStandardNotation: `target=80,published=8080,protocol=udp`."""
    out = []
    for spec in specs:
        if "=" not in spec:
            out.append(spec)
            continue
        params = {"protocol": "tcp"}
        for param in spec.split(","):
            k, eq, v = param.partition("=")
            if not eq or not k:
                raise ValueError("invalid publish opts format (should be name=value but got "
                                 f"'{param}')")
            params[k] = v
        out.append(f"{params.get('published', '')}:{params.get('target', '')}/"
                   f"{params['protocol']}")
    return out


def port_config(publish: list[str], expose: list[str]
                ) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, str]]]]:
    """ExposedPorts and HostConfig.PortBindings of `-p` and `--expose` values."""
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in convert_publish_notation(publish):
        for key, ip, host_port in parse_port_spec(spec):
            exposed.setdefault(key, {})
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": host_port})
    for e in expose:
        if ":" in e:
            raise ValueError(f"invalid port format for --expose: {e}")
        proto, port = split_proto_port(e)
        try:
            start, end = parse_port_range(port)
        except ValueError as err:
            raise ValueError(f"invalid range format for --expose: {e}, error: {err}") from None
        for p in range(start, end + 1):
            exposed.setdefault(f"{p}/{proto}", {})
    return exposed, bindings


# -- networks --------------------------------------------------------------------------


def is_user_defined(mode: str) -> bool:
    """container.NetworkMode.IsUserDefined."""
    return mode not in ("default", "bridge", "host", "none") and not mode.startswith(
        "container:")


_LONG_NETWORK = re.compile(r"\w+=\w+(,\w+=\w+)*")


def parse_network_opt(value: str) -> dict[str, Any]:
    """opts.NetworkOpt.Set: a name, or `name=n,alias=a,ip=...,ip6=...,mac-address=...,
    link-local-ip=...,driver-opt=k=v`."""
    opt: dict[str, Any] = {"target": value, "aliases": [], "links": [], "ipv4": "",
                           "ipv6": "", "mac": "", "link_local": [], "driver_opts": {}}
    if not _LONG_NETWORK.search(value):
        return opt
    import csv

    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration):
        fields = value.split(",")
    opt["target"] = ""
    for field in fields:
        key, eq, val = field.lower().partition("=")
        if not eq or not key:
            raise ValueError(f"invalid field {field}")
        key, val = key.strip(), val.strip()
        if key == "name":
            opt["target"] = val
        elif key == "alias":
            opt["aliases"].append(val)
        elif key == "ip":
            opt["ipv4"] = val
        elif key == "ip6":
            opt["ipv6"] = val
        elif key == "mac-address":
            opt["mac"] = val
        elif key == "link-local-ip":
            opt["link_local"].append(val)
        elif key == "driver-opt":
            k, eq2, v = val.partition("=")
            if not eq2:
                raise ValueError("invalid key value pair format in driver options")
            opt["driver_opts"][k.strip().lower()] = v.strip()
        else:
            raise ValueError(f"invalid field key {key}")
    if not opt["target"]:
        raise ValueError("network name not specified")
    return opt


_MAC = re.compile(r"(?:[0-9a-fA-F]{2}(?P<s>[:-]))(?:[0-9a-fA-F]{2}(?P=s))*[0-9a-fA-F]{2}"
                  r"|[0-9a-fA-F]{4}(?:\.[0-9a-fA-F]{4})+")


def valid_mac(text: str) -> bool:
    """net.ParseMAC: 6, 8 or 20 octets as `aa:bb:..`, `aa-bb-..` or `aabb.ccdd.eeff`."""
    text = text.strip()
    if not _MAC.fullmatch(text):
        return False
    digits = len(re.sub(r"[^0-9a-fA-F]", "", text)) // 2
    return digits in (6, 8, 20)


def _apply_container_options(n: dict[str, Any], opts: Options) -> None:
    """docker's applyContainerOptions: the old flags join the first network."""
    aliases = opts.strings("network-alias") + opts.strings("net-alias")
    links = opts.strings("link")
    ipv4, ipv6, mac = opts.string("ip"), opts.string("ip6"), opts.string("mac-address")
    link_local = opts.strings("link-local-ip")
    conflicts = (
        (n["aliases"] and aliases, "--network-alias and per-network alias"),
        (n["links"] and links, "--link and per-network links"),
        (n["ipv4"] and ipv4, "--ip and per-network IPv4 address"),
        (n["ipv6"] and ipv6, "--ip6 and per-network IPv6 address"),
        (n["mac"] and mac, "--mac-address and per-network MAC address"),
        (n["link_local"] and link_local,
         "--link-local-ip and per-network link-local IP addresses"),
    )
    for clash, what in conflicts:
        if clash:
            raise ValueError(f"conflicting options: cannot specify both {what}")
    if aliases:
        n["aliases"] = list(aliases)
    if is_user_defined(n["target"]) and links:
        n["links"] = list(links)
    n["ipv4"] = ipv4 or n["ipv4"]
    n["ipv6"] = ipv6 or n["ipv6"]
    n["mac"] = mac or n["mac"]
    if link_local:
        n["link_local"] = list(link_local)


def _endpoint(n: dict[str, Any]) -> dict[str, Any]:
    """docker's parseNetworkAttachmentOpt: EndpointSettings as sent."""
    if not n["target"].strip():
        raise ValueError("no name set for network")
    if not is_user_defined(n["target"]):
        if n["aliases"]:
            raise ValueError("network-scoped aliases are only supported for user-defined "
                             "networks")
        if n["links"]:
            raise ValueError("links are only supported for user-defined networks")
    ipam = None
    if n["ipv4"] or n["ipv6"] or n["link_local"]:
        ipam = {"IPv4Address": n["ipv4"], "IPv6Address": n["ipv6"]}
        if n["link_local"]:
            ipam["LinkLocalIPs"] = list(n["link_local"])
    if n["mac"] and not valid_mac(n["mac"]):
        raise ValueError(f"{n['mac']} is not a valid mac address")
    return {"IPAMConfig": ipam, "Links": n["links"] or None, "Aliases": n["aliases"] or None,
            "MacAddress": n["mac"], "DriverOpts": n["driver_opts"] or None}


def _is_empty_endpoint(ep: dict[str, Any]) -> bool:
    return not any(ep.values())


def network_config(opts: Options) -> tuple[str, dict[str, Any]]:
    """HostConfig.NetworkMode and NetworkingConfig.EndpointsConfig (docker's
    parseNetworkOpts): `default` when no --network is given."""
    values = opts.strings("network") + opts.strings("net")
    endpoints: dict[str, Any] = {}
    if not values:
        n = parse_network_opt("default")
        _apply_container_options(n, opts)
        endpoints["default"] = _endpoint(n)
        return "default", endpoints
    user_defined = other = False
    nets = [parse_network_opt(v) for v in values]
    for i, n in enumerate(nets):
        if is_user_defined(n["target"]):
            user_defined = True
        else:
            other = True
        if i == 0:
            _apply_container_options(n, opts)
        ep = _endpoint(n)
        if n["target"] in endpoints:
            raise ValueError(f'network "{n["target"]}" is specified multiple times')
        if i == 0 and len(nets) == 1 and _is_empty_endpoint(ep):
            continue
        endpoints[n["target"]] = ep
    if user_defined and other:
        raise ValueError("conflicting options: cannot attach both user-defined and "
                         "non-user-defined network-modes")
    return nets[0]["target"], endpoints


# -- the create request ----------------------------------------------------------------


def kv_map(items: list[str]) -> dict[str, str]:
    """opts.ConvertKVStringsToMap."""
    out: dict[str, str] = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def parse_restart_policy(policy: str) -> dict[str, Any]:
    """opts.ParseRestartPolicy."""
    if policy == "":
        return {"Name": "", "MaximumRetryCount": 0}
    name, colon, count = policy.partition(":")
    if colon and name == "":
        raise ValueError("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        try:
            retries = int(count) if re.fullmatch(r"[+-]?[0-9]+", count) else int("x")
        except ValueError:
            raise ValueError("invalid restart policy format: maximum retry count must be an "
                             "integer") from None
    return {"Name": name, "MaximumRetryCount": retries}


def read_env_file(path: str, env: Mapping[str, str]) -> list[str]:
    """opts.ParseEnvFile: KEY=VALUE lines, bare KEYs taken from the environment."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    lines: list[str] = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.removesuffix(b"\r")
        if n == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise ValueError(f"env file {path} contains invalid utf8 bytes at line {n}: "
                             f"{list(raw)}") from None
        line = text.lstrip()
        if not line or line.startswith("#"):
            continue
        var, eq, value = line.partition("=")
        var = var.lstrip(" \t")
        if any(c in var for c in " \t\n\v\f\r"):
            raise ValueError(f"variable '{var}' contains whitespaces")
        if not var:
            raise ValueError(f"no variable name on line '{line}'")
        if eq:
            lines.append(f"{var}={value}")
        elif var.strip() in env:
            lines.append(f"{var.strip()}={env[var.strip()]}")
    return lines


def environment(opts: Options, env: Mapping[str, str]) -> list[str]:
    """opts.ReadKVEnvStrings(--env-file, --env): a bare `-e KEY` takes the value of
    KEY in our environment, or goes as it is when KEY is unset."""
    out: list[str] = []
    for path in opts.strings("env-file"):
        out += read_env_file(path, env)
    for item in opts.strings("env"):
        if "=" not in item and item in env:
            item = f"{item}={env[item]}"
        out.append(item)
    return out


def create_request(opts: Options, args: list[str], env: Mapping[str, str],
                   console: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """The body of POST /containers/create that `docker run`/`docker create` sends
    (docker's parse); ValueError with docker's message for bad values."""
    attach = opts.strings("attach")
    stdin = opts.boolean("interactive")
    attach_stdin = "stdin" in attach or stdin
    attach_stdout = "stdout" in attach or not attach
    attach_stderr = "stderr" in attach or not attach
    mac = opts.string("mac-address")
    if mac and not valid_mac(mac):
        raise ValueError(f"{mac} is not a valid mac address")
    entrypoint: list[str] | None = None
    if opts.string("entrypoint"):
        entrypoint = [opts.string("entrypoint")]
    elif opts.is_set("entrypoint"):
        entrypoint = [""]
    exposed, bindings = port_config(opts.strings("publish"), opts.strings("expose"))
    envs = environment(opts, env)
    labels = kv_map(opts.strings("label"))
    restart = parse_restart_policy(opts.string("restart"))
    log_opts = kv_map(opts.strings("log-opt"))
    if opts.string("log-driver") == "none" and opts.strings("log-opt"):
        raise ValueError("invalid logging opts for driver none")
    sysctls = opts.mapping("sysctl")
    for k, v in sysctls.items():
        validate_sysctl(f"{k}={v}")
    auto_remove = opts.boolean("rm")
    if auto_remove and restart["Name"] not in ("", "no"):
        raise ValueError("conflicting options: cannot specify both --restart and --rm")
    mode, endpoints = network_config(opts)
    body: dict[str, Any] = {
        "Hostname": opts.string("hostname"),
        "Domainname": opts.string("domainname"),
        "User": opts.string("user"),
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
    }
    if exposed:
        body["ExposedPorts"] = exposed
    body.update({
        "Tty": opts.boolean("tty"),
        "OpenStdin": stdin,
        "StdinOnce": stdin and attach_stdin,
        "Env": envs,
        "Cmd": list(args[1:]) or None,
        "Image": args[0],
        "Volumes": None,
        "WorkingDir": opts.string("workdir"),
        "Entrypoint": entrypoint,
        "Labels": labels,
    })
    if opts.string("stop-signal"):
        body["StopSignal"] = opts.string("stop-signal")
    if opts.is_set("stop-timeout"):
        body["StopTimeout"] = opts.integer("stop-timeout")
    host: dict[str, Any] = {
        "Binds": None,
        "LogConfig": {"Type": opts.string("log-driver"), "Config": log_opts},
        "NetworkMode": mode,
        "PortBindings": bindings,
        "RestartPolicy": restart,
        "AutoRemove": auto_remove,
        "ConsoleSize": [console[0], console[1]],
        "Dns": [validate_ip(d) for d in opts.strings("dns")],
        "DnsOptions": opts.strings("dns-option") + opts.strings("dns-opt"),
        "DnsSearch": opts.strings("dns-search"),
        "ExtraHosts": opts.strings("add-host") or None,
        "Links": opts.strings("link") or None,
        "PublishAllPorts": opts.boolean("publish-all"),
    }
    if sysctls:
        host["Sysctls"] = sysctls
    body["HostConfig"] = host
    body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    return body


def _localhost_dns(dns: list[str]) -> str | None:
    for d in dns:
        if re.search(r"((127\.([0-9]{1,3}\.){2}[0-9]{1,3})|(::1)$)", d):
            return d
    return None


def _parse_or_report(ctx: Context, opts: Options, args: list[str], command: str
                     ) -> dict[str, Any]:
    from muslin.cli.stream import terminal_size

    pull = opts.string("pull")
    if pull not in ("always", "missing", "never", ""):
        raise usage_error(command, f"invalid pull option: '{pull}': must be one of "
                                   '"always", "missing" or "never"')
    try:
        return create_request(opts, args, ctx.env, terminal_size(ctx.stdout))
    except ValueError as e:
        raise usage_error(command, str(e)) from None


def _pull_image(ctx: Context, image: str, quiet: bool) -> None:
    """docker's pullImage (run/create): POST /images/create, progress on stderr."""
    from muslin.cli.image import parse_normalized_named
    from muslin.cli.stream import display_json_messages

    ref = parse_normalized_named(image)
    query = {"fromImage": ref.name, "tag": ref.api_tag()}
    resp = ctx.client.request("POST", "/images/create", query=query)
    if quiet:
        import io

        display_json_messages(resp, io.StringIO())
    else:
        display_json_messages(resp, ctx.stderr)


def create_container(ctx: Context, body: dict[str, Any], name: str, pull: str,
                     quiet: bool) -> str:
    """docker's createContainer: create, and on a missing image pull it and create
    again (`--pull missing`); returns the id, warnings on stderr."""
    from muslin.cli.image import RefError, parse_any_reference

    image = str(body["Image"])
    try:
        named = parse_any_reference(image)
    except RefError as e:
        raise StatusError(str(e)) from None
    dns = _localhost_dns(body["HostConfig"]["Dns"])
    if dns is not None:
        ctx.err(f"WARNING: Localhost DNS setting (--dns={dns}) may fail in containers.\n")
    query = {"name": name} if name else None
    if pull == "always" and named is not None:
        _pull_image(ctx, image, quiet)
    try:
        resp = ctx.client.post_json("/containers/create", body, query)
    except APIError as e:
        if e.status != 404 or named is None or pull not in ("missing", ""):
            raise
        if not quiet:
            ctx.err(f"Unable to find image '{named.tag_name_only().familiar()}' locally\n")
        _pull_image(ctx, image, quiet)
        resp = ctx.client.post_json("/containers/create", body, query)
    resp = resp if isinstance(resp, dict) else {}
    for w in resp.get("Warnings") or []:
        ctx.err(f"WARNING: {w}\n")
    return str(resp.get("Id", ""))


def create(ctx: Context, opts: Options, args: list[str]) -> int:
    body = _parse_or_report(ctx, opts, args, "create")
    cid = create_container(ctx, body, opts.string("name"), opts.string("pull"),
                           opts.boolean("quiet"))
    ctx.out(cid + "\n")
    return 0


# -- streams ---------------------------------------------------------------------------


def check_tty(ctx: Context, attach_stdin: bool, tty: bool) -> None:
    """docker's CheckTty: -it needs a terminal on stdin."""
    from muslin.cli.stream import is_terminal

    if tty and attach_stdin and not is_terminal(ctx.stdin):
        raise StatusError("the input device is not a TTY")


def _resize(ctx: Context, path: str) -> Callable[[], None]:
    from muslin.cli.stream import side_call, terminal_size

    def resize() -> None:
        h, w = terminal_size(ctx.stdout)
        if h or w:
            side_call(ctx.client, "POST", path, {"h": str(h), "w": str(w)})

    return resize


def stream_io(ctx: Context, h: Hijacked, *, tty: bool, stdin: bool,
              proxy_to: str | None = None, resize_path: str | None = None) -> None:
    """docker's hijackedIOStreamer: stdin in (raw terminal with a tty), output out
    (stderr joins stdout with a tty), until the daemon ends the stream."""
    from muslin.cli.stream import (
        RawTerminal,
        Signals,
        Sink,
        copy_output,
        feed_stdin,
        is_terminal,
        side_call,
        stdin_reader,
    )

    ctx.stdout.flush()
    ctx.stderr.flush()
    proxy = None
    if proxy_to is not None:
        client, target = ctx.client, proxy_to

        def proxy(name: str) -> None:
            side_call(client, "POST", f"/containers/{path_segment(target)}/kill",
                      {"signal": name})

    winch = None
    if tty and resize_path is not None and is_terminal(ctx.stdout):
        winch = _resize(ctx, resize_path)
        winch()
    raw = RawTerminal(ctx.stdin if stdin and tty else None)
    try:
        with raw, Signals(proxy=proxy, winch=winch):
            if stdin:
                feed_stdin(h, stdin_reader(ctx.stdin))
            copy_output(h.chunks(), tty, Sink(ctx.stdout),
                        Sink(ctx.stdout if tty else ctx.stderr))
    finally:
        h.close()


def _attach_query(stdin: bool, stdout: bool, stderr: bool, detach_keys: str = ""
                  ) -> dict[str, str]:
    q = {"stream": "1"}
    for key, on in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
        if on:
            q[key] = "1"
    if detach_keys:
        q["detachKeys"] = detach_keys
    return q


def _wait_status(ctx: Context, waiter: Any) -> int:
    """The exit status a `/wait` answered (docker's waitExitOrRemoved): 125 when the
    wait failed."""
    try:
        result = waiter.json()
    except StatusError as e:
        message = e.message.removeprefix("error waiting for container: ")
        ctx.err(f"error waiting for container: {message}\n")
        return 125
    if not isinstance(result, dict):
        return 125
    error = result.get("Error")
    if isinstance(error, dict) and error.get("Message"):
        ctx.err(f"Error waiting for container: {error['Message']}\n")
        return 125
    try:
        return int(result.get("StatusCode", 0))
    except (TypeError, ValueError):
        return 125


# How long `run`/`start -a` give the daemon to take the `/wait` sent before `start`:
# moby answers its head once the wait is registered (then start follows at once);
# a daemon that answers only at exit costs this delay, and leaves docker's race (a
# container that exits, or is removed, before its wait is seen) only narrower.
WAIT_HEAD_TIMEOUT = 0.1


def run(ctx: Context, opts: Options, args: list[str]) -> int:
    from muslin.cli.stream import Pending, hijack

    body = _parse_or_report(ctx, opts, args, "run")
    detach = opts.boolean("detach")
    tty = bool(body["Tty"])
    if not detach:
        check_tty(ctx, bool(body["AttachStdin"]), tty)
    else:
        if opts.strings("attach"):
            raise StatusError("Conflicting options: -a and -d")
        body.update(AttachStdin=False, AttachStdout=False, AttachStderr=False,
                    StdinOnce=False)
    try:
        cid = create_container(ctx, body, opts.string("name"), opts.string("pull"),
                               opts.boolean("quiet"))
    except StatusError as e:
        raise usage_error("run", e.message, code=start_error_code(e.message)) from None
    client = ctx.client
    stdin, stdout, stderr = body["AttachStdin"], body["AttachStdout"], body["AttachStderr"]
    if not stdout and not stderr:
        ctx.out(cid + "\n")
        ctx.stdout.flush()
    seg = path_segment(cid)
    h = None
    if stdin or stdout or stderr:
        h = hijack(client, f"/containers/{seg}/attach",
                   _attach_query(stdin, stdout, stderr, opts.string("detach-keys")))
    waiter = None
    if not detach:
        condition = "removed" if opts.boolean("rm") else "next-exit"
        waiter = Pending(client, "POST", f"/containers/{seg}/wait", {"condition": condition})
        waiter.wait_head(WAIT_HEAD_TIMEOUT)
    try:
        client.call("POST", f"/containers/{seg}/start")
    except StatusError as e:
        if h is not None:
            h.close()
        ctx.stdout.flush()
        ctx.err(usage_error("run", e.message, with_help=False).message + "\n")
        if waiter is not None:
            if opts.boolean("rm"):
                _wait_status(ctx, waiter)
            waiter.close()
        return start_error_code(e.message)
    if h is not None:
        proxy = cid if opts.boolean("sig-proxy") and not tty else None
        try:
            stream_io(ctx, h, tty=tty, stdin=stdin, proxy_to=proxy,
                      resize_path=f"/containers/{seg}/resize")
        except BaseException:
            if waiter is not None:
                waiter.close()
            raise
    if waiter is None or (not stdout and not stderr):
        if waiter is not None:
            waiter.close()
        return 0
    return _wait_status(ctx, waiter)


# -- start, stop, kill, restart, pause, unpause, rm, rename, wait ----------------------


def _inspect(ctx: Context, ref: str) -> dict[str, Any]:
    c = ctx.client.get_json(f"/containers/{path_segment(ref)}/json")
    return c if isinstance(c, dict) else {}


def start(ctx: Context, opts: Options, args: list[str]) -> int:
    from muslin.cli.stream import Pending, hijack

    if opts.boolean("attach") or opts.boolean("interactive"):
        if len(args) > 1:
            raise StatusError("you cannot start and attach multiple containers at once")
        c = _inspect(ctx, args[0])
        config = c.get("Config") or {}
        host_config = c.get("HostConfig") or {}
        tty = bool(config.get("Tty"))
        stdin = bool(opts.boolean("interactive") and config.get("OpenStdin"))
        check_tty(ctx, stdin, tty)
        seg = path_segment(str(c.get("Id") or args[0]))
        h = hijack(ctx.client, f"/containers/{seg}/attach",
                   _attach_query(stdin, True, True, opts.string("detach-keys")))
        condition = "removed" if host_config.get("AutoRemove") else "next-exit"
        waiter = Pending(ctx.client, "POST", f"/containers/{seg}/wait", {"condition": condition})
        waiter.wait_head(WAIT_HEAD_TIMEOUT)
        try:
            ctx.client.call("POST", f"/containers/{seg}/start")
        except StatusError:
            h.close()
            waiter.close()
            raise
        try:
            stream_io(ctx, h, tty=tty, stdin=stdin, proxy_to=None if tty else seg,
                      resize_path=f"/containers/{seg}/resize")
        except BaseException:
            waiter.close()
            raise
        status = _wait_status(ctx, waiter)
        return status
    failed = []
    for name in args:
        try:
            ctx.client.call("POST", f"/containers/{path_segment(name)}/start")
        except StatusError as e:
            ctx.stdout.flush()
            ctx.err(e.message + "\n")
            failed.append(name)
            continue
        ctx.out(name + "\n")
    if failed:
        raise StatusError("Error: failed to start containers: " + ", ".join(failed))
    return 0


def _each(ctx: Context, args: list[str], call: Callable[[str], None]) -> int:
    """Run `call` for each container, printing its name or collecting the error
    (docker prints the errors, joined, at the end; exit 1)."""
    errors = []
    for name in args:
        try:
            call(name)
        except StatusError as e:
            errors.append(e.message)
            continue
        ctx.out(name + "\n")
    if errors:
        raise StatusError("\n".join(errors))
    return 0


def _stop_query(opts: Options) -> dict[str, str]:
    q = {}
    if opts.is_set("timeout") or opts.is_set("time"):
        q["t"] = str(opts.integer("timeout") if opts.is_set("timeout")
                     else opts.integer("time"))
    if opts.string("signal"):
        q["signal"] = opts.string("signal")
    return q


def _post_each(ctx: Context, args: list[str], action: str,
               query: Mapping[str, str] | None = None) -> int:
    def call(name: str) -> None:
        ctx.client.call("POST", f"/containers/{path_segment(name)}/{action}", query=query)

    return _each(ctx, args, call)


def stop(ctx: Context, opts: Options, args: list[str]) -> int:
    return _post_each(ctx, args, "stop", _stop_query(opts))


def restart(ctx: Context, opts: Options, args: list[str]) -> int:
    return _post_each(ctx, args, "restart", _stop_query(opts))


def kill(ctx: Context, opts: Options, args: list[str]) -> int:
    return _post_each(ctx, args, "kill",
                      {"signal": opts.string("signal")} if opts.string("signal") else None)


def pause(ctx: Context, opts: Options, args: list[str]) -> int:
    return _post_each(ctx, args, "pause")


def unpause(ctx: Context, opts: Options, args: list[str]) -> int:
    return _post_each(ctx, args, "unpause")


def rm(ctx: Context, opts: Options, args: list[str]) -> int:
    query = {}
    for flag, key in (("volumes", "v"), ("link", "link"), ("force", "force")):
        if opts.boolean(flag):
            query[key] = "1"
    errors = []
    for name in args:
        ref = name.strip("/")
        try:
            if not ref:
                raise StatusError("Container name cannot be empty")
            ctx.client.call("DELETE", f"/containers/{path_segment(ref)}", query=query)
        except StatusError as e:
            if opts.boolean("force") and isinstance(e, APIError) and e.status == 404:
                ctx.stdout.flush()
                ctx.err(e.message + "\n")
                continue
            errors.append(e.message)
            continue
        ctx.out(name + "\n")
    if errors:
        raise StatusError("\n".join(errors))
    return 0


def rename(ctx: Context, opts: Options, args: list[str]) -> int:
    old, new = args[0].strip(), args[1].strip()
    if not old or not new:
        raise StatusError("Error: Neither old nor new names may be empty")
    try:
        ctx.client.call("POST", f"/containers/{path_segment(old)}/rename",
                        query={"name": new})
    except StatusError as e:
        ctx.err(e.message + "\n")
        raise StatusError(f"Error: failed to rename container named {old}") from None
    return 0


def wait(ctx: Context, opts: Options, args: list[str]) -> int:
    errors = []
    for name in args:
        try:
            result = ctx.client.post_json(f"/containers/{path_segment(name)}/wait")
        except StatusError as e:
            errors.append(e.message)
            continue
        result = result if isinstance(result, dict) else {}
        ctx.out(f"{result.get('StatusCode', 0)}\n")
    if errors:
        raise StatusError("\n".join(errors))
    return 0


# -- exec, attach, logs ----------------------------------------------------------------


def exec_(ctx: Context, opts: Options, args: list[str]) -> int:
    from muslin.cli.stream import hijack, is_terminal, terminal_size

    container, cmd = args[0], args[1:]
    detach, tty = opts.boolean("detach"), opts.boolean("tty")
    try:
        envs = environment(opts, ctx.env)
    except ValueError as e:
        raise StatusError(str(e)) from None
    attach_stdin = opts.boolean("interactive") and not detach
    config: dict[str, Any] = {
        "User": opts.string("user"), "Privileged": opts.boolean("privileged"), "Tty": tty,
        "AttachStdin": attach_stdin, "AttachStderr": not detach, "AttachStdout": not detach,
        "Detach": detach, "DetachKeys": opts.string("detach-keys"), "Env": envs,
        "WorkingDir": opts.string("workdir"), "Cmd": cmd,
    }
    start_body: dict[str, Any] = {"Detach": detach, "Tty": tty}
    if tty:  # *[2]uint, omitempty: sent only with a tty
        config["ConsoleSize"] = start_body["ConsoleSize"] = list(terminal_size(ctx.stdout))
    _inspect(ctx, container)  # "no such container" before anything else, as docker
    if not detach:
        check_tty(ctx, attach_stdin, tty)
    resp = ctx.client.post_json(f"/containers/{path_segment(container)}/exec", config)
    exec_id = str(resp.get("Id", "")) if isinstance(resp, dict) else ""
    if not exec_id:
        raise StatusError("exec ID empty")
    seg = path_segment(exec_id)
    if detach:
        ctx.client.call("POST", f"/exec/{seg}/start", body=start_body)
        return 0
    h = hijack(ctx.client, f"/exec/{seg}/start", body=start_body)
    stream_io(ctx, h, tty=tty, stdin=attach_stdin,
              resize_path=f"/exec/{seg}/resize" if tty and is_terminal(ctx.stdout) else None)
    try:
        info = ctx.client.get_json(f"/exec/{seg}/json")
    except APIError:
        raise
    except StatusError:
        return -1  # docker: the daemon is gone (connection failed)
    code = info.get("ExitCode") if isinstance(info, dict) else None
    return int(code) if isinstance(code, int) else 0


def attach(ctx: Context, opts: Options, args: list[str]) -> int:
    from muslin.cli.stream import Pending, hijack

    c = _inspect(ctx, args[0])
    state = c.get("State") or {}
    if not state.get("Running"):
        raise StatusError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise StatusError("You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise StatusError("You cannot attach to a restarting container, wait until it is "
                          "running")
    config = c.get("Config") or {}
    tty = bool(config.get("Tty"))
    stdin = not opts.boolean("no-stdin") and bool(config.get("OpenStdin"))
    check_tty(ctx, stdin, tty)
    seg = path_segment(str(c.get("Id") or args[0]))
    h = hijack(ctx.client, f"/containers/{seg}/attach",
               _attach_query(stdin, True, True, opts.string("detach-keys")))
    waiter = Pending(ctx.client, "POST", f"/containers/{seg}/wait")
    proxy = seg if opts.boolean("sig-proxy") and not tty else None
    try:
        stream_io(ctx, h, tty=tty, stdin=stdin, proxy_to=proxy,
                  resize_path=f"/containers/{seg}/resize")
    except BaseException:
        waiter.close()
        raise
    result = waiter.json()
    result = result if isinstance(result, dict) else {}
    error = result.get("Error")
    if isinstance(error, dict) and error.get("Message"):
        raise StatusError(str(error["Message"]))
    return int(result.get("StatusCode") or 0)


def logs_query(opts: Options, now: float) -> dict[str, str]:
    """The query docker's ContainerLogs sends."""
    from muslin.cli.system import get_timestamp

    q = {"stdout": "1", "stderr": "1"}
    if opts.string("since"):
        q["since"] = get_timestamp(opts.string("since"), now)
    if opts.string("until"):
        q["until"] = get_timestamp(opts.string("until"), now)
    for flag, key in (("timestamps", "timestamps"), ("details", "details"),
                      ("follow", "follow")):
        if opts.boolean(flag):
            q[key] = "1"
    q["tail"] = opts.string("tail")
    return q


def logs(ctx: Context, opts: Options, args: list[str]) -> int:
    import time

    from muslin.cli.stream import Sink, copy_output

    c = _inspect(ctx, args[0])
    tty = bool((c.get("Config") or {}).get("Tty"))
    query = logs_query(opts, time.time())
    resp = ctx.client.request("GET", f"/containers/{path_segment(str(c.get('Id') or args[0]))}"
                                     "/logs", query=query)
    try:
        copy_output(resp.chunks(), tty, Sink(ctx.stdout), Sink(ctx.stderr))
    except ConnectionError:
        ctx.client.conn.close()
        raise StatusError("unexpected EOF") from None
    return 0


# -- inspect, port ---------------------------------------------------------------------


def _check_template(fmt: str) -> None:
    from muslin.cli.formatter import FormatError, parse

    if fmt not in ("", "json"):
        try:
            parse(fmt)
        except FormatError as e:
            raise StatusError(str(e), 64) from None


def _print_inspect(ctx: Context, raws: list[str], fmt: str, errors: list[str]) -> int:
    from muslin.cli.formatter import FormatError, inspect_output

    try:
        out, template_errors = inspect_output(raws, fmt, None)
    except FormatError as e:
        raise StatusError(str(e), 64) from None
    ctx.out(out)
    errors = errors + template_errors
    if errors:
        raise StatusError("\n".join(errors))
    return 0


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    """`container inspect`."""
    fmt = opts.string("format")
    _check_template(fmt)
    query = {"size": "1"} if opts.boolean("size") else None
    raws: list[str] = []
    errors: list[str] = []
    for name in args:
        try:
            data = ctx.client.call("GET", f"/containers/{path_segment(name)}/json", query=query)
        except APIError as e:
            errors.append(e.message)
            continue
        raws.append(data.decode("utf-8", "replace"))
    return _print_inspect(ctx, raws, fmt, errors)


INSPECT_TYPES = ("container", "image", "network")


def inspect_any(ctx: Context, opts: Options, args: list[str]) -> int:
    """`inspect`: a container, else an image, else a network (docker's autodetect), or
    only the `--type` given."""
    from muslin.cli.image import image_path

    fmt = opts.string("format")
    kind = opts.string("type")
    if kind and kind not in INSPECT_TYPES:
        raise StatusError(f'"{kind}" is not a valid value for --type')
    _check_template(fmt)
    size = opts.boolean("size")
    raws: list[str] = []
    errors: list[str] = []
    for name in args:
        found = None
        failure = None
        for t in INSPECT_TYPES:
            if kind and t != kind:
                continue
            if t == "container":
                path, query = f"/containers/{path_segment(name)}/json", (
                    {"size": "1"} if size else None)
            elif t == "image":
                path, query = image_path(name, "/json"), None
            else:
                path, query = f"/networks/{path_segment(name)}", None
            try:
                found = ctx.client.call("GET", path, query=query)
            except APIError as e:
                if not kind and (e.status == 404 or "not supported" in e.message):
                    continue
                failure = e.message
                break
            if size and t != "container":
                ctx.err(f"WARNING: --size ignored for {t}\n")
            break
        if found is not None:
            raws.append(found.decode("utf-8", "replace"))
        else:
            errors.append(failure or f"Error: No such object: {name}")
    return _print_inspect(ctx, raws, fmt, errors)


def join_host_port(host: str, port: str) -> str:
    """net.JoinHostPort."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def port_lines(ports: Mapping[str, Any] | None, private: str | None, container: str
               ) -> list[str]:
    """What `docker port` prints for NetworkSettings.Ports."""
    from muslin.cli.formatter import natural_key

    ports = ports or {}
    out: list[str] = []
    if private:
        port, _, proto = private.partition("/")
        try:
            _parse_uint16(port)
        except ValueError as e:
            raise StatusError(f"Error: invalid port ({port}): {e}") from None
        frontends = ports.get(f"{port}/{proto or 'tcp'}")
        if not frontends:
            raise StatusError(f"Error: No public port '{private}' published for {container}")
        out = [join_host_port(str(f.get("HostIp", "")), str(f.get("HostPort", "")))
               for f in frontends]
    else:
        for key, frontends in ports.items():
            for f in frontends or []:
                host = join_host_port(str(f.get("HostIp", "")), str(f.get("HostPort", "")))
                out.append(f"{key} -> {host}")
    return sorted(out, key=natural_key)


def port(ctx: Context, opts: Options, args: list[str]) -> int:
    c = _inspect(ctx, args[0])
    settings = c.get("NetworkSettings") or {}
    lines = port_lines(settings.get("Ports"), args[1] if len(args) > 1 else None, args[0])
    if lines:
        ctx.out("\n".join(lines) + "\n")
    return 0


# -- ps --------------------------------------------------------------------------------

CONTAINER_HEADERS = {
    "ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
    "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE",
    "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
}

DEFAULT_PS_FORMAT = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t"
                     "{{.Status}}\t{{.Ports}}\t{{.Names}}")


def ps_format(fmt: str, quiet: bool, size: bool) -> str:
    """docker's NewContainerFormat."""
    if fmt in ("table", ""):
        if quiet:
            return "{{.ID}}"
        return DEFAULT_PS_FORMAT + ("\t{{.Size}}" if size else "")
    if fmt == "raw":
        if quiet:
            return "container_id: {{.ID}}"
        return ("container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\n"
                "created_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\n"
                "status: {{- pad .Status 1 0}}\nnames: {{.Names}}\n"
                "labels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n"
                + ("size: {{.Size}}\\n" if size else ""))
    return "{{.ID}}" if quiet else fmt


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision (decimal units)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while size >= 1000.0 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def unix_time_string(secs: int) -> str:
    """time.Unix(secs, 0).String() in the local zone: `2024-05-01 12:00:00 +0200 CEST`."""
    import time

    t = time.localtime(secs)
    off = t.tm_gmtoff or 0
    sign = "+" if off >= 0 else "-"
    numeric = f"{sign}{abs(off) // 3600:02d}{abs(off) % 3600 // 60:02d}"
    zone = t.tm_zone or numeric
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {numeric} {zone}")


def ellipsis(s: str, width: int) -> str:
    """docker's formatter.Ellipsis: at most `width` columns, `…` marking a cut."""
    from muslin.cli.tabwriter import text_width

    if width <= 0:
        return ""
    if width == 1:
        return s[:1]
    if text_width(s) <= width:
        return s
    out, used = [], 0
    for ch in s:
        w = text_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def display_ports(ports: list[dict[str, Any]]) -> str:
    """docker's DisplayablePorts: `0.0.0.0:8080->80/tcp, 443/tcp` with ranges grouped."""
    def key(p: dict[str, Any]) -> tuple[int, str, int, str]:
        return (int(p.get("PrivatePort") or 0), str(p.get("IP") or ""),
                int(p.get("PublicPort") or 0), str(p.get("Type") or ""))

    groups: dict[str, list[int]] = {}
    result: list[str] = []
    mappings: list[str] = []

    def form(k: str, first: int, last: int) -> str:
        ip, _, kind = k.rpartition("/")
        group = str(first) if first == last else f"{first}-{last}"
        if ip:
            group = f"{join_host_port(ip, group)}->{group}"
        return f"{group}/{kind}"

    for p in sorted(ports, key=key):
        current = int(p.get("PrivatePort") or 0)
        kind = str(p.get("Type") or "")
        ip = str(p.get("IP") or "")
        k = kind
        if ip:
            public = int(p.get("PublicPort") or 0)
            if public != current:
                mappings.append(f"{join_host_port(ip, str(public))}->{current}/{kind}")
                continue
            k = f"{ip}/{kind}"
        g = groups.get(k)
        if g is None:
            groups[k] = [current, current]
            continue
        if current == g[1] + 1:
            g[1] = current
            continue
        result.append(form(k, g[0], g[1]))
        groups[k] = [current, current]
    result += [form(k, g[0], g[1]) for k, g in groups.items()]
    return ", ".join(result + mappings)


class ContainerContext(gv.GoStruct):
    """A `ps` row: docker's *formatter.ContainerContext (fields are methods)."""

    go_type = "*formatter.ContainerContext"

    def __init__(self, c: dict[str, Any], trunc: bool, now: float) -> None:
        self.c = c
        self.trunc = trunc
        self.now = now

    def _str(self, key: str) -> str:
        v = self.c.get(key)
        return v if isinstance(v, str) else ""

    def _labels(self) -> dict[str, str]:
        v = self.c.get("Labels")
        return v if isinstance(v, dict) else {}

    def _id(self) -> str:
        from muslin.cli.views import truncate_id

        return truncate_id(self._str("Id")) if self.trunc else self._str("Id")

    def _names(self) -> str:
        names = [n.removeprefix("/") for n in self.c.get("Names") or [] if isinstance(n, str)]
        if self.trunc:
            return next((n for n in names if "/" not in n), "")
        return ",".join(names)

    def _image(self) -> str:
        from muslin.cli.views import truncate_id

        image = self._str("Image")
        if image == "":
            return "<no image>"
        if not self.trunc:
            return image
        if truncate_id(self._str("ImageID")) == truncate_id(image):
            return truncate_id(image)
        from muslin.cli.image import RefError, parse_normalized_named

        try:
            ref = parse_normalized_named(image)
        except RefError:
            return image
        ref.digest = ""
        return ref.familiar()

    def _created(self) -> int:
        v = self.c.get("Created")
        return v if isinstance(v, int) else 0

    def _size(self) -> str:
        rw = self.c.get("SizeRw") or 0
        root = self.c.get("SizeRootFs") or 0
        text = human_size(float(rw))
        return f"{text} (virtual {human_size(float(root))})" if root > 0 else text

    def _mounts(self) -> str:
        names = []
        for m in self.c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source") or ""
            names.append(ellipsis(name, 15) if self.trunc else name)
        return ",".join(names)

    def _networks(self) -> str:
        settings = self.c.get("NetworkSettings") or {}
        nets = settings.get("Networks") if isinstance(settings, dict) else None
        return ",".join(sorted(nets)) if isinstance(nets, dict) else ""

    def methods(self) -> dict[str, Callable[..., Any]]:
        def label(name: Any) -> str:
            return str(self._labels().get(gv.want_str(name), ""))

        command = self._str("Command")
        return {
            "ID": self._id,
            "Names": self._names,
            "Image": self._image,
            "Command": lambda: gv._go_quote(ellipsis(command, 20) if self.trunc else command),
            "CreatedAt": lambda: unix_time_string(self._created()),
            "RunningFor": lambda: human_duration(self.now - self._created()) + " ago",
            "Ports": lambda: display_ports([p for p in self.c.get("Ports") or []
                                            if isinstance(p, dict)]),
            "State": lambda: self._str("State"),
            "Status": lambda: self._str("Status"),
            "Size": self._size,
            "Labels": lambda: ",".join(sorted(f"{k}={v}" for k, v in self._labels().items())),
            "Label": label,
            "Mounts": self._mounts,
            "LocalVolumes": lambda: str(sum(1 for m in self.c.get("Mounts") or []
                                            if m.get("Driver") == "local")),
            "Networks": self._networks,
        }

    def go_method(self, name: str) -> Callable[..., Any] | None:
        return self.methods().get(name)

    def to_json(self) -> Any:
        return {k: f() for k, f in self.methods().items() if k != "Label"}


def render_ps(containers: list[dict[str, Any]], fmt: str, quiet: bool, trunc: bool,
              size: bool, now: float) -> str:
    from muslin.cli.formatter import FormatError, render_list

    rows = [ContainerContext(c, trunc, now) for c in containers]
    try:
        return render_list(ps_format(fmt, quiet, size), rows, CONTAINER_HEADERS)
    except FormatError as e:
        raise StatusError(str(e)) from None


def ps(ctx: Context, opts: Options, args: list[str]) -> int:
    import time

    fmt = opts.string("format")
    quiet = opts.boolean("quiet")
    size = opts.boolean("size")
    if fmt and not quiet and not opts.is_set("size") and ".Size" in fmt:
        size = True  # docker requests sizes when the template uses them
    query: dict[str, str] = {}
    if opts.boolean("all"):
        query["all"] = "1"
    limit = opts.integer("last")
    if opts.boolean("latest") and limit == -1:
        limit = 1
    if limit > 0:
        query["limit"] = str(limit)
    if size:
        query["size"] = "1"
    query.update(filters_query(opts.filters("filter")))
    containers = ctx.client.get_json("/containers/json", query)
    ctx.out(render_ps(containers if isinstance(containers, list) else [], fmt, quiet,
                      not opts.boolean("no-trunc"), size, time.time()))
    return 0
