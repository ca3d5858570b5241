"""The command tree of `muslin`: docker's verbs, flags, usage lines and help texts.

Owns the declaration of every command and flag (nothing runs here): each command names
its runner as "module:function", imported only when it runs, so `--help` and the
common path load no more than they need.
"""

from __future__ import annotations

from muslin.cli.cmdline import FORMAT_HELP, INSPECT_FORMAT_HELP, Command, Flag, Group

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


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

def _lazy(name: str) -> Callable[[str], str]:
    """A flag validator of muslin.cli.container, imported only when the flag is used."""
    def validate(value: str) -> str:
        from muslin.cli import container

        fn: Callable[[str], str] = getattr(container, name)
        return fn(value)

    return validate


# -- containers ----------------------------------------------------------------------

_CONTAINER_FLAGS = [
    Flag("add-host", "list", "Add a custom host-to-IP mapping (host:ip)",
         validate=_lazy("validate_extra_host")),
    Flag("attach", "list", "Attach to STDIN, STDOUT or STDERR", short="a",
         validate=_lazy("validate_attach")),
    Flag("dns", "list", "Set custom DNS servers", validate=_lazy("validate_ip")),
    Flag("dns-opt", "list", "Set DNS options", hidden=True),
    Flag("dns-option", "list", "Set DNS options"),
    Flag("dns-search", "list", "Set custom DNS search domains",
         validate=_lazy("validate_dns_search")),
    Flag("domainname", "string", "Container NIS domain name"),
    Flag("entrypoint", "string", "Overwrite the default ENTRYPOINT of the image"),
    Flag("env", "list", "Set environment variables", short="e", validate=_lazy("validate_env")),
    Flag("env-file", "list", "Read in a file of environment variables"),
    Flag("expose", "list", "Expose a port or a range of ports"),
    Flag("hostname", "string", "Container host name", short="h"),
    Flag("interactive", "bool", "Keep STDIN open even if not attached", short="i"),
    Flag("ip", "string", "IPv4 address (e.g., 172.30.100.104)"),
    Flag("ip6", "string", "IPv6 address (e.g., 2001:db8::33)"),
    Flag("label", "list", "Set meta data on a container", short="l", validate=_validate_label),
    Flag("link", "list", "Add link to another container", validate=_lazy("validate_link")),
    Flag("link-local-ip", "list", "Container IPv4/IPv6 link-local addresses"),
    Flag("log-driver", "string", "Logging driver for the container"),
    Flag("log-opt", "list", "Log driver options"),
    Flag("mac-address", "string", "Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    Flag("name", "string", "Assign a name to the container"),
    Flag("net", "list", "Connect a container to a network", hidden=True,
         validate=_lazy("validate_network")),
    Flag("net-alias", "list", "Add network-scoped alias for the container", hidden=True),
    Flag("network", "list", "Connect a container to a network",
         validate=_lazy("validate_network")),
    Flag("network-alias", "list", "Add network-scoped alias for the container"),
    Flag("publish", "list", "Publish a container's port(s) to the host", short="p"),
    Flag("publish-all", "bool", "Publish all exposed ports to random ports", short="P"),
    Flag("pull", "string", 'Pull image before running ("always", "missing", "never")',
         default="missing"),
    Flag("quiet", "bool", "Suppress the pull output", short="q"),
    Flag("restart", "string", "Restart policy to apply when a container exits", default="no"),
    Flag("rm", "bool", "Automatically remove the container when it exits"),
    Flag("stop-signal", "string", "Signal to stop a container"),
    Flag("stop-timeout", "int", "Timeout (in seconds) to stop a container"),
    Flag("sysctl", "map", "Sysctl options"),
    Flag("tty", "bool", "Allocate a pseudo-TTY", short="t"),
    Flag("user", "string", "Username or UID (format: <name|uid>[:<group|gid>])", short="u"),
    Flag("workdir", "string", "Working directory inside the container", short="w"),
]

RUN = Command("run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
              "Create and run a new container from an image", "muslin.cli.container:run",
              args=(1, None), interspersed=False,
              aliases_text="muslin container run, muslin run", flags=[
                  *_CONTAINER_FLAGS,
                  Flag("detach", "bool", "Run container in background and print container ID",
                       short="d"),
                  Flag("detach-keys", "string",
                       "Override the key sequence for detaching a container"),
                  Flag("sig-proxy", "bool", "Proxy received signals to the process",
                       default="true"),
              ])

CREATE = Command("create", "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
                 "Create a new container", "muslin.cli.container:create", args=(1, None),
                 interspersed=False, aliases_text="muslin container create, muslin create",
                 flags=_CONTAINER_FLAGS)

_DETACH_KEYS = Flag("detach-keys", "string",
                    "Override the key sequence for detaching a container")

START = Command("start", "start [OPTIONS] CONTAINER [CONTAINER...]",
                "Start one or more stopped containers", "muslin.cli.container:start",
                args=(1, None), aliases_text="muslin container start, muslin start", flags=[
                    Flag("attach", "bool", "Attach STDOUT/STDERR and forward signals",
                         short="a"),
                    _DETACH_KEYS,
                    Flag("interactive", "bool", "Attach container's STDIN", short="i"),
                ])

_STOP_FLAGS = [
    Flag("signal", "string", "Signal to send to the container", short="s"),
    Flag("timeout", "int", "Seconds to wait before killing the container", short="t"),
    Flag("time", "int", "Seconds to wait before killing the container", hidden=True),
]

STOP = Command("stop", "stop [OPTIONS] CONTAINER [CONTAINER...]",
               "Stop one or more running containers", "muslin.cli.container:stop",
               args=(1, None), aliases_text="muslin container stop, muslin stop",
               flags=_STOP_FLAGS)

RESTART = Command("restart", "restart [OPTIONS] CONTAINER [CONTAINER...]",
                  "Restart one or more containers", "muslin.cli.container:restart",
                  args=(1, None), aliases_text="muslin container restart, muslin restart",
                  flags=_STOP_FLAGS)

KILL = Command("kill", "kill [OPTIONS] CONTAINER [CONTAINER...]",
               "Kill one or more running containers", "muslin.cli.container:kill",
               args=(1, None), aliases_text="muslin container kill, muslin kill", flags=[
                   Flag("signal", "string", "Signal to send to the container", short="s"),
               ])

PAUSE = Command("pause", "pause CONTAINER [CONTAINER...]",
                "Pause all processes within one or more containers",
                "muslin.cli.container:pause", args=(1, None),
                aliases_text="muslin container pause, muslin pause")

UNPAUSE = Command("unpause", "unpause CONTAINER [CONTAINER...]",
                  "Unpause all processes within one or more containers",
                  "muslin.cli.container:unpause", args=(1, None),
                  aliases_text="muslin container unpause, muslin unpause")

RM = Command("rm", "rm [OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
             "muslin.cli.container:rm", args=(1, None),
             aliases_text="muslin container rm, muslin container remove, muslin rm", flags=[
                 Flag("force", "bool", "Force the removal of a running container (uses SIGKILL)",
                      short="f"),
                 Flag("link", "bool", "Remove the specified link", short="l"),
                 Flag("volumes", "bool", "Remove anonymous volumes associated with the container",
                      short="v"),
             ])

PS = Command("ps", "ps [OPTIONS]", "List containers", "muslin.cli.container:ps",
             aliases_text="muslin container ls, muslin container list, muslin container ps, "
                          "muslin ps", flags=[
                 Flag("all", "bool", "Show all containers (default shows just running)",
                      short="a"),
                 Flag("filter", "filter", "Filter output based on conditions provided",
                      short="f"),
                 Flag("format", "string", FORMAT_HELP),
                 Flag("last", "int", "Show n last created containers (includes all states)",
                      short="n", default="-1"),
                 Flag("latest", "bool",
                      "Show the latest created container (includes all states)", short="l"),
                 Flag("no-trunc", "bool", "Don't truncate output"),
                 Flag("quiet", "bool", "Only display container IDs", short="q"),
                 Flag("size", "bool", "Display total file sizes", short="s"),
             ])

EXEC = Command("exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
               "Execute a command in a running container", "muslin.cli.container:exec_",
               args=(2, None), interspersed=False,
               aliases_text="muslin container exec, muslin exec", flags=[
                   Flag("detach", "bool", "Detached mode: run command in the background",
                        short="d"),
                   _DETACH_KEYS,
                   Flag("env", "list", "Set environment variables", short="e",
                        validate=_lazy("validate_env")),
                   Flag("env-file", "list", "Read in a file of environment variables"),
                   Flag("interactive", "bool", "Keep STDIN open even if not attached",
                        short="i"),
                   Flag("privileged", "bool", "Give extended privileges to the command"),
                   Flag("tty", "bool", "Allocate a pseudo-TTY", short="t"),
                   Flag("user", "string",
                        'Username or UID (format: "<name|uid>[:<group|gid>]")', short="u"),
                   Flag("workdir", "string", "Working directory inside the container",
                        short="w"),
               ])

ATTACH = Command("attach", "attach [OPTIONS] CONTAINER",
                 "Attach local standard input, output, and error streams to a running "
                 "container", "muslin.cli.container:attach", args=(1, 1),
                 aliases_text="muslin container attach, muslin attach", flags=[
                     _DETACH_KEYS,
                     Flag("no-stdin", "bool", "Do not attach STDIN"),
                     Flag("sig-proxy", "bool", "Proxy all received signals to the process",
                          default="true"),
                 ])

LOGS = Command("logs", "logs [OPTIONS] CONTAINER", "Fetch the logs of a container",
               "muslin.cli.container:logs", args=(1, 1),
               aliases_text="muslin container logs, muslin logs", flags=[
                   Flag("details", "bool", "Show extra details provided to logs"),
                   Flag("follow", "bool", "Follow log output", short="f"),
                   Flag("since", "string", 'Show logs since timestamp (e.g. '
                        '"2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
                   Flag("tail", "string", "Number of lines to show from the end of the logs",
                        short="n", default="all"),
                   Flag("timestamps", "bool", "Show timestamps", short="t"),
                   Flag("until", "string", 'Show logs before a timestamp (e.g. '
                        '"2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
               ])

CONTAINER_INSPECT = Command("inspect", "inspect [OPTIONS] CONTAINER [CONTAINER...]",
                            "Display detailed information on one or more containers",
                            "muslin.cli.container:inspect", args=(1, None), flags=[
                                Flag("format", "string", INSPECT_FORMAT_HELP, short="f"),
                                Flag("size", "bool", "Display total file sizes", short="s"),
                            ])

PORT = Command("port", "port CONTAINER [PRIVATE_PORT[/PROTO]]",
               "List port mappings or a specific mapping for the container",
               "muslin.cli.container:port", args=(1, 2),
               aliases_text="muslin container port, muslin port")

RENAME = Command("rename", "rename CONTAINER NEW_NAME", "Rename a container",
                 "muslin.cli.container:rename", args=(2, 2),
                 aliases_text="muslin container rename, muslin rename")

WAIT = Command("wait", "wait CONTAINER [CONTAINER...]",
               "Block until one or more containers stop, then print their exit codes",
               "muslin.cli.container:wait", args=(1, None),
               aliases_text="muslin container wait, muslin wait")



def _renamed(cmd: Command, name: str, aliases: list[str]) -> Command:
    """`cmd` under another name and aliases (`container ls` is `ps`)."""
    return Command(name, name + cmd.use[len(cmd.name):], cmd.short, cmd.run, flags=cmd.flags,
                   args=(cmd.min_args, cmd.max_args), aliases=aliases,
                   aliases_text=cmd.aliases_text, interspersed=cmd.interspersed)


CONTAINER = Group("container", "Manage containers", [
    ATTACH, CREATE, EXEC, CONTAINER_INSPECT, KILL, LOGS, _renamed(PS, "ls", ["ps", "list"]),
    PAUSE, PORT, RENAME, RESTART, _renamed(RM, "rm", ["remove"]), RUN, START, STOP, UNPAUSE,
    WAIT,
])

INSPECT = Command("inspect", "inspect [OPTIONS] NAME|ID [NAME|ID...]",
                  "Return low-level information on muslin objects",
                  "muslin.cli.container:inspect_any", args=(1, None), flags=[
                      Flag("format", "string", INSPECT_FORMAT_HELP, short="f"),
                      Flag("size", "bool", "Display total file sizes if the type is container",
                           short="s"),
                      Flag("type", "string", "Only inspect objects of the given type"),
                  ])

# -- images --------------------------------------------------------------------------

_IMAGES_FLAGS = [
    Flag("all", "bool", "Show all images (default hides intermediate images)", short="a"),
    Flag("digests", "bool", "Show digests"),
    Flag("filter", "filter", "Filter output based on conditions provided", short="f"),
    Flag("format", "string", FORMAT_HELP),
    Flag("no-trunc", "bool", "Don't truncate output"),
    Flag("quiet", "bool", "Only show image IDs", short="q"),
]

IMAGES = Command("images", "images [OPTIONS] [REPOSITORY[:TAG]]", "List images",
                 "muslin.cli.image:ls", args=(0, 1),
                 aliases_text="muslin image ls, muslin image list, muslin images",
                 flags=_IMAGES_FLAGS)

_RMI_FLAGS = [
    Flag("force", "bool", "Force removal of the image", short="f"),
    Flag("no-prune", "bool", "Do not delete untagged parents"),
]

RMI = Command("rmi", "rmi [OPTIONS] IMAGE [IMAGE...]", "Remove one or more images",
              "muslin.cli.image:rm", args=(1, None),
              aliases_text="muslin image rm, muslin image remove, muslin rmi", flags=_RMI_FLAGS)

TAG = Command("tag", "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
              "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", "muslin.cli.image:tag",
              args=(2, 2), aliases_text="muslin image tag, muslin tag")

PULL = Command("pull", "pull [OPTIONS] NAME[:TAG|@DIGEST]",
               "Download an image from a registry", "muslin.cli.image:pull", args=(1, 1),
               aliases_text="muslin image pull, muslin pull", flags=[
                   Flag("all-tags", "bool", "Download all tagged images in the repository",
                        short="a"),
                   Flag("platform", "string",
                        "Set platform if server is multi-platform capable"),
                   Flag("quiet", "bool", "Suppress verbose output", short="q"),
               ])

IMPORT = Command("import", "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                 "Import the contents from a tarball to create a filesystem image",
                 "muslin.cli.image:import_", args=(1, 2),
                 aliases_text="muslin image import, muslin import", flags=[
                     Flag("change", "list", "Apply Dockerfile instruction to the created image",
                          short="c"),
                     Flag("message", "string", "Set commit message for imported image",
                          short="m"),
                     Flag("platform", "string",
                          "Set platform if server is multi-platform capable"),
                 ])

LOAD = Command("load", "load [OPTIONS]", "Load an image from a tar archive or STDIN",
               "muslin.cli.image:load", aliases_text="muslin image load, muslin load", flags=[
                   Flag("input", "string", "Read from tar archive file, instead of STDIN",
                        short="i"),
                   Flag("quiet", "bool", "Suppress the load output", short="q"),
               ])

IMAGE = Group("image", "Manage images", [
    IMPORT,
    Command("inspect", "inspect [OPTIONS] IMAGE [IMAGE...]",
            "Display detailed information on one or more images", "muslin.cli.image:inspect",
            args=(1, None), flags=[Flag("format", "string", INSPECT_FORMAT_HELP, short="f")]),
    LOAD,
    _renamed(IMAGES, "ls", ["list"]),
    PULL,
    _renamed(RMI, "rm", ["remove"]),
    TAG,
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

PLUGIN = Group("plugin", "Manage plugins", [
    Command("serve", "serve [OPTIONS]",
            "Serve muslin's bridge driver to a Docker engine as a network plugin",
            "muslin.cli.plugin:serve", args=(0, 0), flags=[
                Flag("name", "string", "Plugin name: the socket NAME.sock, docker's -d NAME",
                     default="muslin"),
                Flag("driver", "string", "Built-in driver to serve", default="bridge"),
                Flag("plugin-dir", "string", "Directory of plugin sockets",
                     default="/run/docker/plugins"),
                Flag("data-root", "string", "Where the plugin keeps its state",
                     default="/var/lib/muslin-plugin"),
                Flag("prefix", "string", "Name prefix of the plugin's kernel objects "
                     "(nftables table muslin_PREFIX, link marks)", default="plugin"),
                Flag("iptables", "bool", "Program the plugin's nftables table",
                     default="true"),
            ])])

GLOBAL_FLAGS = (
    Flag("host", "string", "Daemon socket to connect to", short="H"),
    Flag("debug", "bool", "Enable debug mode", short="D"),
    Flag("version", "bool", "Print version information and quit", short="v"),
)

ROOT = Group("muslin", "Docker-style container networking for Linux",
             [ATTACH, CONTAINER, CREATE, EVENTS, EXEC, IMAGE, IMAGES, IMPORT, INFO, INSPECT,
              KILL, LOAD, LOGS, NETWORK, PAUSE, PLUGIN, PORT, PS, PULL, RENAME, RESTART, RM,
              RMI, RUN,
              START, STOP, SYSTEM, TAG, UNPAUSE, VERSION, WAIT], flags=GLOBAL_FLAGS)

# docker lists these under "Common Commands"
TOP_COMMANDS = ("run", "exec", "ps", "pull", "images", "version", "info")
