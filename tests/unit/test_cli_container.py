"""The container verbs' pure parts: -p parsing, frames, the create body, ps rows."""

from __future__ import annotations

from typing import Any

import pytest

from muslin.cli import cmdline
from muslin.cli.commands import CONTAINER, CREATE, EXEC, PS, ROOT, RUN
from muslin.cli.container import (
    create_request,
    display_ports,
    ellipsis,
    human_duration,
    human_size,
    parse_port_spec,
    port_config,
    port_lines,
    render_ps,
    start_error_code,
)
from muslin.cli.errors import StatusError
from muslin.cli.stream import Demux, encode_query, frame


def parse(cmd: cmdline.Command, *argv: str) -> tuple[cmdline.Options, list[str]]:
    opts, args, want_help = cmdline.parse_flags(cmd.flags, argv, interspersed=cmd.interspersed)
    assert not want_help
    return opts, args


# -- -p ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "want"), [
    ("80", [("80/tcp", "", "")]),
    ("8080:80", [("80/tcp", "", "8080")]),
    ("127.0.0.1:8080:80/udp", [("80/udp", "127.0.0.1", "8080")]),
    ("127.0.0.1::80", [("80/tcp", "127.0.0.1", "")]),
    ("[::1]:8080:80", [("80/tcp", "::1", "8080")]),
    ("::1:8080:80", [("80/tcp", "::1", "8080")]),
    ("80/SCTP", [("80/sctp", "", "")]),
    ("80/", [("80/tcp", "", "")]),
    ("8000-8001:80-81/tcp", [("80/tcp", "", "8000"), ("81/tcp", "", "8001")]),
    ("8000-8010:80", [("80/tcp", "", "8000-8010")]),  # a host range to pick from
    ("7000-7001", [("7000/tcp", "", ""), ("7001/tcp", "", "")]),
])
def test_port_spec(spec: str, want: list[tuple[str, str, str]]) -> None:
    assert parse_port_spec(spec) == want


@pytest.mark.parametrize(("spec", "message"), [
    ("", "no port specified: <empty>"),
    ("8080:", "no port specified: 8080:<empty>"),
    ("x:80", "invalid hostPort: x"),
    ("80-x", "invalid containerPort: 80-x"),
    ("70000", "invalid containerPort: 70000"),
    ("90-80", "invalid containerPort: 90-80"),
    ("80/xtp", "invalid proto: xtp"),
    ("1.2.3:80:80", "invalid IP address: 1.2.3"),
    ("8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and "
                        "8000-8002"),
    ("+80", "invalid containerPort: +80"),
])
def test_port_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_port_spec(spec)
    assert str(e.value) == message


def test_port_config_and_expose() -> None:
    exposed, bindings = port_config(
        ["8080:80", "127.0.0.1:8080:80", "target=53,published=5353,protocol=udp"],
        ["90-91/udp", "443"])
    assert bindings == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"},
                   {"HostIp": "127.0.0.1", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "", "HostPort": "5353"}],
    }
    assert set(exposed) == {"80/tcp", "53/udp", "90/udp", "91/udp", "443/tcp"}
    with pytest.raises(ValueError, match="invalid port format for --expose: 1:2"):
        port_config([], ["1:2"])
    with pytest.raises(ValueError) as e:
        port_config([], ["x"])
    assert str(e.value) == ('invalid range format for --expose: x, error: '
                            'strconv.ParseUint: parsing "x": invalid syntax')
    with pytest.raises(ValueError, match=r"should be name=value but got 'bogus'"):
        port_config(["target=80,bogus"], [])


# -- frames ------------------------------------------------------------------------------


def test_demux_frames_across_reads() -> None:
    data = frame(1, b"hello\n") + frame(2, b"oops\n") + frame(1, b"") + frame(0, b"in")
    d = Demux()
    got = []
    for i in range(0, len(data), 3):  # split everywhere, headers included
        got += d.feed(data[i:i + 3])
    assert got == [(1, b"hello\n"), (2, b"oops\n"), (1, b""), (1, b"in")]
    assert d.feed(frame(1, b"partial")[:10]) == []  # kept until the rest comes


