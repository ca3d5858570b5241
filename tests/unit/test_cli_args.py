"""docker's command line in muslin: flag parsing, request bodies, usage and help text."""

from __future__ import annotations

import re

import pytest

from muslin.cli import cmdline
from muslin.cli.client import filters_query, query_string, resolve_host, version_less
from muslin.cli.commands import NETWORK, ROOT, TOP_COMMANDS
from muslin.cli.errors import StatusError
from muslin.cli.network import consolidate_ipam, create_request, list_format

CREATE = NETWORK.find("create")
LS = NETWORK.find("ls")
assert isinstance(CREATE, cmdline.Command) and isinstance(LS, cmdline.Command)


def parse(cmd: cmdline.Command, *argv: str) -> tuple[cmdline.Options, list[str]]:
    opts, args, want_help = cmdline.parse_flags(cmd.flags, argv)
    assert not want_help
    return opts, args


def test_flag_spellings() -> None:
    opts, args = parse(CREATE, "-d", "macvlan", "--subnet=10.0.0.0/24", "-oparent=eth0",
                       "net1", "--ip-range", "10.0.0.0/25", "-o=mtu=1400", "--internal",
                       "--ipv6=false", "--label", "a=b", "--label=c")
    assert args == ["net1"]  # arguments may sit between flags
    assert opts.string("driver") == "macvlan"
    assert opts.strings("subnet") == ["10.0.0.0/24"]
    assert opts.mapping("opt") == {"parent": "eth0", "mtu": "1400"}
    assert opts.boolean("internal") and not opts.boolean("attachable")
    assert opts.is_set("ipv6") and opts.boolean("ipv6") is False
    assert opts.strings("label") == ["a=b", "c"]
    assert opts.string("ipam-driver") == "default"  # defaults
    opts, args = parse(CREATE, "--subnet", "10.1.0.0/16,10.2.0.0/16", "--subnet", "fd00::/64",
                       "--", "-weird-name")
    assert opts.strings("subnet") == ["10.1.0.0/16", "10.2.0.0/16", "fd00::/64"]
    assert args == ["-weird-name"]


def test_short_flag_clusters_and_filters() -> None:
    opts, args = parse(LS, "-qf", "name=x", "-f", "Driver = bridge", "--filter=label=a=b")
    assert opts.boolean("quiet") and args == []
    assert opts.filters("filter") == {"name": {"x": True}, "driver": {"bridge": True},
                                      "label": {"a=b": True}}
    assert filters_query(opts.filters("filter")) == {
        "filters": '{"name":{"x":true},"driver":{"bridge":true},"label":{"a=b":true}}'}
    assert filters_query({}) == {}


@pytest.mark.parametrize(("argv", "message"), [
    (["--bogus"], "unknown flag: --bogus"),
    (["-x"], "unknown shorthand flag: 'x' in -x"),
    (["-qx"], "unknown shorthand flag: 'x' in -qx"),
    (["--format"], "flag needs an argument: --format"),
    (["-f"], "flag needs an argument: 'f' in -f"),
    (["-f", "noequals"], 'invalid argument "noequals" for "-f, --filter" flag: '
                         "bad format of filter (expected name=value)"),
    (["--quiet=maybe"], 'invalid argument "maybe" for "-q, --quiet" flag: '
                        'strconv.ParseBool: parsing "maybe": invalid syntax'),
    (["---x"], "bad flag syntax: ---x"),
])
def test_flag_errors(argv: list[str], message: str) -> None:
    with pytest.raises(cmdline.FlagError) as e:
        cmdline.parse_flags(LS.flags, argv)
    assert str(e.value) == message


def test_label_validation() -> None:
    with pytest.raises(cmdline.FlagError, match="invalid label '=x': empty name"):
        parse(CREATE, "--label", "=x", "n")


def test_help_flag() -> None:
    for argv in (["--help"], ["-h"], ["n", "--help"]):
        _, _, want_help = cmdline.parse_flags(CREATE.flags, argv)
        assert want_help


