"""Images as rootfs tarballs: import, load, tag, list, inspect, remove; the busybox image.

Owns the image store under its root directory:

    root/repositories.json      {"busybox:latest": "sha256:<hex>", ...}
    root/images/<hex>/rootfs/   the image's layers applied in order: the read-only
                                overlayfs lower dir of its containers (never written)
    root/images/<hex>/config.json, meta.json   the image config (Docker's shape), size
    root/holds/<hex>/<container id>            containers using the image
    root/tmp/                   imports in progress (removed on start-up)

Each image is unpacked once (layers flattened into one directory) by a chrooted
helper (`_untar.py`), so no layer can write outside its rootfs. Writers hold a
lock file; files are replaced by rename, so readers never see half a state. Must
not know about containers beyond the holds the runtime records, nor about networks;
there is no registry: `pull` says so.
"""

from __future__ import annotations

import builtins
import bz2
import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import lzma
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from muslin.errors import Conflict, InvalidParameter, MuslinError, NotFound, Unavailable

_UNTAR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_untar.py")
_HEX = re.compile(r"[0-9a-f]{64}")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
                     r"(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_CHUNK = 1024 * 1024

IMPORT_CONFIG_KEYS = ("Cmd", "Entrypoint", "Env", "ExposedPorts", "Labels", "OnBuild",
                      "StopSignal", "User", "Volumes", "WorkingDir")


def _now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def _go_arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x"}.get(m, m)