def test_demux_errors() -> None:
    with pytest.raises(StatusError, match="Unrecognized input header: 9"):
        Demux().feed(bytes([9, 0, 0, 0, 0, 0, 0, 1, 65]))
    with pytest.raises(StatusError, match="error from daemon in stream: broken"):
        Demux().feed(frame(3, b"broken"))
    # the length is big-endian
    assert frame(1, b"x" * 258)[:8] == bytes([1, 0, 0, 0, 0, 0, 1, 2])


def test_encode_query_repeats_lists() -> None:
    assert encode_query({"repo": "a b", "changes": ["ENV A=1", "CMD x"], "fromSrc": "-"}) == (
        "changes=ENV+A%3D1&changes=CMD+x&fromSrc=-&repo=a+b")


# -- flags and the create body -----------------------------------------------------------


def test_flags_end_at_the_image() -> None:
    opts, args = parse(RUN, "-d", "--rm", "-e", "A=1", "busybox", "ls", "-l", "--rm")
    assert args == ["busybox", "ls", "-l", "--rm"]
    assert opts.boolean("detach") and opts.boolean("rm")
    opts, args = parse(EXEC, "-it", "c1", "sh", "-c", "echo -n")
    assert args == ["c1", "sh", "-c", "echo -n"] and opts.boolean("tty")
    # -h is the hostname here; --help still asks for help
    opts, args = parse(RUN, "-h", "web", "busybox")
    assert opts.string("hostname") == "web"
    assert cmdline.parse_flags(RUN.flags, ["--help"], interspersed=False)[2]
    # hidden aliases work and stay out of the help
    opts, _ = parse(RUN, "--net", "n1", "--dns-opt", "ndots:2", "img")
    assert opts.strings("net") == ["n1"] and opts.strings("dns-opt") == ["ndots:2"]
    text = cmdline.help_text("muslin run", RUN, width=200)
    assert "--net " not in text and "--dns-opt " not in text and "--network list" in text
    assert "--restart string       Restart policy to apply when a container exits " \
        '(default "no")' in text


@pytest.mark.parametrize(("argv", "message"), [
    (["-e", "=x", "img"], 'invalid argument "=x" for "-e, --env" flag: invalid environment '
                          "variable: =x"),
    (["--dns", "1.2.3", "img"], 'invalid argument "1.2.3" for "--dns" flag: IP address is '
                                "not correctly formatted: 1.2.3"),
    (["--add-host", "nocolon", "img"], 'invalid argument "nocolon" for "--add-host" flag: '
                                       'bad format for add-host: "nocolon"'),
    (["--add-host", "h:1.2.3", "img"], 'invalid argument "h:1.2.3" for "--add-host" flag: '
                                       'invalid IP address in add-host: "1.2.3"'),
    (["--link", "a:b:c", "img"], 'invalid argument "a:b:c" for "--link" flag: bad format for '
                                 "links: a:b:c"),
    (["-a", "stdweird", "img"], 'invalid argument "stdweird" for "-a, --attach" flag: valid '
                                "streams are STDIN, STDOUT and STDERR"),
    (["--network", "name=x,bogus=y", "img"], 'invalid argument "name=x,bogus=y" for '
                                             '"--network" flag: invalid field key bogus'),
])
def test_flag_validation(argv: list[str], message: str) -> None:
    with pytest.raises(cmdline.FlagError) as e:
        cmdline.parse_flags(RUN.flags, argv, interspersed=False)
    assert str(e.value) == message


