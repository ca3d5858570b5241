"""Containers as the daemon runs them: Docker's create/start/stop/rm life cycle tying
the runtime (runc under conmon, `muslin.containers`) to the CNM controller (a sandbox
per container, endpoints joined at start and left when it stops), the container's
/etc files, published ports and the embedded DNS's view of it.

Synchronous and thread-safe (a lock per container); the Engine API calls it on
worker threads. Docker's metadata of a container lives in the controller's store
(kind "container"); the runtime keeps its own files. Must not speak HTTP.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from muslin.cnm import Controller, gwbridge
from muslin.containers import etcfiles
from muslin.containers.runtime import Runtime, new_id
from muslin.containers.spec import ContainerSpec, signal_number
from muslin.daemon import restartpolicy
from muslin.errors import Conflict, Forbidden, InvalidParameter, MuslinError, NotFound
from muslin.kernel.features import features
from muslin.portspec import PortBinding, from_api, publish_all, to_api

log = logging.getLogger("muslin.containers")

Doc = dict[str, Any]
_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_MAC = re.compile(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}")
PREDEFINED_MODES = ("host", "none")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def parse_links(links: Any) -> list[tuple[str, str]]:
    """HostConfig.Links ("name:alias", "name", or Docker's "/name:/container/alias")
    as (target name, alias) pairs; InvalidParameter naming the field when malformed."""
    if links is None:
        return []
    if not isinstance(links, list) or not all(isinstance(x, str) for x in links):
        raise InvalidParameter("invalid value for HostConfig.Links: a list of "
                               "\"name:alias\" strings is required")
    out = []
    for link in links:
        name, _, alias = link.partition(":")
        name = name.lstrip("/")
        alias = alias.rsplit("/", 1)[-1] or name
        if not _NAME.fullmatch(name) and not re.fullmatch(r"[a-zA-Z0-9]", name):
            raise InvalidParameter(f"invalid value for HostConfig.Links: {link!r}: "
                                   "expected \"name:alias\"")
        out.append((name, alias))
    return out


def _ndots_set(options: Sequence[str]) -> bool:
    """True when the options set ndots above 0 (Docker's resolver then answers a
    single-label name it does not know itself, see muslin.dns.message)."""
    for opt in reversed(options):
        key, _, value = opt.partition(":")
        if key == "ndots":
            return value.isdigit() and int(value) > 0
    return False


def _endpoint_mac_from_config(config: Mapping[str, Any], mode: str,
                              net_config: dict[str, Any]) -> None:
    """The container-wide Config.MacAddress (API < 1.44, docker-py's mac_address) goes
    to the endpoint of the container's main network, as dockerd does."""
    mac = config.get("MacAddress")
    if not mac or mode in PREDEFINED_MODES or mode.startswith("container:"):
        return
    ep = dict(net_config.get(mode) or {})
    if ep.get("MacAddress") and ep["MacAddress"] != mac:
        raise InvalidParameter("the container-wide MAC address must match the "
                               "endpoint-specific MAC address for the main network, or be "
                               "left empty")
    ep["MacAddress"] = mac
    net_config[mode] = ep


def _check_endpoint_config(net: str, cfg: Mapping[str, Any]) -> None:
    """dockerd's checks of an EndpointSettings before anything is made."""
    ipam_cfg = cfg.get("IPAMConfig") or {}
    for key, version in (("IPv4Address", 4), ("IPv6Address", 6)):
        value = ipam_cfg.get(key)
        if value:
            try:
                ok = ipaddress.ip_address(str(value)).version == version
            except ValueError:
                ok = False
            if not ok:
                raise InvalidParameter(f"invalid IPv{version} address: {value} (network {net})")
    for value in ipam_cfg.get("LinkLocalIPs") or []:
        try:
            ipaddress.ip_address(str(value))
        except ValueError:
            raise InvalidParameter(f"invalid link-local IP address: {value}") from None
    mac = cfg.get("MacAddress")
    if mac and not _MAC.fullmatch(str(mac)):
        raise InvalidParameter(f"invalid MAC address: {mac} (network {net}): expected "
                               "xx:xx:xx:xx:xx:xx")


def _check_extra_hosts(entries: Sequence[Any]) -> None:
    for entry in entries:
        host, sep, ip = str(entry).partition(":")
        if not sep or not host:
            raise InvalidParameter(f"bad format for add-host: {entry!r}: expected host:ip")
        if ip != "host-gateway":
            try:
                ipaddress.ip_address(ip.strip("[]"))
            except ValueError:
                raise InvalidParameter(f"invalid IP address in add-host: {ip!r}") from None


class ContainerManager:
    def __init__(self, ctl: Controller, runtime: Runtime, *,
                 daemon_dns: Sequence[str] = (), daemon_dns_search: Sequence[str] = (),
                 daemon_dns_opts: Sequence[str] = (), resolv_conf: str = "/etc/resolv.conf",
                 on_event: Callable[[str, str, dict[str, str]], None] | None = None) -> None:
        self.ctl = ctl
        self.runtime = runtime
        self.resolv_conf = resolv_conf
        self.daemon_dns = list(daemon_dns)
        self.daemon_dns_search = list(daemon_dns_search)
        self.daemon_dns_opts = list(daemon_dns_opts)
        self._on_event = on_event or (lambda *_: None)
        self._locks: dict[str, threading.RLock] = {}
        self._mutex = threading.Lock()
        self._pending_attach: dict[str, list[Callable[[Any], None]]] = {}
        self.logs: Any = None  # muslin.logdrivers.service.LogService, set by the daemon
        self._backoff: dict[str, float] = {}
        self._shutting_down = False

    # -- records -----------------------------------------------------------------------
    def _lock(self, cid: str) -> threading.RLock:
        with self._mutex:
            return self._locks.setdefault(cid, threading.RLock())

    def records(self) -> list[Doc]:
        return self.ctl.store.list("container")

    def resolve(self, ref: str) -> Doc:
        """By full id, name (with or without "/"), or unique id prefix, as Docker.
        Looks up only what it needs (a daemon may hold a thousand containers)."""
        store = self.ctl.store
        if ref:
            doc = store.get("container", ref)
            if doc is not None:
                return doc
            by_name = store.find("container", "name", ref.lstrip("/"))
            if by_name:
                return by_name[0]
            found = store.keys("container", ref)
            if len(found) == 1:
                doc = store.get("container", found[0])
                if doc is not None:
                    return doc
        raise NotFound(f"No such container: {ref}")

    def _name_holder(self, name: str) -> Doc | None:
        found = self.ctl.store.find("container", "name", name)
        return found[0] if found else None

    def _save(self, doc: Doc) -> None:
        self.ctl.store.put("container", doc["id"], doc)

    def _update(self, cid: str, **fields: Any) -> None:
        """Sets fields of a container's record in one transaction (others may be
        saving other fields of it meanwhile)."""
        with self.ctl.store.transaction() as t:
            doc = t.get("container", cid)
            if doc is not None:
                doc.update(fields)
                t.put("container", cid, doc)

    # -- create --------------------------------------------------------------------------
    def create(self, name: str | None, config: Mapping[str, Any]) -> tuple[str, list[str]]:
        image_ref = config.get("Image")
        if not isinstance(image_ref, str) or not image_ref:
            raise InvalidParameter("invalid value for Image: an image name is required")
        host_config = dict(config.get("HostConfig") or {})
        net_config = dict((config.get("NetworkingConfig") or {}).get("EndpointsConfig") or {})
        if name:
            if not _NAME.fullmatch(name):
                raise InvalidParameter(f"Invalid container name ({name}), only "
                                       "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            name = name.lstrip("/")
        image = self.runtime.images.get(image_ref)
        cid = new_id()
        name = name or f"muslin_{cid[:8]}"
        mode = str(host_config.get("NetworkMode") or "default")
        if mode == "default":
            mode = "bridge"
        if "default" in net_config:  # the docker CLI names the default network so
            net_config.setdefault("bridge", net_config.pop("default"))
        _endpoint_mac_from_config(config, mode, net_config)
        for net_name, ep_cfg in net_config.items():
            _check_endpoint_config(net_name, ep_cfg or {})
        restartpolicy.validate(host_config.get("RestartPolicy"),
                               auto_remove=bool(host_config.get("AutoRemove")))
        _check_extra_hosts(host_config.get("ExtraHosts") or [])
        bindings = host_config.get("PortBindings") or {}
        sctp = any(str(k).lower().endswith("/sctp") for k in bindings) and features().sctp
        ports = from_api(bindings, sctp_supported=sctp)
        if host_config.get("PublishAllPorts"):  # -P: every exposed port on an ephemeral one
            ports += publish_all(ports, config.get("ExposedPorts"),
                                 image.container_config.get("ExposedPorts"))
        links = parse_links(host_config.get("Links"))
        if self.logs is not None:
            host_config["LogConfig"] = self.logs.resolve(host_config.get("LogConfig"))
        with self._mutex:
            d = self._name_holder(name)
            if d is not None:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use '
                               f'by container "{d["id"]}". You have to remove (or rename) '
                               "that container to be able to reuse that name.")
            targets = []
            for target, alias in links:
                try:
                    targets.append([self.resolve(target)["id"], alias])
                except NotFound:  # 400, as Docker: a 404 makes the CLI pull the image
                    raise InvalidParameter(f"could not get container for {target}: No "
                                           f"such container: {target}") from None
            if mode.startswith("container:"):
                other = self.resolve(mode.split(":", 1)[1])
                netns_path, spec_mode = self._netns_of(other), "container"
                sandbox_id = None
            elif mode == "host":
                netns_path, spec_mode, sandbox_id = self.ctl.host.netns_path, "host", None
            else:
                if mode != "none":
                    self.ctl.network(mode)  # 404 for an unknown network
                for net in net_config:
                    self.ctl.network(net)
                sb = self.ctl.create_sandbox(cid, name=name)
                netns_path, spec_mode, sandbox_id = sb.netns_path, (
                    "none" if mode == "none" else "private"), sb.id
            doc: Doc = {
                "id": cid, "name": name, "created": time.time(), "image": image_ref,
                "image_id": image.id, "config": dict(config), "host_config": host_config,
                "networks": net_config, "network_mode": mode, "sandbox_id": sandbox_id,
                "ports": [b.to_dict() for b in ports], "auto_remove":
                    bool(host_config.get("AutoRemove")), "restart_count": 0,
                "links": targets,
            }
            self._save(doc)
        try:
            spec = ContainerSpec(
                id=cid, image=image.id, name=name,
                cmd=config.get("Cmd") or None, entrypoint=config.get("Entrypoint") or None,
                env=list(config.get("Env") or []), working_dir=config.get("WorkingDir") or "",
                user=config.get("User") or "", hostname=config.get("Hostname") or "",
                domainname=config.get("Domainname") or "", tty=bool(config.get("Tty")),
                open_stdin=bool(config.get("OpenStdin")),
                stdin_once=bool(config.get("StdinOnce")), netns=netns_path,
                network_mode=spec_mode, sysctls=dict(host_config.get("Sysctls") or {}),
                labels=dict(config.get("Labels") or {}),
                stop_signal=str(config.get("StopSignal") or "SIGTERM"),
                stop_timeout=int(config["StopTimeout"]) if config.get("StopTimeout")
                is not None else 10)
            self.runtime.create(spec)
        except BaseException:
            self._forget(doc)
            raise
        self._on_event("create", cid, {"name": name, "image": image_ref})
        return cid, []

    def _netns_of(self, doc: Doc) -> str | None:
        if doc.get("sandbox_id"):
            return str(self.ctl.sandbox(doc["sandbox_id"]).netns_path)
        if doc["network_mode"] == "host":
            return self.ctl.host.netns_path
        if doc["network_mode"].startswith("container:"):
            return self._netns_of(self.resolve(doc["network_mode"].split(":", 1)[1]))
        return None

    def _host_gateway(self) -> str:
        """host-gateway in --add-host: the default bridge's gateway, as dockerd's
        default host-gateway-ip."""
        with contextlib.suppress(NotFound):
            for gw in self.ctl.network("bridge").gateways:
                if gw and ":" not in gw:
                    return gw.split("/")[0]
        raise InvalidParameter("unable to derive the IP value for host-gateway")

    def _forget(self, doc: Doc) -> None:
        if doc.get("sandbox_id"):
            with contextlib.suppress(MuslinError):
                self.ctl.sandbox(doc["sandbox_id"]).delete()
        self.ctl.store.delete("container", doc["id"])

    # -- networks of a running container ----------------------------------------------
    def wanted_networks(self, doc: Doc) -> dict[str, Doc]:
        nets: dict[str, Doc] = {}
        if doc["network_mode"] not in ("none", "host") and not \
                doc["network_mode"].startswith("container:"):
            nets[doc["network_mode"]] = dict(doc["networks"].get(doc["network_mode"]) or {})
        for name, cfg in doc["networks"].items():
            nets.setdefault(name, dict(cfg or {}))
        return nets

    def _connect(self, doc: Doc, net_name: str, cfg: Mapping[str, Any]) -> None:
        net = self.ctl.network(net_name)
        sb = self.ctl.sandbox(doc["sandbox_id"])
        ipam_cfg = cfg.get("IPAMConfig") or {}
        aliases = list(cfg.get("Aliases") or [])
        if net.name != "bridge":
            aliases = [a for a in aliases if a != doc["id"][:12]] + [doc["id"][:12]]
        ep = net.create_endpoint(doc["name"], ipam_cfg.get("IPv4Address") or None, aliases,
                                 ipv6_address=ipam_cfg.get("IPv6Address") or None,
                                 mac_address=cfg.get("MacAddress") or None,
                                 link_local_ips=list(ipam_cfg.get("LinkLocalIPs") or []))
        try:
            ep.join(sb, gw_priority=int(cfg.get("GwPriority") or 0))
        except BaseException:
            ep.delete()
            raise

    def _disconnect_all(self, doc: Doc) -> None:
        if not doc.get("sandbox_id"):
            return
        with contextlib.suppress(NotFound):
            sb = self.ctl.sandbox(doc["sandbox_id"])
            for ep in sb.endpoints():
                with contextlib.suppress(MuslinError):
                    ep.leave(sb)
                    ep.delete()

    def _publish(self, doc: Doc) -> None:
        ports = [PortBinding.from_dict(d) for d in doc.get("ports", [])]
        if not ports or not doc.get("sandbox_id"):
            return
        sb = self.ctl.sandbox(doc["sandbox_id"])
        for ep in sb.endpoints():
            if ep.network.driver == "bridge" and not ep.network.internal:
                try:
                    ep.publish(ports)
                except (Conflict, Forbidden) as e:  # Docker's wording
                    msg = str(e).removeprefix("driver failed programming external "
                                              "connectivity: ")
                    raise type(e)("driver failed programming external connectivity on "
                                  f"endpoint {doc['name']} ({ep.id}): {msg}") from None
                return

    def _write_etc(self, doc: Doc) -> None:
        hc = doc["host_config"]
        cfg = doc["config"]
        hostname = cfg.get("Hostname") or doc["id"][:12]
        addresses: list[str] = []
        user_net = False
        if doc.get("sandbox_id"):
            for ep in self.ctl.sandbox(doc["sandbox_id"]).endpoints():
                addresses += [a for a in (ep.ipv4_address, ep.ipv6_address) if a]
                if ep.network.name != "bridge" and ep.network.driver != "null":
                    user_net = True
        extra: list[tuple[str, str]] = []
        for entry in hc.get("ExtraHosts") or []:
            host, _, ip = str(entry).partition(":")
            extra.append((self._host_gateway() if ip == "host-gateway" else ip.strip("[]"),
                          host))
        extra += self._link_hosts(doc)
        hosts = etcfiles.hosts_for_container(hostname=hostname, addresses=addresses,
                                             extra_hosts=extra)
        dns = list(hc.get("Dns") or self.daemon_dns)
        search = list(hc.get("DnsSearch") or self.daemon_dns_search)
        opts = list(hc.get("DnsOptions") or self.daemon_dns_opts)
        host_resolv = _read(self.resolv_conf)
        kw: dict[str, Any] = {"dns": dns, "dns_search": search, "dns_options": opts,
                              "source_path": self.resolv_conf}
        if doc["network_mode"] == "host":
            resolv = etcfiles.resolv_conf_host(host_resolv, **kw)
        elif user_net:
            resolv, ext = etcfiles.resolv_conf_internal(host_resolv, **kw)
            ndots = _ndots_set(opts or etcfiles.ResolvConf.parse(host_resolv).options)
            self._set_sandbox_dns(doc, [e.address for e in ext] if dns else [], ndots)
        else:
            resolv = etcfiles.resolv_conf_legacy(host_resolv, **kw)
        self.runtime.update_etc(doc["id"], hosts=hosts, resolv_conf=resolv)

    def _link_hosts(self, doc: Doc) -> list[tuple[str, str]]:
        """/etc/hosts lines of the container's --link targets when it is on the default
        bridge (Docker's legacy links: "address alias hostname name"), for targets
        running with an address there."""
        if not doc.get("links") or not any(net.name == "bridge"
                                           for _, net in self.endpoints_of(doc)):
            return []
        out = []
        for target_id, alias in doc["links"]:
            try:
                target = self.resolve(target_id)
            except NotFound:
                continue
            hostname = target["config"].get("Hostname") or target["id"][:12]
            names = f"{alias} {hostname}" + (f" {target['name']}"
                                              if alias != target["name"] else "")
            for ep, net in self.endpoints_of(target):
                if net.name == "bridge" and ep.ipv4_address:
                    out.append((str(ep.ipv4_address), names))
        return out

    def _set_sandbox_dns(self, doc: Doc, servers: list[str], ndots_set: bool) -> None:
        """What the embedded DNS needs of this container: the servers it forwards
        other names to (its --dns), its hostname, whether its resolv.conf sets ndots,
        and its --link aliases (alias -> the target's short id, which names the target
        on the networks they share, whatever its name becomes)."""
        with self.ctl.store.transaction() as t:
            sb = t.get("sandbox", doc["sandbox_id"])
            if sb is not None:
                sb["dns"] = servers
                sb["hostname"] = doc["config"].get("Hostname") or doc["id"][:12]
                sb["ndots_set"] = ndots_set
                sb["links"] = {alias: target_id[:12]
                               for target_id, alias in doc.get("links") or []}
                t.put("sandbox", sb["id"], sb)

    # -- life cycle -------------------------------------------------------------------
    def start(self, ref: str, *, by_policy: bool = False) -> None:
        """Starts the container; a user's start (not by_policy) also resets its restart
        count and its "stopped by a user" mark, as dockerd."""
        doc = self.resolve(ref)
        cid = doc["id"]
        with self._lock(cid):
            if self.runtime.state(cid)["Running"]:
                return
            try:  # a failed start leaves no endpoint and no published port behind
                self._start(doc, by_policy)
            except BaseException:
                self._disconnect_all(doc)
                if doc.get("auto_remove"):  # as dockerd: `run --rm` waits for the removal
                    with contextlib.suppress(MuslinError):
                        self.remove(cid, force=True)
                raise
            if self.logs is not None:
                self.logs.follow(doc)
        self._on_event("start", cid, {"name": doc["name"]})
        threading.Thread(target=self._watch, args=(cid,), daemon=True,
                         name=f"muslin-watch-{cid[:12]}").start()

    def _start(self, doc: Doc, by_policy: bool) -> None:
        cid = doc["id"]
        if doc["network_mode"].startswith("container:"):
            other = doc["network_mode"].split(":", 1)[1]
            if not self.runtime.state(self.resolve(other)["id"])["Running"]:
                raise Conflict(f"cannot join network of a non running container: {other}")
        if not by_policy:
            self._backoff.pop(cid, None)
            self._update(cid, manually_stopped=False, restart_count=0, restarting=False)
        # The network is plumbed while conmon and `runc create` make the container
        # (they need only the sandbox's namespace, which exists since create): its
        # process runs (`runc start`) once both are done and /etc is written.
        plumbing = _Background(self._plumb, doc)
        waiters = self._pending_attach.pop(cid, [])

        def before_start() -> None:
            plumbing.result()
            self._write_etc(doc)

        try:
            attachment = self.runtime.start(cid, attach=bool(waiters),
                                            before_start=before_start)
        finally:
            plumbing.join()  # never undo a network while it is still being plumbed
        if by_policy:  # running again (its watcher starts after this)
            self._update(cid, restarting=False)
        for w in waiters:
            w(attachment)

    def _plumb(self, doc: Doc) -> None:
        """Joins the container's networks and publishes its ports."""
        if doc.get("sandbox_id"):
            self._disconnect_all(doc)
            for net, cfg in self.wanted_networks(doc).items():
                self._connect(doc, net, cfg)
            self._publish(doc)

    def _watch(self, cid: str, ran_long: bool = False) -> None:
        """Waits for the container's exit, then releases its networks (as Docker),
        removes it when it was run with --rm, or starts it again as its restart policy
        says. ran_long: it was started long ago (an adopted container)."""
        began = time.monotonic() - (restartpolicy.RESET_AFTER if ran_long else 0)
        try:
            code = self.runtime.wait(cid, "not-running")
            doc = self.resolve(cid)
            with self._lock(cid):
                if self.runtime.state(cid)["Running"]:
                    return  # restarted meanwhile
                self._disconnect_all(doc)
        except MuslinError:  # removed meanwhile
            return
        self._on_event("die", cid, {"name": doc["name"], "exitCode": str(code)})
        if doc.get("auto_remove"):
            with contextlib.suppress(MuslinError):
                self.remove(cid, force=True)
            return
        self._restart_by_policy(cid, code, time.monotonic() - began)

    def _wants_restart(self, doc: Doc, code: int) -> bool:
        return not self._shutting_down and restartpolicy.should_restart(
            doc["host_config"].get("RestartPolicy"), code,
            manually_stopped=bool(doc.get("manually_stopped")),
            restart_count=int(doc.get("restart_count", 0)))

    def _restart_by_policy(self, cid: str, code: int, ran_for: float) -> None:
        try:
            doc = self.resolve(cid)
        except NotFound:
            return
        if not self._wants_restart(doc, code):
            self._backoff.pop(cid, None)
            return
        delay = restartpolicy.next_delay(self._backoff.get(cid), ran_for)
        self._backoff[cid] = delay
        # as dockerd: the count goes up when the back-off begins, and the container
        # stays "restarting" until it runs again (never "exited" in between)
        self._update(cid, restarting=True, restart_count=int(doc.get("restart_count", 0)) + 1)
        time.sleep(delay)  # dockerd's back-off between restarts (a stop cancels it)
        try:
            doc = self.resolve(cid)
            if self._shutting_down or doc.get("manually_stopped") \
                    or self.runtime.state(cid)["Running"]:
                self._update(cid, restarting=False)
                return
            self.start(cid, by_policy=True)  # dockerd: die, then start (no "restart")
        except MuslinError as e:
            log.warning("restart policy: could not start %s again: %s", doc["name"], e)
            with contextlib.suppress(MuslinError):
                self._update(cid, restarting=False)

    def wait_attach(self, ref: str, deliver: Callable[[Any], None]) -> None:
        """Registers a hijacked attach that gets the container's output from its start."""
        doc = self.resolve(ref)
        cid = doc["id"]
        with self._lock(cid):
            if self.runtime.state(cid)["Running"]:
                deliver(self.runtime.attach(cid))
            else:
                self._pending_attach.setdefault(cid, []).append(deliver)

    def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> bool:
        doc = self.resolve(ref)
        if not self._shutting_down:  # a user's stop: no restart policy applies now
            self._update(doc["id"], manually_stopped=True, restarting=False)
        with self._lock(doc["id"]):
            stopped = self.runtime.stop(doc["id"], timeout, signal)
            self._disconnect_all(doc)
        if stopped:
            self._on_event("stop", doc["id"], {"name": doc["name"]})
        return bool(stopped)

    def kill(self, ref: str, signal: str = "SIGKILL") -> None:
        doc = self.resolve(ref)
        stop_signal = self.runtime.get(doc["id"]).spec.stop_signal
        if signal_number(signal) in (signal_number("SIGKILL"), signal_number(stop_signal)):
            self._update(doc["id"], manually_stopped=True)  # as dockerd: no restart then
        self.runtime.kill(doc["id"], signal)
        self._on_event("kill", doc["id"], {"name": doc["name"], "signal": signal})

    def restart(self, ref: str, timeout: int | None = None) -> None:
        self.stop(ref, timeout)
        self.start(ref)
        doc = self.resolve(ref)
        self._on_event("restart", doc["id"], {"name": doc["name"]})

    def restore(self, live_restore: bool) -> None:
        """At daemon start: containers still running are watched again (live-restore)
        or stopped (without it, as dockerd); containers that exited while the daemon
        was away give back their networks; then the restart policies apply."""
        def restore_one(doc: Doc) -> None:
            cid = doc["id"]
            try:
                state = self.runtime.state(cid)
                if state["Running"] and live_restore:
                    threading.Thread(target=self._watch, args=(cid, True), daemon=True,
                                     name=f"muslin-watch-{cid[:12]}").start()
                    return
                if state["Running"]:
                    self.runtime.stop(cid)
                    state = self.runtime.state(cid)
                with self._lock(cid):
                    self._disconnect_all(doc)
                self._update(cid, restarting=False)
                if state["Status"] != "created" and self._wants_restart(doc,
                                                                        state["ExitCode"]):
                    self.start(cid)
            except MuslinError as e:
                log.warning("restore: container %s: %s", doc["name"], e)

        docs = self.records()
        if docs:
            with ThreadPoolExecutor(min(32, len(docs)),
                                    thread_name_prefix="muslin-restore") as pool:
                list(pool.map(restore_one, docs))

    def remove(self, ref: str, *, force: bool = False) -> None:
        doc = self.resolve(ref)
        cid = doc["id"]
        with self._lock(cid):
            state = self.runtime.state(cid)
            if state["Running"] and not force:
                raise Conflict(f"cannot remove container \"/{doc['name']}\": container is "
                               "running: stop the container before removing or force remove")
            self._disconnect_all(doc)
            if self.logs is not None:
                self.logs.forget(cid)
            self.runtime.delete(cid, force=True)
            self._forget(doc)
        self._on_event("destroy", cid, {"name": doc["name"]})

    def rename(self, ref: str, new_name: str) -> None:
        if not _NAME.fullmatch(new_name):
            raise InvalidParameter(f"Invalid container name ({new_name}), only "
                                   "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        doc = self.resolve(ref)
        cid, old_name, new_name = doc["id"], doc["name"], new_name.lstrip("/")
        lock = self._lock(cid)  # (takes the mutex itself)
        with self._mutex, lock:
            d = self._name_holder(new_name)
            if d is not None:
                raise Conflict(f'Conflict. The container name "/{new_name}" is already in '
                               f'use by container "{d["id"]}". You have to remove (or '
                               "rename) that container to be able to reuse that name.")
            if doc.get("sandbox_id"):
                # the endpoints take the new name too: the embedded DNS answers it
                # (and no longer the old one) from the next query on
                self.ctl.sandbox(doc["sandbox_id"]).rename(new_name)
            self._update(cid, name=new_name)
        self._on_event("rename", cid, {"name": new_name, "oldName": "/" + old_name})

    # -- network connect/disconnect of a container ------------------------------------
    def connect(self, net_ref: str, ref: str, cfg: Mapping[str, Any]) -> None:
        doc = self.resolve(ref)
        net = self.ctl.network(net_ref)
        _check_endpoint_config(net.name, cfg)
        with self._lock(doc["id"]):
            if not doc.get("sandbox_id"):
                raise InvalidParameter(f"container {doc['name']} has network mode "
                                       f"{doc['network_mode']}: it cannot be connected")
            if any(ep.network.id == net.id
                   for ep in self.ctl.sandbox(doc["sandbox_id"]).endpoints()):
                raise Conflict(f"endpoint with name {doc['name']} already exists in "
                                   f"network {net.name}")
            doc["networks"][net.name] = dict(cfg)
            self._save(doc)
            if self.runtime.state(doc["id"])["Running"]:
                self._connect(doc, net.name, cfg)
                self._write_etc(doc)

    def disconnect(self, net_ref: str, ref: str) -> None:
        doc = self.resolve(ref)
        net = self.ctl.network(net_ref)
        with self._lock(doc["id"]):
            found = False
            if doc.get("sandbox_id"):
                sb = self.ctl.sandbox(doc["sandbox_id"])
                for ep in sb.endpoints():
                    if ep.network.id == net.id:
                        ep.leave(sb)
                        ep.delete()
                        found = True
            known = doc["networks"].pop(net.name, None) is not None
            if doc["network_mode"] == net.name:
                doc["network_mode"] = "none"
                known = True
            if not (found or known):
                raise NotFound(f"container {doc['id']} is not connected to network "
                               f"{net.name}")
            self._save(doc)
            if found and self.runtime.state(doc["id"])["Running"]:
                self._write_etc(doc)

    def stop_all(self) -> list[str]:
        """Docker's default when the daemon stops: every running container stops, all at
        once (each may take its whole stop timeout), and no restart policy applies."""
        self._shutting_down = True

        def stop_one(doc: Doc) -> str | None:
            try:
                if self.runtime.state(doc["id"])["Running"] and self.stop(doc["id"]):
                    return str(doc["id"])
            except MuslinError as e:
                log.warning("could not stop %s: %s", doc["name"], e)
            return None

        docs = self.records()
        if not docs:
            return []
        with ThreadPoolExecutor(min(32, len(docs)), thread_name_prefix="muslin-stop") as pool:
            return [cid for cid in pool.map(stop_one, docs) if cid]

    # -- views ------------------------------------------------------------------------
    def endpoints_of(self, doc: Doc) -> list[tuple[Any, Any]]:
        if not doc.get("sandbox_id"):
            return []
        with contextlib.suppress(NotFound):
            # as Docker, the default gateway service's endpoint is not the container's
            return [(ep, net) for ep in self.ctl.sandbox(doc["sandbox_id"]).endpoints()
                    if (net := ep.network).name != gwbridge.NETWORK]
        return []

    def ports_of(self, doc: Doc) -> list[PortBinding]:
        out: list[PortBinding] = []
        for ep, _ in self.endpoints_of(doc):
            out += ep.ports
        return out

    def published_view(self, doc: Doc) -> dict[str, Any]:
        """NetworkSettings.Ports: held bindings, exposed ports as null; {} when the
        container has no network (stopped), as Docker shows it."""
        if not self.endpoints_of(doc):
            return {}
        view: dict[str, Any] = to_api(self.ports_of(doc))
        for port in (doc["config"].get("ExposedPorts") or {}):
            view.setdefault(port, None)
        return view


class _Background:
    """A call run on its own thread; result() re-raises what it raised."""

    def __init__(self, fn: Callable[..., None], *args: Any) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, *args), daemon=True,
                                        name="muslin-plumb")
        self._thread.start()

    def _run(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as e:  # handed to result()
            self._error = e

    def join(self) -> None:
        self._thread.join()

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error
