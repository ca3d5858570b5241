"""The embedded DNS's answer tables, built from the controller's documents: no I/O.

`Records.build(networks, endpoints, sandboxes, extra)` takes the store's documents
(and a general record table for services, `NameRecord`) and makes one table per
network with embedded DNS; `Records.view(sandbox_id)` is what one asking sandbox
sees: the tables of the networks it is on, first network first, plus its own
`--link` aliases.

What a network's table holds, for each endpoint joined to a sandbox there:
- the endpoint's name (the container's name), its aliases, the sandbox's name and
  "hostname", and the short id (12 characters of the sandbox key when the key is a
  64-hex container id) -> the endpoint's addresses on that network;
- every such name also as `name.network`;
- PTR: each address -> `endpoint-name.network`.
A name several endpoints carry (a shared alias) maps to all their addresses, in a
stable order (the endpoints' creation order); the server rotates it per answer.

Which networks have embedded DNS: every network that is ready, not predefined
(`bridge`, `host`, `none`) and not of the host or null driver: user-defined bridge,
macvlan, overlay and the like, as in Docker.

Forwarding: a sandbox forwards names it cannot answer when at least one of its
networks is neither internal nor of the null driver; its upstreams are its own
("dns" in the sandbox document, at most 3) or, when it has none, the host's.
"ndots_set" in the sandbox document (its resolv.conf sets ndots above 0 explicitly)
turns on Docker's rule for single-label names (see `muslin.dns.message`).

`--link` aliases: "links" in the sandbox document ({alias: target name}) make the
alias resolve, for that sandbox only, to what the target's name resolves to on the
networks it shares with it.

Names are compared case-insensitively (ASCII lower case), without the final dot.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections import ChainMap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Doc = dict[str, Any]

#: TTL of every embedded answer, in seconds. Zero: an answer is good for the query in
#: progress only, so no cache in a container (nscd, a JVM, Go's, a caching stub)
#: keeps an address after the container behind it left, was renamed or restarted
#: with another address (Docker's 600 s does, a known source of stale addresses).
#: The resolver is local and answers from memory, so not caching costs little.
DEFAULT_TTL = 0

MAX_UPSTREAMS = 3
NO_DNS_DRIVERS = frozenset({"host", "null"})
_SHORT_ID = re.compile(r"[0-9a-f]{64}")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")


@functools.lru_cache(maxsize=1 << 16)
def normalize(name: str) -> str | None:
    """The table key of a name (lower case, no final dot), or None when it cannot be
    a DNS name made of plain labels (letters, digits, '-' and '_', 63 bytes at most,
    253 in all)."""
    if not isinstance(name, str):
        return None
    key = (name[:-1] if name.endswith(".") else name).lower()
    if not key or len(key) > 253 or not key.isascii() or _NAME.fullmatch(key) is None:
        return None
    return key


def reverse_name(address: str) -> str:
    """The PTR owner of an address (lower case, no final dot)."""
    if ":" in address:
        digits = socket.inet_pton(socket.AF_INET6, address).hex()
        return ".".join(reversed(digits)) + ".ip6.arpa"
    socket.inet_pton(socket.AF_INET, address)
    return ".".join(reversed(address.split("."))) + ".in-addr.arpa"


def short_id(key: str) -> str | None:
    """The 12-character short id of a container id (64 hex digits), else None."""
    return key[:12] if isinstance(key, str) and _SHORT_ID.fullmatch(key) else None


def has_dns(net: Doc) -> bool:
    """True when the network gets embedded DNS (user-defined, not host/null)."""
    return (net.get("status") == "ready" and not net.get("predefined")
            and net.get("driver") not in NO_DNS_DRIVERS)


@dataclass(frozen=True)
class Answer:
    """The addresses a name resolves to (each family in a stable order)."""

    v4: tuple[str, ...] = ()
    v6: tuple[str, ...] = ()


@dataclass(frozen=True)
class NameRecord:
    """A general record (for services): a name on a network -> addresses (several
    backends, or one virtual IP). With ptr=True each address also gets a PTR to
    `name.network`."""

    network_id: str
    name: str
    addresses: tuple[str, ...]
    ptr: bool = False


@dataclass
class NetworkTable:
    """One network's names: plain, qualified (`name.network`) and PTR."""

    network_id: str
    name: str
    internal: bool
    plain: dict[str, Answer] = field(default_factory=dict)
    qualified: dict[str, Answer] = field(default_factory=dict)
    ptr: dict[str, str] = field(default_factory=dict)
    _combined: dict[str, Answer] | None = field(default=None, repr=False)
    _plain_acc: dict[str, tuple[dict[str, None], dict[str, None]]] = field(
        default_factory=dict, repr=False)
    _qualified_acc: dict[str, tuple[dict[str, None], dict[str, None]]] = field(
        default_factory=dict, repr=False)

    def combined(self) -> dict[str, Answer]:
        """Plain and qualified names in one dict (a plain name wins a clash)."""
        if self._combined is None:
            self._combined = {**self.qualified, **self.plain}
        return self._combined

    def add(self, name: str, answer: Answer) -> None:
        """Adds addresses to a name (and to `name.network`); call freeze() after."""
        key = normalize(name)
        if key is None:
            return
        self._combined = None
        for table, k in ((self._plain_acc, key),
                         (self._qualified_acc, f"{key}.{self.name.lower()}")):
            if len(k) > 253 or (table is self._qualified_acc and normalize(k) is None):
                continue
            v4, v6 = table.setdefault(k, ({}, {}))
            v4.update(dict.fromkeys(answer.v4))
            v6.update(dict.fromkeys(answer.v6))

    def freeze(self) -> None:
        """Turns what add() gathered into the plain and qualified tables."""
        for acc, table in ((self._plain_acc, self.plain),
                           (self._qualified_acc, self.qualified)):
            for k, (v4, v6) in acc.items():
                table[k] = Answer(tuple(v4), tuple(v6))
            acc.clear()
        self._combined = None

    def add_ptr(self, address: str, name: str) -> None:
        target = normalize(f"{name}.{self.name}")
        if target is not None:
            self.ptr.setdefault(reverse_name(address), target)


