"""Published ports through muslind and the real docker CLI: an HTTP server behind
`-p 8080:80` answers from the host's 127.0.0.1, from a client host, from another
container and from itself (hairpin); UDP follows a replaced container; conflicts leave
nothing behind; 500 ports are one map lookup; ranges, -P, ephemeral ports, sctp, IPv6;
rules follow the container's life, a daemon restart and an `nft flush ruleset`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from daemon import Muslind
from lab import Lab, LabHost
from netcheck import udp_ask, udp_server

pytestmark = pytest.mark.kernel

WEB = ["sh", "-c", "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && "
       "exec httpd -f -p 80 -h /www"]

HTTP_GET = r"""
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip())
"""


@pytest.fixture(autouse=True)
def _docker_cli() -> None:
    if shutil.which("docker") is None:
        from lab import unavailable

        unavailable("the docker CLI is not installed")


def remove_all(d: Callable[..., Any]) -> None:
    """Containers go with `rm -f` (a daemon stopping stops each, 10 s for PID 1 shells)."""
    ids = d("ps", "-aq", check=False).stdout.split()
    if ids:
        d("rm", "-f", *ids, check=False)


@pytest.fixture
def docker(muslind: Muslind) -> Iterator[Callable[..., Any]]:
    yield muslind.docker
    remove_all(muslind.docker)


def http_get(lab: Lab, ns: Any, host: str, port: int) -> str | None:
    """The page a lab namespace gets from http://host:port/, or None."""
    url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    r = lab.run(ns, [sys.executable, "-c", HTTP_GET, url], check=False, timeout=15)
    return r.stdout.strip() if r.returncode == 0 else None


def http_in(d: Callable[..., Any], container: str, host: str, port: int) -> str | None:
    """The page a container gets (busybox nc; its wget crashes in these images)."""
    r = d("exec", container, "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | "
          f"nc -w 3 {host} {port}", check=False)
    if r.returncode != 0 or "\n\n" not in r.stdout:  # (text mode: \r\n read as \n)
        return None
    return str(r.stdout.split("\n\n", 1)[1].strip())


def ruleset(lab: Lab, lab_host: LabHost) -> list[dict[str, Any]]:
    """The lab host's nftables ruleset as `nft -j list ruleset` prints it."""
    out = lab.run(lab_host, ["nft", "-j", "list", "ruleset"]).stdout
    return [i for i in json.loads(out)["nftables"] if "metainfo" not in i]


def table_of(lab_host: LabHost) -> str:
    return f"muslin_{lab_host.prefix}"


def map_elements(rules: list[dict[str, Any]], table: str, name: str) -> list[Any]:
    for i in rules:
        m = i.get("map")
        if m and m["table"] == table and m["name"] == name:
            return list(m.get("elem", []))
    return []


def pub_ports(lab: Lab, lab_host: LabHost) -> set[int]:
    """Host ports in the instance's published-port maps."""
    rules = ruleset(lab, lab_host)
    out = set()
    for name in ("pub4", "pub4ip", "pub6", "pub6ip"):
        for e in map_elements(rules, table_of(lab_host), name):
            out.add(int(e[0]["concat"][-1]))
    return out


def start_web(d: Callable[..., Any], dns: list[str], name: str, *publish: str) -> str:
    args = [a for p in publish for a in ("-p", p)]
    return str(d("run", "-d", "--name", name, "--hostname", name, *dns, *args, "busybox",
                 *WEB).stdout.strip())