def body_of(*argv: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    opts, args = parse(RUN, *argv)
    return create_request(opts, args, env or {}, (24, 80))


def test_create_body_defaults() -> None:
    b = body_of("busybox")
    assert b["Image"] == "busybox" and b["Cmd"] is None and b["Entrypoint"] is None
    assert (b["AttachStdin"], b["AttachStdout"], b["AttachStderr"]) == (False, True, True)
    assert (b["Tty"], b["OpenStdin"], b["StdinOnce"]) == (False, False, False)
    assert "ExposedPorts" not in b and b["Env"] == [] and b["Labels"] == {}
    h = b["HostConfig"]
    assert h["NetworkMode"] == "default" and h["PortBindings"] == {}
    assert h["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert h["LogConfig"] == {"Type": "", "Config": {}} and h["AutoRemove"] is False
    assert (h["Dns"], h["DnsSearch"], h["DnsOptions"]) == ([], [], [])
    assert h["ExtraHosts"] is None and h["Links"] is None and "Sysctls" not in h
    assert h["ConsoleSize"] == [24, 80]
    assert b["NetworkingConfig"] == {"EndpointsConfig": {"default": {
        "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
        "DriverOpts": None}}}


def test_create_body_full() -> None:
    b = body_of("--name", "web", "-h", "web1", "--network", "front", "--network-alias", "www",
                "--ip", "10.1.0.5", "--ip6", "fd00::5", "--mac-address", "02:42:ac:11:00:02",
                "--link", "db:database", "--add-host", "gw=10.0.0.1", "--dns", "10.0.0.53",
                "--dns-search", "example.com", "--dns-option", "ndots:2", "-p", "8080:80",
                "-P", "--expose", "9000", "--sysctl", "net.ipv4.ip_forward=1",
                "--restart", "on-failure:3", "--log-driver", "json-file", "--log-opt",
                "max-size=1m", "-e", "A=1", "-e", "HOME", "-e", "UNSET", "-w", "/srv",
                "--entrypoint", "/bin/sh", "-u", "1000:1000", "-it", "-l", "tier=web",
                "busybox", "-c", "echo hi", env={"HOME": "/root"})
    assert b["Hostname"] == "web1" and b["User"] == "1000:1000" and b["WorkingDir"] == "/srv"
    assert b["Entrypoint"] == ["/bin/sh"] and b["Cmd"] == ["-c", "echo hi"]
    assert b["Env"] == ["A=1", "HOME=/root", "UNSET"]
    assert (b["Tty"], b["OpenStdin"], b["AttachStdin"], b["StdinOnce"]) == (True,) * 4
    assert b["ExposedPorts"] == {"80/tcp": {}, "9000/tcp": {}}
    assert b["Labels"] == {"tier": "web"}
    h = b["HostConfig"]
    assert h["NetworkMode"] == "front"
    assert h["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert h["PublishAllPorts"] is True
    assert h["ExtraHosts"] == ["gw:10.0.0.1"] and h["Links"] == ["db:database"]
    assert (h["Dns"], h["DnsSearch"], h["DnsOptions"]) == (
        ["10.0.0.53"], ["example.com"], ["ndots:2"])
    assert h["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert h["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert h["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert b["NetworkingConfig"] == {"EndpointsConfig": {"front": {
        "IPAMConfig": {"IPv4Address": "10.1.0.5", "IPv6Address": "fd00::5"},
        "Links": ["db:database"], "Aliases": ["www"], "MacAddress": "02:42:ac:11:00:02",
        "DriverOpts": None}}}


def test_network_forms() -> None:
    # one network and nothing for its endpoint: no endpoint config, as docker
    b = body_of("--net", "bridge", "img")
    assert b["HostConfig"]["NetworkMode"] == "bridge"
    assert b["NetworkingConfig"] == {"EndpointsConfig": {}}
    b = body_of("--network", "name=back,alias=api,ip=10.2.0.9,driver-opt=com.x=1", "img")
    assert b["NetworkingConfig"]["EndpointsConfig"] == {"back": {
        "IPAMConfig": {"IPv4Address": "10.2.0.9", "IPv6Address": ""}, "Links": None,
        "Aliases": ["api"], "MacAddress": "", "DriverOpts": {"com.x": "1"}}}
    b = body_of("--network", "a", "--network", "b", "img")
    assert set(b["NetworkingConfig"]["EndpointsConfig"]) == {"a", "b"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--network-alias", "x", "img"],
     "network-scoped aliases are only supported for user-defined networks"),
    (["--network", "host", "--network", "mynet", "img"],
     "conflicting options: cannot attach both user-defined and non-user-defined "
     "network-modes"),
    (["--network", "a", "--network", "a", "img"], 'network "a" is specified multiple times'),
    (["--network", "name=n,alias=x", "--network-alias", "y", "img"],
     "conflicting options: cannot specify both --network-alias and per-network alias"),
    (["--mac-address", "02:42", "img"], "02:42 is not a valid mac address"),
    (["--rm", "--restart", "always", "img"],
     "conflicting options: cannot specify both --restart and --rm"),
    (["--restart", ":3", "img"], "invalid restart policy format: no policy provided before "
                                 "colon"),
    (["--restart", "always:x", "img"], "invalid restart policy format: maximum retry count "
                                       "must be an integer"),
    (["--sysctl", "kernel.hostname=x", "img"], "sysctl 'kernel.hostname=x' is not allowed"),
    (["--log-driver", "none", "--log-opt", "a=b", "img"], "invalid logging opts for driver "
                                                          "none"),
    (["-p", "80/xtp", "img"], "invalid proto: xtp"),
])
def test_create_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError) as e:
        body_of(*argv)
    assert str(e.value) == message


