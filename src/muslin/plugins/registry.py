"""Activated plugins of one instance, and calls to them with Docker's rules.

`Plugins.get(name, kind)` finds a plugin (muslin.plugins.discovery) and hands out
one `Plugin` per name. A `Plugin` activates lazily (`/Plugin.Activate`, checking
`Implements`), re-activates when its socket was re-created or a call could not
reach it (a restarted plugin), and retries calls that could not reach it or broke
off, with Docker's doubling back-off, for up to the retry window (30 s in Docker).
`{"Err": ...}` answers and error statuses become PluginError. Must not know
network or IPAM semantics.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from muslin.errors import MuslinError, NotFound
from muslin.plugins import client
from muslin.plugins.discovery import PluginAddress, PluginDirs, find

log = logging.getLogger("muslin.plugins")

NETWORK_DRIVER = "NetworkDriver"
IPAM_DRIVER = "IpamDriver"
Doc = dict[str, Any]


class PluginError(MuslinError):
    """A plugin answered an error, could not be reached, or answered nonsense."""

    http_status = 500

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status  # the plugin's HTTP status, 0 when it never answered


def backoff(retries: int, limit: float) -> float:
    """Docker's back-off: 1 s, doubling per retry, at most the retry window."""
    return float(min(2 ** retries, max(limit, 1.0)))


class Plugin:
    """One plugin, by name; calls are thread-safe."""

    def __init__(self, registry: Plugins, name: str, address: PluginAddress) -> None:
        self.name = name
        self.address = address
        self.implements: tuple[str, ...] = ()
        self._registry = registry
        self._lock = threading.Lock()
        self._active = False
        self._identity: tuple[int, int, int] | None = None
        self.activations = 0
        self._hooks: list[Callable[[Plugin], None]] = []

    def on_activate(self, hook: Callable[[Plugin], None]) -> None:
        """hook(plugin) after every (re-)activation, e.g. to read capabilities again."""
        self._hooks.append(hook)

    # -- activation -----------------------------------------------------------
    def _socket_identity(self) -> tuple[int, int, int] | None:
        """Which socket file is there (a re-created one differs even if its inode
        number is reused)."""
        path = self.address.unix_path
        if path is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_ctime_ns

    def _needs_activation(self) -> bool:
        if not self._active:
            return True
        return (self.address.unix_path is not None
                and self._socket_identity() != self._identity)

    def _activate(self, timeout: float) -> None:
        """One activation attempt; raises client errors for the retry loop."""
        with self._lock:
            if not self._needs_activation():
                return
            found = find(self.name, self._registry.dirs)
            if found is None:
                raise client.ConnectFailed(f"plugin {self.name} is gone from the plugin "
                                           "directories")
            self.address = found
            status, body = client.post(found, "/Plugin.Activate", b"", timeout)
            doc = _decode("Plugin.Activate", status, body)
            implements = doc.get("Implements")
            if not isinstance(implements, list):
                raise PluginError(f'plugin "{self.name}": Plugin.Activate answered no '
                                  "Implements list")
            self.implements = tuple(str(x) for x in implements)
            self._identity = self._socket_identity()
            self._active = True
            self.activations += 1
        log.info("plugin %s activated (%s) at %s", self.name, ", ".join(self.implements),
                 found.url)
        for hook in self._hooks:
            hook(self)

    def activate(self, kind: str) -> None:
        """Activates (with retries) and checks the plugin implements kind."""
        self._with_retries("Plugin.Activate", lambda t: None)
        if kind not in self.implements:
            raise PluginError(f'plugin "{self.name}" does not implement {kind} (it '
                              f'implements {", ".join(self.implements) or "nothing"})')

    # -- calls ------------------------------------------------------------------
    def call(self, method: str, args: Doc | None, *, tolerate_404: bool = False
             ) -> Doc | None:
        """POST /method with args as JSON; the answer as a dict. None only when
        tolerate_404 and the plugin does not know the method."""
        body = b"" if args is None else json.dumps(args).encode()
        status, data = self._with_retries(
            method, lambda t: client.post(self.address, "/" + method, body, t))
        if status == 404 and tolerate_404:
            return None
        return _decode(method, status, data)

    def _with_retries(self, method: str, send: Callable[[float], Any]) -> Any:
        reg = self._registry
        start = time.monotonic()
        retries = 0
        while True:
            try:
                if self._needs_activation():
                    self._activate(reg.call_timeout)
                return send(reg.call_timeout)
            except (client.ConnectFailed, client.CallFailed) as e:
                with self._lock:
                    self._active = False
                pause = backoff(retries, reg.retry_timeout)
                if time.monotonic() - start + pause >= reg.retry_timeout:
                    raise PluginError(f'plugin "{self.name}": {method}: {e}') from None
                retries += 1
                log.warning("unable to reach plugin %s (%s), retrying in %gs", self.name, e,
                            pause)
                time.sleep(pause)


def _decode(method: str, status: int, body: bytes) -> Doc:
    try:
        doc = json.loads(body) if body.strip() else {}
    except ValueError:
        doc = None
    err = doc.get("Err") if isinstance(doc, dict) else None
    if status != 200:
        text = str(err) if err else body.decode(errors="replace").strip()
        raise PluginError(f"{method}: {text or f'status {status}'}", status=status)
    if not isinstance(doc, dict):
        raise PluginError(f"{method}: the plugin answered no JSON object: "
                          f"{body[:200].decode(errors='replace')!r}", status=status)
    if err:
        raise PluginError(f"remote: {err}", status=status)
    return doc


class Plugins:
    """The plugins of one instance: directories, retry window and call timeout."""

    def __init__(self, dirs: PluginDirs | None = None, *, retry_timeout: float = 30.0,
                 call_timeout: float = 30.0) -> None:
        self.dirs = dirs or PluginDirs()
        self.retry_timeout = retry_timeout
        self.call_timeout = call_timeout
        self._plugins: dict[str, Plugin] = {}
        self._lock = threading.Lock()

    def get(self, name: str, kind: str, *, activate: bool = True) -> Plugin:
        """The plugin `name`; NotFound (Docker's text) when no directory names it.
        With activate, it is activated and must implement kind."""
        with self._lock:
            plugin = self._plugins.get(name)
            if plugin is None:
                address = find(name, self.dirs)
                if address is None:
                    raise NotFound(f'plugin "{name}" not found')
                plugin = self._plugins[name] = Plugin(self, name, address)
        if activate:
            plugin.activate(kind)
        return plugin

    def known(self) -> list[Plugin]:
        with self._lock:
            return list(self._plugins.values())
