"""muslind's entry point: configuration, pid file, controller, the Engine API on a unix
socket, and signals (SIGTERM/SIGINT stop; SIGHUP reloads what can be reloaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from muslin.daemon import config as configmod
from muslin.errors import MuslinError

log = logging.getLogger("muslin.daemon")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "error": logging.ERROR, "fatal": logging.CRITICAL}


ID_FIELDS = ("network", "endpoint", "container", "sandbox")


class _Formatter(logging.Formatter):
    """Docker's logrus text format: time="..." level=info msg="..." component=...,
    then the ids a line is about (network=, endpoint=, container=, sandbox=: pass them
    as `extra={...}`), so one container's life can be followed with grep."""

    def format(self, record: logging.LogRecord) -> str:
        level = {"WARNING": "warning", "CRITICAL": "fatal"}.get(record.levelname,
                                                                 record.levelname.lower())
        msg = record.getMessage().replace("\\", "\\\\").replace('"', '\\"')
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}"
        line = f'time="{stamp}" level={level} msg="{msg}" component={record.name}'
        for name in ID_FIELDS:
            value = getattr(record, name, None)
            if value:
                line += f" {name}={value}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_level(level)


def set_level(level: str) -> None:
    """muslin's own lines at `level`; libraries' (pyroute2, asyncio) at warning or
    above, so debug shows what muslind does, not every netlink message."""
    logging.getLogger("muslin").setLevel(_LEVELS[level])
    logging.getLogger().setLevel(max(_LEVELS[level], logging.WARNING))