@dataclass(frozen=True)
class View:
    """What one sandbox's resolver answers from."""

    sandbox_id: str
    names: Mapping[str, Answer]
    ptr: Mapping[str, str]
    forward: bool
    upstreams: tuple[str, ...]
    networks: tuple[str, ...]
    ndots_set: bool = False

    def lookup(self, name: str) -> Answer | None:
        """The answer for a name (any case, final dot or not), or None."""
        key = name[:-1].lower() if name.endswith(".") else name.lower()
        return self.names.get(key)

    def lookup_ptr(self, name: str) -> str | None:
        key = name[:-1].lower() if name.endswith(".") else name.lower()
        return self.ptr.get(key)


def _addr(value: Any) -> str | None:
    """An address (with or without /prefix) in its canonical text, or None."""
    if not value or not isinstance(value, str):
        return None
    text = value.partition("/")[0]
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, text))
    except (OSError, ValueError):
        return None


class Records:
    """One snapshot of the store's names: per-network tables and per-sandbox views."""

    def __init__(self, tables: dict[str, NetworkTable], sandboxes: dict[str, Doc],
                 sandbox_networks: dict[str, list[str]], external: dict[str, bool]) -> None:
        self.tables = tables
        self._sandboxes = sandboxes
        self._sandbox_networks = sandbox_networks
        self._external = external
        self._views: dict[str, View | None] = {}

    @classmethod
    def build(cls, networks: Iterable[Doc], endpoints: Iterable[Doc],
              sandboxes: Iterable[Doc], extra: Iterable[NameRecord] = (), *,
              exclude: Iterable[str] = ()) -> Records:
        """The tables of a store snapshot. Endpoints count when joined ("joined" with a
        sandbox); those in exclude (leaving at this moment) do not."""
        nets = {n["id"]: n for n in networks if n.get("status") == "ready"}
        sbs = {s["id"]: s for s in sandboxes if s.get("status") == "ready"}
        skip = set(exclude)
        tables = {nid: NetworkTable(nid, str(n["name"]), bool(n.get("internal")))
                  for nid, n in nets.items() if has_dns(n)}
        joined = sorted((e for e in endpoints
                         if e.get("status") == "joined" and e.get("sandbox_id") in sbs
                         and e.get("network_id") in nets and e["id"] not in skip),
                        key=lambda e: (str(e.get("created", "")), e["id"]))
        sandbox_networks: dict[str, list[str]] = {sid: [] for sid in sbs}
        external: dict[str, bool] = dict.fromkeys(sbs, False)
        by_id = {e["id"]: e for e in joined}
        for sid, sb in sbs.items():
            for ep_id in sb.get("endpoints", []):
                e = by_id.get(ep_id)
                if e is None:
                    continue
                net = nets[e["network_id"]]
                if not net.get("internal") and net.get("driver") != "null":
                    external[sid] = True
                if e["network_id"] in tables:
                    sandbox_networks[sid].append(e["network_id"])
        for e in joined:
            table = tables.get(e["network_id"])
            if table is None:
                continue
            sb = sbs[e["sandbox_id"]]
            v4, v6 = _addr(e.get("ipv4")), _addr(e.get("ipv6"))
            answer = Answer((v4,) if v4 else (), (v6,) if v6 else ())
            if not answer.v4 and not answer.v6:
                continue
            names = [e.get("name"), *list(e.get("aliases") or []), sb.get("name"),
                     sb.get("hostname"), short_id(str(sb.get("key", "")))]
            for name in dict.fromkeys(n for n in names if isinstance(n, str) and n):
                table.add(name, answer)
            for a in (*answer.v4, *answer.v6):
                table.add_ptr(a, str(e["name"]))
        for rec in extra:
            table = tables.get(rec.network_id)
            if table is None:
                continue
            addrs = [a for a in (_addr(x) for x in rec.addresses) if a]
            answer = Answer(tuple(a for a in addrs if ":" not in a),
                            tuple(a for a in addrs if ":" in a))
            table.add(rec.name, answer)
            if rec.ptr:
                for a in addrs:
                    table.add_ptr(a, rec.name)
        for table in tables.values():
            table.freeze()
        return cls(tables, sbs, sandbox_networks, external)

    def sandbox(self, sandbox_id: str) -> Doc:
        """The sandbox's document (ready sandboxes only; KeyError otherwise)."""
        return self._sandboxes[sandbox_id]

    def dns_sandboxes(self) -> list[str]:
        """Ids of the sandboxes on at least one network with embedded DNS."""
        return [sid for sid, nets in self._sandbox_networks.items() if nets]

    def view(self, sandbox_id: str) -> View | None:
        """The sandbox's view, or None when it is on no network with embedded DNS."""
        if sandbox_id in self._views:
            return self._views[sandbox_id]
        view = self._make_view(sandbox_id)
        self._views[sandbox_id] = view
        return view

    def _make_view(self, sandbox_id: str) -> View | None:
        net_ids = self._sandbox_networks.get(sandbox_id)
        if not net_ids:
            return None
        sb = self._sandboxes[sandbox_id]
        tables = [self.tables[n] for n in net_ids]
        shared: dict[str, Answer] | ChainMap[str, Answer] = (
            tables[0].combined() if len(tables) == 1
            else ChainMap(*[t.plain for t in tables], *[t.qualified for t in tables]))
        links: dict[str, Answer] = {}
        for alias, target in dict(sb.get("links") or {}).items():
            key, tkey = normalize(str(alias)), normalize(str(target))
            if key is None or tkey is None:
                continue
            found = shared.get(tkey)
            if found is not None:
                links[key] = found
        names: Mapping[str, Answer] = shared
        if links:
            names = ChainMap(links, *(shared.maps if isinstance(shared, ChainMap)
                                      else [shared]))
        ptr: Mapping[str, str] = (tables[0].ptr if len(tables) == 1
                                  else ChainMap(*[t.ptr for t in tables]))
        upstreams = tuple(str(u) for u in (sb.get("dns") or [])
                          if isinstance(u, str) and u)[:MAX_UPSTREAMS]
        return View(sandbox_id=sandbox_id, names=names, ptr=ptr,
                    forward=self._external.get(sandbox_id, False), upstreams=upstreams,
                    networks=tuple(net_ids), ndots_set=bool(sb.get("ndots_set")))


def parse_resolv_conf(text: str) -> list[str]:
    """The nameserver addresses of a resolv.conf (at most 3, in order)."""
    out: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            addr = parts[1].split("%")[0]
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                continue
            out.append(parts[1])
    return out[:MAX_UPSTREAMS]


def parse_upstream(spec: str) -> tuple[str, int, str]:
    """An upstream ("1.2.3.4", "1.2.3.4:5353", "2001:db8::1", "[2001:db8::1]:5353",
    "fe80::1%eth0") -> (address, port, scope id or ""). Raises ValueError."""
    spec = spec.strip()
    port = 53
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad DNS server {spec!r}")
            port = int(rest[1:])
    elif spec.count(":") == 1:
        host, _, p = spec.partition(":")
        port = int(p)
    else:
        host = spec
    host, _, scope = host.partition("%")
    ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(f"bad DNS server port in {spec!r}")
    return host, port, scope


def upstream_list(specs: Sequence[str]) -> list[tuple[str, int, str]]:
    """Parsed upstreams, the unusable ones left out, at most 3."""
    out = []
    for s in specs:
        try:
            out.append(parse_upstream(s))
        except ValueError:
            continue
    return out[:MAX_UPSTREAMS]