def test_http_behind_8080_answers_from_everywhere(lab: Lab, lab_host: LabHost,
                                                  docker: Callable[..., Any], stub_dns: Any,
                                                  client_host: Callable[..., Any]) -> None:
    client = client_host(lab_host)
    d = docker
    dns = ["--dns", stub_dns.address]
    start_web(d, dns, "web", "8080:80")
    d("run", "-d", "--name", "other", *dns, "busybox", "sleep", "1d")
    addr = client.host_address
    page = "hello-from-web"
    assert lab.wait_until(lambda: http_get(lab, lab_host, "127.0.0.1", 8080) == page,
                          what="web from the host's 127.0.0.1:8080")
    assert http_get(lab, lab_host, addr, 8080) == page               # its own address
    assert http_get(lab, client.client, addr, 8080) == page          # a client host
    assert http_in(d, "other", addr, 8080) == page                      # another container
    assert http_in(d, "web", addr, 8080) == page                        # itself (hairpin)
    # as docker shows them (an IPv4-only network: no [::] binding, see README)
    assert d("port", "web").stdout == "80/tcp -> 0.0.0.0:8080\n"
    assert d("port", "web", "80").stdout == "0.0.0.0:8080\n"
    assert d("ps", "--format", "{{.Ports}}", "-f", "name=web").stdout == \
        "0.0.0.0:8080->80/tcp\n"
    [info] = json.loads(d("inspect", "web").stdout)
    assert info["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0",
                                                            "HostPort": "8080"}]}
    assert info["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "",
                                                              "HostPort": "8080"}]}
    # stop: the mapping goes (map element, held port); start: it comes back
    d("stop", "-t", "1", "web")
    assert pub_ports(lab, lab_host) == set()
    assert d("inspect", "-f", "{{json .NetworkSettings.Ports}}", "web").stdout == "{}\n"
    assert d("ps", "-a", "--format", "{{.Ports}}", "-f", "name=web").stdout == "\n"
    assert http_get(lab, client.client, addr, 8080) is None
    assert d("port", "web").stdout == ""
    d("start", "web")
    assert pub_ports(lab, lab_host) == {8080}
    assert lab.wait_until(lambda: http_get(lab, client.client, addr, 8080) == page,
                          what="web again after start")
    d("rm", "-f", "web")
    assert pub_ports(lab, lab_host) == set()
    # the port is free again: a plain program can listen on it
    lab.run(lab_host, [sys.executable, "-c", "import socket; s=socket.socket(); "
                       "s.bind(('0.0.0.0', 8080)); s.listen()"])