def normalize_ref(ref: str) -> str:
    """NAME[:TAG] in Docker's familiar form: tag "latest" by default, Docker Hub's
    `docker.io/` and `library/` prefixes dropped. Digest references are refused."""
    if not ref or ref != ref.strip():
        raise InvalidParameter(f"invalid reference format: {ref!r}")
    if "@" in ref:
        raise InvalidParameter(f"digest references are not supported (no registry): {ref}")
    name, tag = ref, "latest"
    colon, slash = ref.rfind(":"), ref.rfind("/")
    if colon > slash:
        name, tag = ref[:colon], ref[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise InvalidParameter(f"invalid reference format: {ref}")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _DOMAIN.fullmatch(parts[0]):
            raise InvalidParameter(f"invalid reference format: {ref}")
        domain, path = parts[0], parts[1:]
    else:
        domain, path = "", parts
    for p in path:
        if not _COMPONENT.fullmatch(p):
            if p.lower() != p and _COMPONENT.fullmatch(p.lower()):
                raise InvalidParameter(
                    f"invalid reference format: repository name ({name}) must be lowercase")
            raise InvalidParameter(f"invalid reference format: {ref}")
    if domain in ("docker.io", "index.docker.io"):
        domain = ""
        if len(path) == 2 and path[0] == "library":
            path = path[1:]
    full = "/".join(([domain] if domain else []) + path)
    return f"{full}:{tag}"


@dataclass(frozen=True)
class Image:
    """An image of the store (a snapshot: re-read the store for changes)."""

    id: str                      # "sha256:<hex>"
    repo_tags: tuple[str, ...]
    created: str
    size: int
    config: Mapping[str, Any]    # the image config document (Docker's shape)
    rootfs: str                  # the unpacked layers: the overlay lower dir
    last_tag_time: str = ""

    @property
    def hex(self) -> str:
        return self.id.split(":", 1)[1]

    @property
    def short_id(self) -> str:
        return self.hex[:12]

    @property
    def container_config(self) -> Mapping[str, Any]:
        """The `config` section: Env, Cmd, Entrypoint, WorkingDir, User, ..."""
        return self.config.get("config") or {}


class ImageStore:
    """The images of one muslin instance, under root."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._images = os.path.join(self.root, "images")
        self._holds = os.path.join(self.root, "holds")
        self._tmp = os.path.join(self.root, "tmp")
        for d in (self._images, self._holds, self._tmp):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self._mutex = threading.RLock()
        # Set by the runtime: whether a container (by id) is running, for `remove`.
        self.running_check: Callable[[str], bool] | None = None
        for leftover in os.listdir(self._tmp):
            shutil.rmtree(os.path.join(self._tmp, leftover), ignore_errors=True)

    # -- locking and the tag index ---------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex:
            fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                         0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _tags(self) -> dict[str, str]:
        try:
            with open(os.path.join(self.root, "repositories.json")) as f:
                return dict(json.load(f))
        except FileNotFoundError:
            return {}

    def _write_json(self, path: str, doc: Any) -> None:
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
        os.replace(tmp, path)

    def _write_tags(self, tags: Mapping[str, str]) -> None:
        self._write_json(os.path.join(self.root, "repositories.json"), dict(tags))

    # -- queries -----------------------------------------------------------------
    def _ids(self) -> list[str]:
        return sorted(d for d in os.listdir(self._images) if _HEX.fullmatch(d)
                      and not os.path.exists(os.path.join(self._images, d, "deleted")))

    def _image(self, hexid: str, tags: Mapping[str, str] | None = None) -> Image:
        d = os.path.join(self._images, hexid)
        try:
            with open(os.path.join(d, "config.json")) as f:
                config = json.load(f)
            with open(os.path.join(d, "meta.json")) as f:
                meta = json.load(f)
        except FileNotFoundError:
            raise NotFound(f"No such image: sha256:{hexid}") from None
        tags = self._tags() if tags is None else tags
        iid = "sha256:" + hexid
        return Image(id=iid, repo_tags=tuple(sorted(t for t, i in tags.items() if i == iid)),
                     created=str(config.get("created", "")), size=int(meta.get("size", 0)),
                     config=config, rootfs=os.path.join(d, "rootfs"),
                     last_tag_time=str(meta.get("last_tag_time", "")))

    def list(self) -> builtins.list[Image]:
        tags = self._tags()
        return [self._image(h, tags) for h in self._ids()]

    def get(self, ref_or_id: str) -> Image:
        """By full id, then by reference (NAME[:TAG]), then by unique id prefix."""
        tags = self._tags()
        x = ref_or_id
        hexpart = x[len("sha256:"):] if x.startswith("sha256:") else x
        if _HEX.fullmatch(hexpart) and hexpart in self._ids():
            return self._image(hexpart, tags)
        try:
            ref = normalize_ref(x)
        except InvalidParameter:
            ref = None
        if ref is not None and ref in tags:
            return self._image(tags[ref].split(":", 1)[1], tags)
        if re.fullmatch(r"[0-9a-f]{1,64}", hexpart):
            found = [h for h in self._ids() if h.startswith(hexpart)]
            if len(found) == 1:
                return self._image(found[0], tags)
        raise NotFound(f"No such image: {ref if ref and ':' not in x else x}")

    def exists(self, ref_or_id: str) -> bool:
        try:
            self.get(ref_or_id)
            return True
        except NotFound:
            return False

    def inspect(self, ref_or_id: str) -> dict[str, Any]:
        """Docker's ImageInspect (Engine API 1.47) of an image."""
        img = self.get(ref_or_id)
        cfg = dict(img.container_config)
        history = img.config.get("history") or []
        comment = str(history[-1].get("comment", "")) if history else ""
        return {
            "Id": img.id,
            "RepoTags": list(img.repo_tags),
            "RepoDigests": [],
            "Parent": "",
            "Comment": comment,
            "Created": img.created,
            "DockerVersion": str(img.config.get("docker_version", "")),
            "Author": str(img.config.get("author", "")),
            "Config": {
                "Hostname": "", "Domainname": "", "User": cfg.get("User", ""),
                "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
                "ExposedPorts": cfg.get("ExposedPorts"), "Tty": False, "OpenStdin": False,
                "StdinOnce": False, "Env": cfg.get("Env"), "Cmd": cfg.get("Cmd"),
                "Image": "", "Volumes": cfg.get("Volumes"),
                "WorkingDir": cfg.get("WorkingDir", ""), "Entrypoint": cfg.get("Entrypoint"),
                "OnBuild": cfg.get("OnBuild"), "Labels": cfg.get("Labels"),
                **({"StopSignal": cfg["StopSignal"]} if cfg.get("StopSignal") else {}),
            },
            "Architecture": str(img.config.get("architecture", "")),
            **({"Variant": img.config["variant"]} if img.config.get("variant") else {}),
            "Os": str(img.config.get("os", "")),
            "Size": img.size,
            "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": img.rootfs}},
            "RootFS": {"Type": "layers",
                       "Layers": list((img.config.get("rootfs") or {}).get("diff_ids", []))},
            "Metadata": {"LastTagTime": img.last_tag_time or "0001-01-01T00:00:00Z"},
        }

    # -- making images -----------------------------------------------------------
    @staticmethod
    def pull(ref: str) -> Image:
        """There is no registry: always fails, saying what to do instead."""
        raise Unavailable(
            f"cannot pull {ref}: no registry is reachable from this machine; "
            "use `image import FILE NAME[:TAG]` for a rootfs tarball or "
            "`image load -i FILE` for a `docker save` tarball")

    def _spool(self, fileobj: IO[bytes], dest: str) -> str:
        """Copies a (possibly gzip, bzip2 or xz compressed) tar stream to dest,
        uncompressed; returns the sha256 hex of the uncompressed bytes."""
        head = fileobj.read(6)
        rest = io.BufferedReader(_Prefixed(head, fileobj))
        stream: Any
        if head[:2] == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=rest)
        elif head[:3] == b"BZh":
            stream = bz2.BZ2File(rest)
        elif head[:6] == b"\xfd7zXZ\x00":
            stream = lzma.LZMAFile(rest)  # noqa: SIM115 - closed by the with below
        else:
            stream = rest
        h = hashlib.sha256()
        with stream, open(dest, "wb") as out:
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                out.write(chunk)
        return h.hexdigest()

    def _unpack(self, work: str, layers: Sequence[str]) -> int:
        rootfs = os.path.join(work, "rootfs")
        os.makedirs(rootfs, mode=0o755, exist_ok=True)
        r = subprocess.run([sys.executable, "-I", _UNTAR, rootfs, *layers],
                           capture_output=True, text=True, timeout=600, check=False)
        if r.returncode != 0:
            err = r.stderr.strip().splitlines()
            raise InvalidParameter("cannot unpack the layer: " + (err[-1] if err else
                                                                   f"exit {r.returncode}"))
        return int(json.loads(r.stdout)["size"])

    def _commit(self, work: str, hexid: str, config: Mapping[str, Any],
                layers: Sequence[str]) -> None:
        """Unpacks layers into images/<hexid> unless the image exists already."""
        final = os.path.join(self._images, hexid)
        if os.path.isdir(final):
            marker = os.path.join(final, "deleted")
            if os.path.exists(marker):  # removed but still held: it is back
                os.unlink(marker)
            return
        size = self._unpack(work, layers)
        self._write_json(os.path.join(work, "config.json"), config)
        self._write_json(os.path.join(work, "meta.json"), {"size": size})
        for layer in layers:
            os.unlink(layer)
        try:
            os.rename(work, final)
        except OSError:
            if not os.path.isdir(final):
                raise

    def _set_tags(self, hexid: str, refs: Sequence[str]) -> None:
        if not refs:
            return
        with self._locked():
            tags = self._tags()
            for ref in refs:
                tags[ref] = "sha256:" + hexid
            self._write_tags(tags)
            meta_path = os.path.join(self._images, hexid, "meta.json")
            with open(meta_path) as f:
                meta = json.load(f)
            meta["last_tag_time"] = _now()
            self._write_json(meta_path, meta)

    def import_tar(self, fileobj: IO[bytes], ref: str | None = None, *,
                   config: Mapping[str, Any] | None = None, message: str = "") -> Image:
        """`docker import`: one layer from a rootfs tarball (plain, gzip, bzip2 or xz).
        The image id is the sha256 of the (uncompressed) tarball, so importing the same
        tarball again gives the same image; with a config (Env, Cmd, Entrypoint,
        WorkingDir, ... as `--change` sets them) the id covers the config too."""
        refs = [normalize_ref(ref)] if ref else []
        cfg = dict(config or {})
        for k in cfg:
            if k not in IMPORT_CONFIG_KEYS:
                raise InvalidParameter(f"{k} is not a valid change command")
        work = self._workdir()
        try:
            layer = os.path.join(work, "layer.tar")
            digest = self._spool(fileobj, layer)
            hexid = digest if not cfg else hashlib.sha256(
                (digest + json.dumps(cfg, sort_keys=True)).encode()).hexdigest()
            created = _now()
            doc = {
                "architecture": _go_arch(), "os": "linux", "created": created,
                "config": cfg,
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + digest]},
                "history": [{"created": created, "comment": message or "Imported from -"}],
            }
            self._commit(work, hexid, doc, [layer])
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self._set_tags(hexid, refs)
        return self._image(hexid)

    def load(self, fileobj: IO[bytes]) -> builtins.list[Image]:
        """`docker load` of a `docker save` tarball: manifest.json, the config and the
        layer tars (plain or compressed, legacy or OCI layout). The image id is the
        sha256 of its config, as Docker's; layers apply in order, whiteouts honoured."""
        work = self._workdir()
        out: builtins.list[Image] = []
        try:
            archive = os.path.join(work, "archive.tar")
            self._spool(fileobj, archive)
            try:
                tar = tarfile.open(archive, "r:")  # noqa: SIM115 - closed just below
            except tarfile.TarError as e:
                raise InvalidParameter(f"invalid tar archive: {e}") from None
            with tar:
                try:
                    manifest = json.loads(self._member(tar, "manifest.json"))
                except (KeyError, ValueError):
                    raise InvalidParameter("invalid archive: no manifest.json (is it a "
                                           "`docker save` tarball?)") from None
                for entry in manifest:
                    raw = self._member(tar, entry["Config"])
                    hexid = hashlib.sha256(raw).hexdigest()
                    config = json.loads(raw)
                    refs = [normalize_ref(t) for t in entry.get("RepoTags") or []]
                    sub = os.path.join(work, hexid)
                    os.makedirs(sub, exist_ok=True)
                    if not os.path.isdir(os.path.join(self._images, hexid)):
                        layers = []
                        for i, name in enumerate(entry["Layers"]):
                            path = os.path.join(sub, f"layer{i}.tar")
                            src = tar.extractfile(self._info(tar, name))
                            if src is None:
                                raise InvalidParameter(f"invalid archive: {name} is no file")
                            with src:
                                self._spool(src, path)
                            layers.append(path)
                        self._commit(sub, hexid, config, layers)
                    else:
                        self._commit(sub, hexid, config, [])
                    self._set_tags(hexid, refs)
                    out.append(self._image(hexid))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return out

    @staticmethod
    def _info(tar: tarfile.TarFile, name: str) -> tarfile.TarInfo:
        name = name.lstrip("./") if name.startswith("./") else name
        for candidate in (name, "./" + name):
            try:
                info = tar.getmember(candidate)
            except KeyError:
                continue
            # legacy layouts link layer.tar files to each other
            while info.issym() or info.islnk():
                target = os.path.normpath(os.path.join(os.path.dirname(info.name),
                                                       info.linkname)
                                          if info.issym() else info.linkname)
                info = tar.getmember(target)
            return info
        raise KeyError(name)

    def _member(self, tar: tarfile.TarFile, name: str) -> bytes:
        f = tar.extractfile(self._info(tar, name))
        if f is None:
            raise KeyError(name)
        with f:
            return f.read()

    def _workdir(self) -> str:
        d = os.path.join(self._tmp, secrets.token_hex(8))
        os.makedirs(d, mode=0o700)
        return d

    def tag(self, src: str, ref: str) -> Image:
        img = self.get(src)
        self._set_tags(img.hex, [normalize_ref(ref)])
        return self._image(img.hex)

    # -- holds and removal -------------------------------------------------------
    def hold(self, image_id: str, container_id: str) -> str:
        """Records that a container uses the image (its rootfs is a lower dir) and
        returns that rootfs. NotFound when the image went meanwhile."""
        hexid = image_id.split(":", 1)[-1]
        with self._locked():
            d = os.path.join(self._images, hexid)
            if not os.path.isdir(d) or os.path.exists(os.path.join(d, "deleted")):
                raise NotFound(f"No such image: sha256:{hexid}")
            os.makedirs(os.path.join(self._holds, hexid), exist_ok=True)
            with open(os.path.join(self._holds, hexid, container_id), "w"):
                pass
            return os.path.join(d, "rootfs")

    def held_rootfs(self, image_id: str) -> str:
        """The rootfs of an image a container holds, even one removed meanwhile (its
        data stays until the last hold goes)."""
        d = os.path.join(self._images, image_id.split(":", 1)[-1], "rootfs")
        if not os.path.isdir(d):
            raise NotFound(f"No such image: {image_id}")
        return d

    def release_all(self, container_id: str) -> None:
        """Forgets every hold of a container (cleaning up after a crashed create)."""
        for hexid in os.listdir(self._holds):
            if os.path.exists(os.path.join(self._holds, hexid, container_id)):
                self.release(hexid, container_id)

    def release(self, image_id: str, container_id: str) -> None:
        """Forgets a hold; an image removed while held goes with its last hold."""
        hexid = image_id.split(":", 1)[-1]
        with self._locked():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self._holds, hexid, container_id))
            if self.holders(image_id):
                return
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(self._holds, hexid))
            if os.path.exists(os.path.join(self._images, hexid, "deleted")):
                self._delete_data(hexid)

    def holders(self, image_id: str) -> builtins.list[str]:
        hexid = image_id.split(":", 1)[-1]
        try:
            return sorted(os.listdir(os.path.join(self._holds, hexid)))
        except FileNotFoundError:
            return []

    def _delete_data(self, hexid: str) -> None:
        d = os.path.join(self._images, hexid)
        gone = os.path.join(self._tmp, f"del-{hexid[:12]}-{secrets.token_hex(4)}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(d, gone)  # out of sight first, then the slow part
            shutil.rmtree(gone, ignore_errors=True)

    def remove(self, ref_or_id: str, force: bool = False) -> builtins.list[dict[str, str]]:
        """`docker rmi`: untags a reference; deletes the image once untagged and unused.
        Docker's conflicts: an image used by a container needs force (and by a running
        one cannot be deleted at all); an id with several tags needs force. Returns
        Docker's ImageDeleteResponseItems."""
        img = self.get(ref_or_id)
        try:
            ref: str | None = normalize_ref(ref_or_id)
        except InvalidParameter:
            ref = None
        out: builtins.list[dict[str, str]] = []
        with self._locked():
            tags = self._tags()
            mine = sorted(t for t, i in tags.items() if i == img.id)
            holders = self.holders(img.id)
            running = [c for c in holders if self.running_check and self.running_check(c)]
            if ref is not None and ref in mine:
                if len(mine) == 1 and holders and not force:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{ref}" (must '
                        f"force) - container {holders[0][:12]} is using its referenced "
                        f"image {img.short_id}")
                del tags[ref]
                self._write_tags(tags)
                out.append({"Untagged": ref})
                if len(mine) > 1 or running:
                    return out  # other tags, or a dangling image while it runs
            else:
                if running:
                    raise Conflict(
                        f"conflict: unable to delete {img.short_id} (cannot be forced) - "
                        f"image is being used by running container {running[0][:12]}")
                if len(mine) > 1 and not force:
                    raise Conflict(f"conflict: unable to delete {img.short_id} (must be "
                                   "forced) - image is referenced in multiple repositories")
                if holders and not force:
                    raise Conflict(
                        f"conflict: unable to delete {img.short_id} (must be forced) - "
                        f"image is being used by stopped container {holders[0][:12]}")
                for t in mine:
                    del tags[t]
                    out.append({"Untagged": t})
                self._write_tags(tags)
            if holders:
                self._mark_deleted(img.hex)  # its containers keep it until they go
            else:
                self._delete_data(img.hex)
            out.append({"Deleted": img.id})
            return out

    def _mark_deleted(self, hexid: str) -> None:
        with open(os.path.join(self._images, hexid, "deleted"), "w"):
            pass