def test_create_body_like_docker() -> None:
    opts, args = parse(CREATE, "--subnet", "172.28.0.0/16", "--ip-range", "172.28.5.0/24",
                       "--gateway", "172.28.5.254", "--aux-address", "my-router=172.28.1.5",
                       "--aux-address", "my-switch=172.28.1.6", "--label", "k=v",
                       "--attachable", "br0")
    assert create_request(args[0], opts) == {
        "Name": "br0", "Driver": "bridge", "Scope": "",
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{
            "Subnet": "172.28.0.0/16", "IPRange": "172.28.5.0/24", "Gateway": "172.28.5.254",
            "AuxiliaryAddresses": {"my-router": "172.28.1.5", "my-switch": "172.28.1.6"}}]},
        "Internal": False, "Attachable": True, "Ingress": False, "ConfigOnly": False,
        "ConfigFrom": None, "Options": {}, "Labels": {"k": "v"},
    }  # no EnableIPv6: docker sends it only when --ipv6 is given


def test_ipam_pairs_by_containment() -> None:
    got = consolidate_ipam(
        ["192.168.0.0/24", "fd00:1::/64", "10.0.0.0/8"],
        ["10.1.0.0/16", "fd00:1::/80"],
        ["fd00:1::1", "192.168.0.1/24", "10.0.0.1"],
        {"a": "10.9.9.9", "b": "fd00:1::9"})
    assert got == [
        {"Subnet": "192.168.0.0/24", "Gateway": "192.168.0.1/24"},
        {"Subnet": "fd00:1::/64", "IPRange": "fd00:1::/80", "Gateway": "fd00:1::1",
         "AuxiliaryAddresses": {"b": "fd00:1::9"}},
        {"Subnet": "10.0.0.0/8", "IPRange": "10.1.0.0/16", "Gateway": "10.0.0.1",
         "AuxiliaryAddresses": {"a": "10.9.9.9"}},
    ]
    assert consolidate_ipam([], [], [], {}) == []
    assert consolidate_ipam(["bogus"], [], [], {}) == [{"Subnet": "bogus"}]  # the daemon's call


@pytest.mark.parametrize(("subnets", "ranges", "gateways", "aux", "message"), [
    ([], [], ["10.0.0.1"], {}, "every ip-range or gateway must have a corresponding subnet"),
    (["10.0.0.0/8", "10.1.0.0/16"], [], [], {},
     "multiple overlapping subnet configuration is not supported"),
    (["10.0.0.0/24"], ["10.0.0.0/25", "10.0.0.128/25"], [], {},
     "every ip-range or gateway must have a corresponding subnet"),
    (["10.0.0.0/24", "10.0.1.0/24"], ["10.0.0.0/25", "10.0.0.128/25"], [], {},
     "cannot configure multiple ranges (10.0.0.128/25, 10.0.0.0/25) on the same subnet "
     "(10.0.0.0/24)"),
    (["10.0.0.0/24", "10.0.1.0/24"], [], ["10.0.0.1", "10.0.0.2"], {},
     "cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet "
     "(10.0.0.0/24)"),
    (["10.0.0.0/24"], ["10.0.5.0/25"], [], {}, "no matching subnet for range 10.0.5.0/25"),
    (["10.0.0.0/24"], [], ["fd00::1"], {}, "no matching subnet for gateway fd00::1"),
    (["10.0.0.0/24"], [], [], {"r": "10.0.9.1"}, "no matching subnet for aux-address 10.0.9.1"),
    (["10.0.0.0/24"], [], ["bogus"], {}, "no matching subnet for gateway bogus"),
    (["nonsense", "10.0.0.0/24"], [], [], {}, "invalid subnet: invalid CIDR address: nonsense"),
])
def test_ipam_errors(subnets: list[str], ranges: list[str], gateways: list[str],
                     aux: dict[str, str], message: str) -> None:
    with pytest.raises(StatusError) as e:
        consolidate_ipam(subnets, ranges, gateways, aux)
    assert e.value.message == message and e.value.code == 1


def test_list_formats() -> None:
    assert list_format("table", False) == "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    assert list_format("table", True) == "{{.ID}}"
    assert list_format("{{.Name}}", True) == "{{.Name}}"


def test_argument_counts() -> None:
    with pytest.raises(StatusError) as e:
        cmdline.check_args("muslin network create", CREATE, [])
    assert e.value.code == 1
    assert e.value.message == (
        '"muslin network create" requires exactly 1 argument.\n'
        "See 'muslin network create --help'.\n\n"
        "Usage:  muslin network create [OPTIONS] NETWORK\n\nCreate a network")
    with pytest.raises(StatusError, match=re.escape('"muslin network ls" accepts no arguments.')):
        cmdline.check_args("muslin network ls", LS, ["x"])
    inspect = NETWORK.find("inspect")
    assert isinstance(inspect, cmdline.Command)
    with pytest.raises(StatusError, match=re.escape("requires at least 1 argument.")):
        cmdline.check_args("muslin network inspect", inspect, [])
    cmdline.check_args("muslin network inspect", inspect, ["a", "b", "c"])