def test_udp_echo_follows_the_replaced_container(lab: Lab, lab_host: LabHost,
                                                 docker: Callable[..., Any], stub_dns: Any,
                                                 client_host: Callable[..., Any]) -> None:
    client = client_host(lab_host)
    d = docker
    dns = ["--dns", stub_dns.address]
    addr = client.host_address
    seen = []
    for tag in ("one", "two"):
        d("run", "-d", "--name", tag, *dns, "-p", "5353:5353/udp", "busybox", "sleep", "1d")
        [info] = json.loads(d("inspect", tag).stdout)
        seen.append(info["NetworkSettings"]["IPAddress"])
        # the echo runs in the container's network namespace (busybox has no UDP server)
        udp_server(lab, info["NetworkSettings"]["SandboxKey"], "0.0.0.0", 5353, tag)
        # the same client port each time: without the conntrack flush the second ask
        # would still go to the first container's address (now the filler's)
        assert lab.wait_until(lambda t=tag: udp_ask(lab, client.client, addr, 5353) == t,
                              what=f"UDP echo of {tag}")
        assert d("port", tag).stdout == "5353/udp -> 0.0.0.0:5353\n"
        if tag == "one":
            d("rm", "-f", "one")
            d("run", "-d", "--name", "filler", *dns, "busybox", "sleep", "1d")
            assert d("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "filler").stdout \
                == seen[0] + "\n"  # the old address now answers nothing on 5353
    assert seen[0] != seen[1]
    assert udp_ask(lab, client.client, addr, 5353) == "two"


def test_conflicts_leave_nothing_behind(lab: Lab, lab_host: LabHost,
                                       docker: Callable[..., Any],
                                       stub_dns: Any) -> None:
    d = docker
    dns = ["--dns", stub_dns.address]
    start_web(d, dns, "web", "8080:80")
    r = d("run", "-d", "--name", "web2", *dns, "-p", "8081:81", "-p", "8080:80", "busybox",
          *WEB, check=False)
    assert r.returncode != 0
    assert "Bind for 0.0.0.0:8080 failed: port is already allocated" in r.stderr
    # nothing left behind: not running, no endpoint, no rule, 8081 free again
    assert d("ps", "-a", "--format", "{{.Names}} {{.State}}", "-f", "name=web2").stdout \
        == "web2 created\n"
    [net] = json.loads(d("network", "inspect", "bridge").stdout)
    assert sorted(c["Name"] for c in net["Containers"].values()) == ["web"]
    assert pub_ports(lab, lab_host) == {8080}
    assert d("port", "web2").stdout == ""
    lab.run(lab_host, [sys.executable, "-c", "import socket; s=socket.socket(); "
                       "s.bind(('0.0.0.0', 8081)); s.listen()"])
    # a program already listening on a port: publishing on it fails clearly
    lab.spawn(lab_host, [sys.executable, "-c", "import socket,time; s=socket.socket(); "
                         "s.bind(('0.0.0.0', 9090)); s.listen(); time.sleep(600)"])
    lab.wait_until(lambda: lab.run(lab_host, ["ss", "-ltnH", "sport = :9090"])
                   .stdout.strip() != "", what="the other program's listener")
    r = d("run", "-d", "--name", "web3", *dns, "-p", "9090:80", "busybox", *WEB, check=False)
    assert r.returncode != 0
    assert "Bind for 0.0.0.0:9090 failed: address already in use" in r.stderr
    assert pub_ports(lab, lab_host) == {8080}
    # once the first is gone, the second gets 8080
    d("rm", "-f", "web")
    d("start", "web2")
    assert lab.wait_until(lambda: http_get(lab, lab_host, "127.0.0.1", 8080) ==
                          "hello-from-" + d("inspect", "-f", "{{.Config.Hostname}}",
                                            "web2").stdout.strip(), what="web2 on 8080")


def test_500_published_ports_are_one_map_lookup(lab: Lab, lab_host: LabHost,
                                                docker: Callable[..., Any],
                                                stub_dns: Any) -> None:
    d = docker
    d("run", "-d", "--name", "many", "--dns", stub_dns.address,
      "-p", "20000-20499:20000-20499", "busybox", "httpd", "-f", "-p", "20321")
    rules = ruleset(lab, lab_host)
    table = table_of(lab_host)
    assert len(map_elements(rules, table, "pub4")) == 500
    for hook in ("prerouting", "output"):
        chain = [i["rule"] for i in rules
                 if "rule" in i and i["rule"]["table"] == table and i["rule"]["chain"] == hook]
        # a fixed number of rules, each one vmap lookup: the same with 1 or 500 ports
        assert len(chain) == 4
        assert all(sum("vmap" in e for e in r["expr"]) == 1 for r in chain)
        assert all("dnat" not in json.dumps(r["expr"]) for r in chain)
    # the element jumps to a chain holding the port's one DNAT rule
    per_port = [i["rule"] for i in rules if "rule" in i and i["rule"]["table"] == table
                and i["rule"]["chain"] == "p4-any-tcp-20321"]
    assert len(per_port) == 1 and "dnat" in json.dumps(per_port[0]["expr"])
    ports = d("ps", "--format", "{{.Ports}}", "-f", "name=many").stdout
    assert ports == "0.0.0.0:20000-20499->20000-20499/tcp\n"
    r = lab.run(lab_host, [sys.executable, "-c", HTTP_GET, "http://127.0.0.1:20321/"],
                check=False)
    assert "404" in r.stderr  # busybox httpd answered (no index file)


def test_ranges_publish_all_ephemeral_and_sctp(lab: Lab, lab_host: LabHost,
                                               docker: Callable[..., Any], muslind: Muslind,
                                               stub_dns: Any) -> None:
    d = docker
    dns = ["--dns", stub_dns.address]
    start_web(d, dns, "ranged", "8000-8002:80-82")
    assert d("port", "ranged").stdout == ("80/tcp -> 0.0.0.0:8000\n81/tcp -> 0.0.0.0:8001\n"
                                          "82/tcp -> 0.0.0.0:8002\n")
    # docker groups a range only where host and container ports are equal (see 500 ports)
    assert d("ps", "--format", "{{.Ports}}", "-f", "name=ranged").stdout == \
        "0.0.0.0:8000->80/tcp, 0.0.0.0:8001->81/tcp, 0.0.0.0:8002->82/tcp\n"
    assert lab.wait_until(lambda: http_get(lab, lab_host, "127.0.0.1", 8000) ==
                          "hello-from-ranged", what="ranged on 8000")
    lo, hi = (int(x) for x in lab.run(lab_host, ["cat", "/proc/sys/net/ipv4/"
                                                 "ip_local_port_range"]).stdout.split())
    # -P with --expose: every exposed port on a port of the ephemeral range
    d("run", "-d", "--name", "all", "--hostname", "all", *dns, "-P", "--expose", "80",
      "--expose", "90-91/udp", "busybox", *WEB)
    [info] = json.loads(d("inspect", "all").stdout)
    ports = info["NetworkSettings"]["Ports"]
    assert sorted(ports) == ["80/tcp", "90/udp", "91/udp"]
    for entries in ports.values():
        [entry] = entries
        assert entry["HostIp"] == "0.0.0.0" and lo <= int(entry["HostPort"]) <= hi
    http = int(ports["80/tcp"][0]["HostPort"])
    assert lab.wait_until(lambda: http_get(lab, lab_host, "127.0.0.1", http) ==
                          "hello-from-all", what="-P port")
    # an omitted host port: one from the ephemeral range
    d("run", "-d", "--name", "eph", "--hostname", "eph", *dns, "-p", "80", "--expose", "7000",
      "busybox", *WEB)
    [line] = d("port", "eph", "80/tcp").stdout.split()
    port = int(line.rsplit(":", 1)[1])
    assert lo <= port <= hi
    # an exposed port without binding shows as docker shows it
    assert d("ps", "--format", "{{.Ports}}", "-f", "name=eph").stdout == \
        f"7000/tcp, 0.0.0.0:{port}->80/tcp\n"
    assert lab.wait_until(lambda: http_get(lab, lab_host, "127.0.0.1", port) ==
                          "hello-from-eph", what="ephemeral port")
    # sctp: this kernel has none
    r = d("run", "-d", "--name", "sctp", *dns, "-p", "8082:82/sctp", "busybox", "true",
          check=False)
    assert r.returncode != 0 and "CONFIG_IP_SCTP" in r.stderr
    assert "sctp" not in d("ps", "-a", "--format", "{{.Names}}").stdout.split()
    # and through the API with PortBindings directly
    status, body = muslind.request("POST", "/containers/create?name=api", {
        "Image": "busybox", "Cmd": WEB, "Hostname": "api",
        "HostConfig": {"Dns": [stub_dns.address],
                       "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1",
                                                    "HostPort": "8090"}]}}})
    assert status == 201, body
    assert muslind.request("POST", "/containers/api/start")[0] == 204
    assert lab.wait_until(lambda: http_get(lab, lab_host, "127.0.0.1", 8090) ==
                          "hello-from-api", what="API-published port")
    assert d("port", "api").stdout == "80/tcp -> 127.0.0.1:8090\n"
    # and through the muslin CLI, on one bound host address
    muslin = [os.path.join(os.path.dirname(sys.executable), "muslin"), "-H",
              f"unix://{muslind.socket}"]
    subprocess.run([*muslin, "run", "-d", "--name", "mus", "--hostname", "mus", *dns, "-p",
                    "127.0.0.2:8091:80", "busybox", *WEB], check=True, capture_output=True)
    assert subprocess.run([*muslin, "port", "mus"], check=True, capture_output=True,
                          text=True).stdout == "80/tcp -> 127.0.0.2:8091\n"
    assert lab.wait_until(lambda: http_get(lab, lab_host, "127.0.0.2", 8091) ==
                          "hello-from-mus", what="muslin CLI-published port")
    assert http_get(lab, lab_host, "127.0.0.1", 8091) is None  # only the bound address