class _Prefixed(io.RawIOBase):
    """A stream with some bytes already read from it put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        n = len(data)
        b[:n] = data
        return n


# -- busybox ---------------------------------------------------------------------

BUSYBOX_PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
BUSYBOX_GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
"""


def busybox_tar(busybox: str = "/bin/busybox") -> bytes:
    """A rootfs tarball made of Debian's static busybox: /bin/busybox and a symlink per
    applet (`busybox --list`), /etc/passwd and /etc/group, empty /etc/hosts,
    /etc/hostname and /etc/resolv.conf, the usual empty directories. Deterministic
    for a given binary (entries sorted, times the binary's)."""
    if not os.path.isfile(busybox):
        raise Unavailable(f"{busybox} not found: install Debian's busybox-static")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True,
                             check=True, timeout=30).stdout.split()
    mtime = int(os.stat(busybox).st_mtime)
    buf = io.BytesIO()

    def info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.size, ti.linkname, ti.mtime = kind, mode, size, link, mtime
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555,
                "root": 0o700, "sys": 0o555, "tmp": 0o1777, "usr": 0o755, "usr/sbin": 0o755,
                "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755}
        for d in sorted(dirs):
            tar.addfile(info(d, tarfile.DIRTYPE, dirs[d]))
        with open(busybox, "rb") as f:
            data = f.read()
        tar.addfile(info("bin/busybox", tarfile.REGTYPE, 0o755, len(data)), io.BytesIO(data))
        for a in sorted(set(applets) - {"busybox"}):
            if "/" in a:
                continue
            tar.addfile(info(f"bin/{a}", tarfile.SYMTYPE, 0o777, link="busybox"))
        files = {"etc/passwd": BUSYBOX_PASSWD, "etc/group": BUSYBOX_GROUP, "etc/hosts": "",
                 "etc/hostname": "", "etc/resolv.conf": ""}
        for name in sorted(files):
            raw = files[name].encode()
            tar.addfile(info(name, tarfile.REGTYPE, 0o644, len(raw)), io.BytesIO(raw))
    return buf.getvalue()


def build_busybox(store: ImageStore, ref: str = "busybox:latest",
                  busybox: str = "/bin/busybox") -> Image:
    """The `busybox` image from Debian's busybox-static (Cmd ["sh"]), imported into
    the store and tagged ref; the same binary always gives the same image."""
    config = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
              "Cmd": ["sh"]}
    try:
        return store.import_tar(io.BytesIO(busybox_tar(busybox)), ref, config=config,
                                message="busybox from Debian's busybox-static")
    except subprocess.SubprocessError as e:
        raise MuslinError(f"cannot build the busybox image: {e}") from e