def test_ls_help_is_dockers_at_80_columns() -> None:
    # `docker network ls --help` (docker 27, 80-column terminal), s/docker/muslin/
    assert cmdline.help_text("muslin network ls", LS, width=80) == """
Usage:  muslin network ls [OPTIONS]

List networks

Aliases:
  muslin network ls, muslin network list

Options:
  -f, --filter filter   Provide filter values (e.g. "driver=bridge")
      --format string   Format output using a custom template:
                        'table':            Print output in table format
                        with column headers (default)
                        'table TEMPLATE':   Print output in table format
                        using the given Go template
                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given
                        Go template.
                        Refer to https://docs.docker.com/go/formatting/
                        for more information about formatting output with
                        templates
      --no-trunc        Do not truncate the output
  -q, --quiet           Only display network IDs
"""


def test_create_help_wraps_and_shows_defaults() -> None:
    text = cmdline.help_text("muslin network create", CREATE, width=80)
    assert """
Options:
      --attachable           Enable manual container attachment
      --aux-address map      Auxiliary IPv4 or IPv6 addresses used by
                             Network driver (default map[])
      --config-from string   The network from which to copy the configuration
      --config-only          Create a configuration only network
  -d, --driver string        Driver to manage the Network (default "bridge")
""" in text
    assert "      --ipam-driver string   IP Address Management Driver (default \"default\")\n" \
        in text
    assert "      --label list           Set metadata on a network\n" in text
    # unwrapped on a wide terminal
    wide = cmdline.help_text("muslin network create", CREATE, width=200)
    assert "      --aux-address map      Auxiliary IPv4 or IPv6 addresses used by Network " \
        "driver (default map[])\n" in wide


def test_group_and_root_help() -> None:
    assert cmdline.help_text("muslin network", NETWORK, width=80) == """
Usage:  muslin network COMMAND

Manage networks

Commands:
  connect     Connect a container to a network
  create      Create a network
  disconnect  Disconnect a container from a network
  inspect     Display detailed information on one or more networks
  ls          List networks
  prune       Remove all unused networks
  rm          Remove one or more networks

Run 'muslin network COMMAND --help' for more information on a command.
"""
    root = cmdline.help_text("muslin", ROOT, top=TOP_COMMANDS, width=80)
    assert root.startswith("\nUsage:  muslin [OPTIONS] COMMAND\n\n")
    assert "\nCommon Commands:\n  run         Create and run a new container from an image\n" \
        in root
    assert "  version     Show the muslin version information\n" \
        "  info        Display system-wide information\n\n" in root
    assert "\n  network     Manage networks\n  plugin      Manage plugins\n" \
        "  system      Manage muslin\n" in root
    assert "\nCommands:\n  attach      " in root
    assert "\n  events      Get real time events from the server\n" in root
    assert "\nGlobal Options:\n  -D, --debug         Enable debug mode\n" \
        "  -H, --host string   Daemon socket to connect to\n" in root
    assert root.endswith("\n\nRun 'muslin COMMAND --help' for more information on a command.\n")


def test_hosts() -> None:
    assert resolve_host(None, {}) == "unix:///run/muslin/muslin.sock"
    assert resolve_host(None, {"MUSLIN_HOST": "unix:///tmp/m.sock"}) == "unix:///tmp/m.sock"
    assert resolve_host("unix:///a.sock", {"MUSLIN_HOST": "unix:///b.sock"}) == "unix:///a.sock"
    assert resolve_host(None, {"DOCKER_HOST": "unix:///var/run/docker.sock"}) == (
        "unix:///run/muslin/muslin.sock")  # DOCKER_HOST itself is docker's, not ours
    with pytest.raises(StatusError, match="only to unix:// sockets"):
        resolve_host("tcp://127.0.0.1:2375", {})


def test_query_and_versions() -> None:
    assert query_string({"filters": '{"name":{"a b":true}}', "verbose": "true"}) == (
        "filters=%7B%22name%22%3A%7B%22a+b%22%3Atrue%7D%7D&verbose=true")
    assert version_less("1.44", "1.47") and not version_less("1.47", "1.47")
    assert version_less("1.9", "1.10") and not version_less("2.0", "1.47")