def test_ipv6_publishing(lab: Lab, lab_host: LabHost, docker: Callable[..., Any],
                         stub_dns: Any,
                         client_host: Callable[..., Any]) -> None:
    client = client_host(lab_host)
    lab.addr(lab_host, "eth0", "fd00:51::1/64")
    lab.addr(client.client, "eth0", "fd00:51::2/64")
    d = docker
    dns = ["--dns", stub_dns.address]
    d("network", "create", "--ipv6", "--subnet", "fd00:77::/64", "v6net")
    d("run", "-d", "--name", "web6", "--hostname", "web6", "--network", "v6net", *dns,
      "-p", "8080:80", "busybox", *WEB)
    assert d("port", "web6").stdout == "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n"
    assert d("ps", "--format", "{{.Ports}}", "-f", "name=web6").stdout == \
        "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp\n"
    assert lab.wait_until(lambda: http_get(lab, client.client, "fd00:51::1", 8080) ==
                          "hello-from-web6", timeout=15, what="web6 over IPv6")
    assert http_get(lab, client.client, client.host_address, 8080) == "hello-from-web6"
    assert http_get(lab, lab_host, "127.0.0.1", 8080) == "hello-from-web6"
    # a bound IPv6 host address only
    start_web(d, ["--network", "v6net", *dns], "v6only", "[fd00:51::1]:8081:80")
    assert d("port", "v6only").stdout == "80/tcp -> [fd00:51::1]:8081\n"
    assert lab.wait_until(lambda: http_get(lab, client.client, "fd00:51::1", 8081) ==
                          "hello-from-v6only", what="v6only")
    assert http_get(lab, lab_host, "127.0.0.1", 8081) is None
    # ::1 is refused with the reason (IPv6 has no route_localnet; no userland proxy)
    r = d("run", "-d", "--name", "lo6", "--network", "v6net", *dns, "-p", "[::1]:8082:80",
          "busybox", *WEB, check=False)
    assert r.returncode != 0 and "::1" in r.stderr and "route_localnet" in r.stderr
    # an IPv6 host address for a container without IPv6
    r = d("run", "-d", "--name", "no6", *dns, "-p", "[fd00:51::1]:8083:80", "busybox", *WEB,
          check=False)
    assert r.returncode != 0 and "no IPv6 address" in r.stderr


