"""The command tree of `muslin`: docker's verbs, flags, usage lines and help texts.

Owns the declaration of every command and flag (nothing runs here): each command names
its runner as "module:function", imported only when it runs, so `--help` and the
common path load no more than they need.
"""

from __future__ import annotations

from muslin.cli.cmdline import FORMAT_HELP, INSPECT_FORMAT_HELP, Command, Flag, Group


def _validate_label(value: str) -> str:
    """opts.ValidateLabel."""
    if value.partition("=")[0].strip() == "":
        raise ValueError(f"invalid label '{value}': empty name")
    return value


NETWORK = Group("network", "Manage networks", [
    Command("connect", "connect [OPTIONS] NETWORK CONTAINER",
            "Connect a container to a network", "muslin.cli.network:connect",
            args=(2, 2), flags=[
                Flag("ip", "string", 'IPv4 address (e.g., "172.30.100.104")'),
                Flag("ip6", "string", 'IPv6 address (e.g., "2001:db8::33")'),
                Flag("link", "list", "Add link to another container"),
                Flag("alias", "strings", "Add network-scoped alias for the container"),
                Flag("link-local-ip", "strings", "Add a link-local address for the container"),
                Flag("driver-opt", "strings", "driver options for the network"),
            ]),
    Command("create", "create [OPTIONS] NETWORK", "Create a network",
            "muslin.cli.network:create", args=(1, 1), flags=[
                Flag("driver", "string", "Driver to manage the Network", short="d",
                     default="bridge"),
                Flag("opt", "map", "Set driver specific options", short="o"),
                Flag("label", "list", "Set metadata on a network", validate=_validate_label),
                Flag("internal", "bool", "Restrict external access to the network"),
                Flag("ipv6", "bool", "Enable or disable IPv6 networking"),
                Flag("attachable", "bool", "Enable manual container attachment"),
                Flag("ingress", "bool", "Create swarm routing-mesh network"),
                Flag("scope", "string", "Control the network's scope"),
                Flag("config-only", "bool", "Create a configuration only network"),
                Flag("config-from", "string", "The network from which to copy the configuration"),
                Flag("ipam-driver", "string", "IP Address Management Driver", default="default"),
                Flag("subnet", "strings",
                     "Subnet in CIDR format that represents a network segment"),
                Flag("ip-range", "strings", "Allocate container ip from a sub-range"),
                Flag("gateway", "strings", "IPv4 or IPv6 Gateway for the master subnet"),
                Flag("aux-address", "map",
                     "Auxiliary IPv4 or IPv6 addresses used by Network driver"),
                Flag("ipam-opt", "map", "Set IPAM driver specific options"),
            ]),
    Command("disconnect", "disconnect [OPTIONS] NETWORK CONTAINER",
            "Disconnect a container from a network", "muslin.cli.network:disconnect",
            args=(2, 2), flags=[
                Flag("force", "bool", "Force the container to disconnect from a network",
                     short="f"),
            ]),
    Command("inspect", "inspect [OPTIONS] NETWORK [NETWORK...]",
            "Display detailed information on one or more networks",
            "muslin.cli.network:inspect", args=(1, None), flags=[
                Flag("format", "string", INSPECT_FORMAT_HELP, short="f"),
                Flag("verbose", "bool", "Verbose output for diagnostics", short="v"),
            ]),
    Command("ls", "ls [OPTIONS]", "List networks", "muslin.cli.network:ls",
            aliases=["list"], flags=[
                Flag("quiet", "bool", "Only display network IDs", short="q"),
                Flag("no-trunc", "bool", "Do not truncate the output"),
                Flag("format", "string", FORMAT_HELP),
                Flag("filter", "filter", 'Provide filter values (e.g. "driver=bridge")',
                     short="f"),
            ]),
    Command("prune", "prune [OPTIONS]", "Remove all unused networks",
            "muslin.cli.network:prune", flags=[
                Flag("force", "bool", "Do not prompt for confirmation", short="f"),
                Flag("filter", "filter", 'Provide filter values (e.g. "until=<timestamp>")'),
            ]),
    Command("rm", "rm NETWORK [NETWORK...]", "Remove one or more networks",
            "muslin.cli.network:rm", args=(1, None), aliases=["remove"], flags=[
                Flag("force", "bool", "Do not error if the network does not exist", short="f"),
            ]),
])

EVENTS = Command("events", "events [OPTIONS]", "Get real time events from the server",
                 "muslin.cli.system:events",
                 aliases_text="muslin system events, muslin events", flags=[
                     Flag("since", "string", "Show all events created since timestamp"),
                     Flag("until", "string", "Stream events until this timestamp"),
                     Flag("filter", "filter", "Filter output based on conditions provided",
                          short="f"),
                     Flag("format", "string", INSPECT_FORMAT_HELP),
                 ])

INFO = Command("info", "info [OPTIONS]", "Display system-wide information",
               "muslin.cli.system:info", aliases_text="muslin system info, muslin info",
               flags=[
                   Flag("format", "string", INSPECT_FORMAT_HELP, short="f"),
               ])

VERSION = Command("version", "version [OPTIONS]", "Show the muslin version information",
                  "muslin.cli.system:version", flags=[
                      Flag("format", "string", INSPECT_FORMAT_HELP, short="f"),
                  ])

SYSTEM = Group("system", "Manage muslin", [EVENTS, INFO])

GLOBAL_FLAGS = (
    Flag("host", "string", "Daemon socket to connect to", short="H"),
    Flag("debug", "bool", "Enable debug mode", short="D"),
    Flag("version", "bool", "Print version information and quit", short="v"),
)

ROOT = Group("muslin", "Docker-style container networking for Linux",
             [EVENTS, INFO, NETWORK, SYSTEM, VERSION], flags=GLOBAL_FLAGS)

# docker lists these under "Common Commands"
TOP_COMMANDS = ("version", "info")
