"""The daemon's side of container logging: each container's resolved LogConfig
(its own or the daemon's defaults), one shipper per container while there is
output to ship, and `logs` read from the right place (the json-file or local files
of those drivers, the cache of the others; Docker's error when there is none).

Files per container, in its runtime directory (Docker's names):
`ctr.log` (conmon's spool), `<id>-json.log*` (json-file), `local-logs/container.log*`
(local), `container-cached.log*` (the cache), `logship.json` (the shipper's place).

Thread-safe. Must not start, stop or signal containers: the ContainerManager does,
and calls `follow` once a container runs and `forget` before it is removed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from muslin.containers.logs import LogEntry, with_timestamp
from muslin.errors import InvalidParameter, MuslinError
from muslin.logdrivers import files, options, senders, wire
from muslin.logdrivers.options import LogConfig
from muslin.logdrivers.senders import FileSink, Sink
from muslin.logdrivers.shipper import SPOOL_NAME, Shipper, pending
from muslin.logdrivers.spoolwatch import SpoolWatch

log = logging.getLogger("muslin.logs")

Doc = dict[str, Any]


class NotReadable(MuslinError):
    """Docker's ErrReadLogsNotSupported (HTTP 501)."""

    http_status = 501

    def __init__(self) -> None:
        super().__init__("configured logging driver does not support reading")


def driver_path(directory: str, cid: str, driver: str) -> str:
    if driver == "json-file":
        return os.path.join(directory, f"{cid}-json.log")
    if driver == "local":
        return os.path.join(directory, "local-logs", "container.log")
    return ""


def cache_path(directory: str) -> str:
    return os.path.join(directory, "container-cached.log")


def meta_of(doc: Doc) -> wire.ContainerMeta:
    cfg = doc.get("config") or {}
    argv = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    return wire.ContainerMeta(
        id=doc["id"], name=doc.get("name", ""), image_id=doc.get("image_id", ""),
        image_name=doc.get("image", ""), command=" ".join(str(a) for a in argv),
        created=str(doc.get("created", "")), labels=dict(cfg.get("Labels") or {}),
        env=[str(e) for e in cfg.get("Env") or []])


def unix_ns(key: str, value: str) -> int | None:
    """A `logs` query time, "seconds[.fraction]" as the docker CLI sends it, in
    nanoseconds, exactly (a float would move it by up to ~100 ns); None for 0 or ""."""
    if not value:
        return None
    secs, _, frac = value.partition(".")
    if not secs.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        raise InvalidParameter(f"invalid value for {key}: {value!r}: a Unix time such as "
                               "1700000000.123456789")
    ns = int(secs) * 1_000_000_000 + int((frac + "0" * 9)[:9])
    return ns or None