def take_pidfile(path: str) -> int:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise MuslinError(f"pid file found, ensure muslind is not running or delete {path} "
                          f"(held by pid {other or '?'})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _listen(path: str) -> None:
    """Removes a stale socket file; refuses when a live daemon answers on it."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        s.close()
    raise MuslinError(f"another daemon is already listening on {path}")


def _remove_empty_cgroups(parent: str) -> None:
    """The instance's cgroup parent in every hierarchy, once no container is left in it
    (with live-restore the running ones keep it, and rmdir fails harmlessly)."""
    root = "/sys/fs/cgroup"
    with contextlib.suppress(OSError):
        for hierarchy in os.listdir(root):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(root, hierarchy, parent.lstrip("/")))


async def _containers_and_dns(cfg: configmod.DaemonConfig, ctl: Any,
                              loop: asyncio.AbstractEventLoop) -> tuple[Any, Any]:
    """The container runtime (runc under conmon) and the embedded DNS, when this machine
    has what they need; without them muslind still serves networks."""
    containers = dns = None
    try:
        from muslin.containers.images import ImageStore, build_busybox
        from muslin.containers.runtime import Runtime
        from muslin.daemon.containers import ContainerManager

        images = ImageStore(os.path.join(cfg.data_root, "images"))
        runtime = await loop.run_in_executor(None, lambda: Runtime(
            os.path.join(cfg.data_root, "containers"), os.path.join(cfg.exec_root, "runtime"),
            images=images, host_netns=ctl.host.netns_path,
            cgroup_parent=f"/{ctl.names.instance}"))
        if not images.exists("busybox") and os.path.exists("/bin/busybox"):
            await loop.run_in_executor(None, build_busybox, images)
        containers = ContainerManager(ctl, runtime, daemon_dns=cfg.dns,
                                      daemon_dns_search=cfg.dns_search,
                                      daemon_dns_opts=cfg.dns_opts,
                                      resolv_conf=cfg.resolv_conf)
        await loop.run_in_executor(None, runtime.adopt)
        from muslin.logdrivers.service import LogService

        containers.logs = LogService(runtime, lambda: (cfg.log_driver, cfg.log_opts))
        await loop.run_in_executor(None, containers.logs.resume, containers.records())
    except MuslinError as e:
        log.warning("containers are unavailable: %s", e)
    try:
        from muslin.dns.server import DnsService

        dns = DnsService(ctl, loop, resolv_conf=cfg.resolv_conf)
        await dns.astart()
    except MuslinError as e:
        log.warning("the embedded DNS is unavailable: %s", e)
        dns = None
    return containers, dns


async def serve(cfg: configmod.DaemonConfig) -> None:
    from muslin.api.engine import Engine
    from muslin.api.http import HttpServer
    from muslin.cnm import Controller
    from muslin.daemon.firewall_check import forward_drop_policies, warning
    from muslin.plugins import PluginDirs, Plugins

    loop = asyncio.get_running_loop()
    ctl = await loop.run_in_executor(None, lambda: Controller(
        state_dir=cfg.data_root, run_dir=cfg.exec_root, prefix=cfg.prefix,
        bip=cfg.bip or None, default_address_pools=cfg.default_address_pools or None,
        ip_forward=cfg.ip_forward, iptables=cfg.iptables, mtu=cfg.mtu, icc=cfg.icc,
        ip_masq=cfg.ip_masq, plugins=Plugins(
            PluginDirs(cfg.plugin_sockets_dir, tuple(cfg.plugin_spec_dirs)),
            retry_timeout=cfg.plugin_timeout, call_timeout=cfg.plugin_timeout)))
    # an outside `nft flush ruleset` is noticed (netlink) and the table rebuilt
    await loop.run_in_executor(None, ctl.watch_firewall)
    warnings: list[str] = []
    blockers = await loop.run_in_executor(None, lambda: ctl.host.call(
        lambda _l, nft: forward_drop_policies(nft, ctl.names.table)))
    if blockers:
        warnings.append(warning(blockers))
        log.warning(warnings[-1])
    info: dict[str, Any] = {"id": ctl.names.instance, "data_root": cfg.data_root,
                            "debug": cfg.log_level == "debug", "log_driver": cfg.log_driver,
                            "live_restore": cfg.live_restore, "warnings": warnings}
    containers, dns = await _containers_and_dns(cfg, ctl, loop)
    engine = Engine(ctl, loop, daemon_info=info, containers=containers)
    if containers is not None:  # after the DNS: containers started again get their names
        await loop.run_in_executor(None, containers.restore, cfg.live_restore)
    server = HttpServer(engine.handle, server_header="muslin")
    path = cfg.socket_path
    _listen(path)
    await server.start_unix(path)
    os.chmod(path, 0o660)
    os.chown(path, 0, 0)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def reload() -> None:
        try:
            values = configmod.reload_values(cfg)
        except MuslinError as e:
            log.error("reload refused: %s", e)
            return
        for attr, value in values.items():
            setattr(cfg, attr, value)
        set_level(cfg.log_level)
        info.update(debug=cfg.log_level == "debug", log_driver=cfg.log_driver,
                    live_restore=cfg.live_restore)
        log.info("configuration reloaded: %s", ", ".join(sorted(values)) or "nothing")

    loop.add_signal_handler(signal.SIGHUP, reload)
    log.info("API listening on %s (muslin instance %s)", path, ctl.names.instance)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await server.close()
        if containers is not None and not cfg.live_restore:
            stopped = await loop.run_in_executor(None, containers.stop_all)
            log.info("stopped %d containers (live-restore is off)", len(stopped))
        if dns is not None:
            await dns.aclose()
        engine.close()
        if containers is not None:
            if containers.logs is not None:
                await loop.run_in_executor(None, containers.logs.close)
            containers.runtime.close()
            _remove_empty_cgroups(containers.runtime.cgroup_parent)
        ctl.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        cfg = configmod.load(argv)
    except MuslinError as e:
        print(f"muslind: {e}", file=sys.stderr)
        return 1
    setup_logging(cfg.log_level)
    try:
        pid_fd = take_pidfile(cfg.pidfile_path)
    except MuslinError as e:
        print(f"muslind: {e}", file=sys.stderr)
        return 1
    try:
        asyncio.run(serve(cfg))
    except MuslinError as e:
        print(f"muslind: {e}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(OSError):
            os.unlink(cfg.pidfile_path)
        os.close(pid_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