def test_rules_come_back_after_restart_and_flush(lab: Lab, lab_host: LabHost,
                                                 stub_dns: Any,
                                                 client_host: Callable[..., Any]) -> None:
    client = client_host(lab_host)
    muslind = Muslind(lab, lab_host, {"live-restore": True}).start()
    lab.defer("stop muslind", muslind.stop)
    lab.defer("remove the containers", lambda: remove_all(muslind.docker))
    d = muslind.docker
    start_web(d, ["--dns", stub_dns.address], "web", "8080:80")
    addr = client.host_address

    def answers() -> bool:
        return http_get(lab, client.client, addr, 8080) == "hello-from-web"

    assert lab.wait_until(answers, what="web")
    # a restart (the container keeps running) after the ruleset was flushed meanwhile
    muslind.stop()
    lab.run(lab_host, ["nft", "flush", "ruleset"])
    assert not answers()
    muslind.start()
    assert answers()
    assert pub_ports(lab, lab_host) == {8080}
    # a flush under the running daemon: it notices and rebuilds within seconds
    lab.run(lab_host, ["nft", "flush", "ruleset"])
    assert lab.wait_until(answers, timeout=10, what="web after nft flush ruleset")
    assert pub_ports(lab, lab_host) == {8080}
    # and a deleted table too
    lab.run(lab_host, ["nft", "delete", "table", "inet", table_of(lab_host)])
    assert lab.wait_until(answers, timeout=10, what="web after the table was deleted")
    assert "flush" in muslind.log() or "rebuil" in muslind.log()
    d("rm", "-f", "web")
    assert pub_ports(lab, lab_host) == set()