def test_entrypoint_reset_and_env_file(tmp_path: Any) -> None:
    assert body_of("--entrypoint=", "img")["Entrypoint"] == [""]
    f = tmp_path / "env"
    f.write_text("\ufeff# comment\n\n  A=1 2\nB\nC\nD=\n")
    b = body_of("--env-file", str(f), "-e", "E=5", "img", env={"B": "from-env"})
    assert b["Env"] == ["A=1 2", "B=from-env", "D=", "E=5"]
    f.write_text("BAD KEY=1\n")
    with pytest.raises(ValueError, match="variable 'BAD KEY' contains whitespaces"):
        body_of("--env-file", str(f), "img")
    with pytest.raises(ValueError, match="no such file or directory"):
        body_of("--env-file", str(tmp_path / "absent"), "img")


def test_start_error_codes() -> None:
    assert start_error_code("Error response from daemon: failed to create task: exec: "
                            '"nope": executable file not found in $PATH') == 127
    assert start_error_code("Error response from daemon: exec /etc: permission denied") == 126
    assert start_error_code("Error response from daemon: network x not found") == 125


def test_command_tree() -> None:
    assert ROOT.find("run") is RUN and CONTAINER.find("run") is RUN
    assert CONTAINER.find("create") is CREATE and ROOT.find("ps") is PS
    for name in ("ls", "ps", "list"):
        found = CONTAINER.find(name)
        assert isinstance(found, cmdline.Command) and found.run == "muslin.cli.container:ps"
    assert RUN.interspersed is False and PS.interspersed is True


# -- ps ------------------------------------------------------------------------------------

NOW = 1_714_557_600.0
C1 = {
    "Id": "3f4c1e2d5a6b" + "0" * 52, "Names": ["/web"], "Image": "nginx:latest",
    "ImageID": "sha256:" + "a" * 64, "Command": "/docker-entrypoint.sh nginx -g 'daemon off;'",
    "Created": int(NOW) - 3, "State": "running", "Status": "Up 3 seconds",
    "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
              {"PrivatePort": 443, "Type": "tcp"}],
    "Labels": {"b": "2", "a": "1"}, "Mounts": [],
    "NetworkSettings": {"Networks": {"bridge": {}}},
}
C2 = {
    "Id": "9a8b7c6d5e4f" + "1" * 52, "Names": ["/db", "/web/db"],
    "Image": "sha256:" + "b" * 64, "ImageID": "sha256:" + "b" * 64, "Command": "sleep 5",
    "Created": int(NOW) - 90, "State": "exited", "Status": "Exited (0) About a minute ago",
    "Ports": [], "Labels": None,
}