class LogService:
    """Container logging for one daemon. `defaults()` gives the daemon's current
    (log-driver, log-opts), which SIGHUP may change for new containers."""

    def __init__(self, runtime: Any, defaults: Callable[[], tuple[str, Mapping[str, str]]],
                 hostname: str | None = None) -> None:
        self.runtime = runtime
        self.defaults = defaults
        self.hostname = hostname or socket.gethostname()
        self._shippers: dict[str, Shipper] = {}
        self._mutex = threading.Lock()
        self._spools = SpoolWatch(SPOOL_NAME)  # wakes a shipper when its spool grows

    # -- configuration ------------------------------------------------------------------
    def resolve(self, requested: Mapping[str, Any] | None) -> dict[str, Any]:
        """HostConfig.LogConfig made whole with the daemon's defaults and validated
        (InvalidParameter with Docker's text, before anything is created)."""
        driver, opts = self.defaults()
        merged = options.merge(requested, driver, opts)
        cfg = options.parse(str(merged["Type"]), merged["Config"])  # type: ignore[arg-type]
        if cfg.driver == "journald":
            senders.check_journald()
        return merged

    @staticmethod
    def config_of(doc: Doc) -> LogConfig:
        lc = (doc.get("host_config") or {}).get("LogConfig") or {}
        kind = str(lc.get("Type") or "json-file")
        return options.parse(kind, dict(lc.get("Config") or {}))

    def log_path(self, doc: Doc) -> str:
        """inspect's LogPath: the json-file's path (Docker shows it for json-file only)."""
        cfg = self.config_of(doc)
        if cfg.driver != "json-file":
            return ""
        return driver_path(self.runtime.container_dir(doc["id"]), doc["id"], "json-file")

    # -- shipping -------------------------------------------------------------------------
    def _sinks(self, doc: Doc, cfg: LogConfig, directory: str
               ) -> Callable[[], tuple[FileSink | None, FileSink | None, Sink | None]]:
        def make() -> tuple[FileSink | None, FileSink | None, Sink | None]:
            meta = meta_of(doc)
            driver_file = cache = remote = None
            if cfg.driver in options.READABLE:
                path = driver_path(directory, doc["id"], cfg.driver)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                attrs = wire.extra_attrs(cfg.opts, meta) if cfg.driver == "json-file" else {}
                if cfg.driver == "json-file" and cfg.opts.get("tag"):
                    attrs["tag"] = wire.tag(cfg.opts["tag"], meta)
                driver_file = FileSink(path, cfg.driver, cfg.rotation, attrs)
            else:
                remote = senders.network_sink(cfg, meta, self.hostname)
            if cfg.cache is not None:
                cache = FileSink(cache_path(directory), "local", cfg.cache)
            return driver_file, cache, remote
        return make

    def follow(self, doc: Doc) -> None:
        """Ships the container's output from where it was left (after a start, and
        for every container at daemon start)."""
        cid = doc["id"]
        cfg = self.config_of(doc)
        directory = self.runtime.container_dir(cid)
        with self._mutex:
            old = self._shippers.pop(cid, None)
        if old is not None:
            old.stop()
        shipper = Shipper(cid, directory, cfg,
                          alive=lambda: bool(self.runtime.monitor_alive(cid)),
                          bundle=os.path.join(directory, "bundle"),
                          sinks=self._sinks(doc, cfg, directory))
        with self._mutex:
            self._shippers[cid] = shipper
        self._spools.add(directory, shipper.kick)
        shipper.start()
        log.debug("shipping logs with driver %s", cfg.driver, extra={"container": cid})

    def resume(self, docs: list[Doc]) -> None:
        """At daemon start: a shipper for every container with output left to ship."""
        for doc in docs:
            try:
                directory = self.runtime.container_dir(doc["id"])
                if self.runtime.monitor_alive(doc["id"]) or pending(directory):
                    self.follow(doc)
            except MuslinError as e:
                log.warning("cannot resume shipping logs: %s", e,
                            extra={"container": doc["id"]})

    def forget(self, cid: str) -> None:
        """Stops the container's shipper (before the container's files go)."""
        with self._mutex:
            shipper = self._shippers.pop(cid, None)
        if shipper is not None:
            self._spools.remove(shipper.directory)
            shipper.stop()

    def close(self) -> None:
        with self._mutex:
            shippers = list(self._shippers.values())
            self._shippers.clear()
        for s in shippers:
            s._stopping.set()
            s.kick()
        for s in shippers:
            s.thread.join(10)
        self._spools.close()

    def _shipper(self, cid: str) -> Shipper | None:
        with self._mutex:
            return self._shippers.get(cid)

    # -- reading ----------------------------------------------------------------------------
    def read(self, doc: Doc, *, since: str = "", until: str = "",
             tail: int | None = None, timestamps: bool = False, follow: bool = False,
             stdout: bool = True, stderr: bool = True) -> Iterator[LogEntry]:
        """Docker's `logs` of a container: from its json-file or local files, or from
        the cache; NotReadable when the driver cannot be read and there is no cache.
        since/until are the API's values: Unix times "seconds[.nanoseconds]"."""
        cid = doc["id"]
        cfg = self.config_of(doc)
        if cfg.driver == "none" or not cfg.readable:
            raise NotReadable()
        if not (stdout or stderr):
            raise InvalidParameter("Bad parameters: you must choose at least one stream")
        directory = self.runtime.container_dir(cid)
        if cfg.driver in options.READABLE:
            path, fmt = driver_path(directory, cid, cfg.driver), files.FORMATS[cfg.driver]
        else:
            path, fmt = cache_path(directory), files.FORMATS["local"]
        shipper = self._shipper(cid)
        if shipper is not None:
            shipper.sync()

        def running() -> bool:
            s = self._shipper(cid)
            if self.runtime.monitor_alive(cid):
                if s is not None:
                    s.kick()
                return True
            return s is not None and not s.caught_up

        entries = files.read(path, fmt, since=unix_ns("since", since),
                             until=unix_ns("until", until), tail=tail,
                             stdout=stdout, stderr=stderr, follow=follow, running=running)
        if not timestamps:
            return entries
        return (e._replace(data=with_timestamp(e)) for e in entries)