def test_ps_table_like_docker() -> None:
    out = render_ps([C1, C2], "", quiet=False, trunc=True, size=False, now=NOW)
    assert out.splitlines() == [
        "CONTAINER ID   IMAGE          COMMAND                  CREATED              "
        "STATUS                          PORTS                           NAMES",
        '3f4c1e2d5a6b   nginx:latest   "/docker-entrypoint.…"   3 seconds ago        '
        "Up 3 seconds                    443/tcp, 0.0.0.0:8080->80/tcp   web",
        '9a8b7c6d5e4f   bbbbbbbbbbbb   "sleep 5"                About a minute ago   '
        "Exited (0) About a minute ago                                   db"]
    assert render_ps([], "", quiet=False, trunc=True, size=False, now=NOW) == (
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n")


def test_ps_quiet_notrunc_and_templates() -> None:
    assert render_ps([C1, C2], "", quiet=True, trunc=True, size=False, now=NOW) == (
        "3f4c1e2d5a6b\n9a8b7c6d5e4f\n")
    out = render_ps([C2], "{{.Names}} {{.Command}} {{.State}}", quiet=False, trunc=False,
                    size=False, now=NOW)
    assert out == 'db,web/db "sleep 5" exited\n'
    out = render_ps([C1], "{{.Labels}} {{.Label \"a\"}} {{.Networks}} {{.Size}}", quiet=False,
                    trunc=True, size=False, now=NOW)
    assert out == "a=1,b=2 1 bridge 0B\n"
    out = render_ps([C1], "table {{.ID}}\\t{{.Size}}", quiet=False, trunc=True, size=True,
                    now=NOW)
    assert out.splitlines() == ["CONTAINER ID   SIZE", "3f4c1e2d5a6b   0B"]
    import json

    row = json.loads(render_ps([C1], "json", quiet=False, trunc=True, size=False, now=NOW))
    assert row["ID"] == "3f4c1e2d5a6b" and row["RunningFor"] == "3 seconds ago"
    assert list(row) == sorted(row)


def test_ps_helpers() -> None:
    assert [human_duration(s) for s in (0.5, 1, 59, 60, 119, 3599, 3600, 5400, 86400 * 3,
                                        86400 * 20, 86400 * 90, 86400 * 800)] == [
        "Less than a second", "1 second", "59 seconds", "About a minute", "About a minute",
        "59 minutes", "About an hour", "2 hours", "3 days", "2 weeks", "3 months", "2 years"]
    assert [human_size(n) for n in (0, 999, 1000, 4_200_000, 1_234_567_890)] == [
        "0B", "999B", "1kB", "4.2MB", "1.23GB"]
    assert ellipsis("sleep 5", 20) == "sleep 5"
    assert ellipsis("a" * 25, 20) == "a" * 19 + "…"
    assert display_ports([
        {"IP": "0.0.0.0", "PrivatePort": 81, "PublicPort": 81, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 80, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 80, "Type": "tcp"},
        {"PrivatePort": 53, "Type": "udp"},
    ]) == "53/udp, 0.0.0.0:80-81->80-81/tcp, [::]:80->80/tcp"


def test_port_lines() -> None:
    ports = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                        {"HostIp": "::", "HostPort": "8080"}],
             "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}], "443/tcp": None}
    assert port_lines(ports, None, "web") == [
        "53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080"]
    assert port_lines(ports, "80", "web") == ["0.0.0.0:8080", "[::]:8080"]
    with pytest.raises(StatusError, match="Error: No public port '443/tcp' published for web"):
        port_lines(ports, "443/tcp", "web")
    with pytest.raises(StatusError) as e:
        port_lines(ports, "x", "web")
    assert e.value.message == ('Error: invalid port (x): strconv.ParseUint: parsing "x": '
                               "invalid syntax")
