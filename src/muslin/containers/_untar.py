"""Applies image layers (tar files) to a root filesystem, inside a chroot.

Run as a program by `muslin.containers.images` (`python -I _untar.py ROOTFS LAYER...`),
as root. It opens the layers, chroots into ROOTFS and applies them in order, so that
no member, link or symlink of a layer can reach outside ROOTFS whatever it names.
Per layer, whiteouts first (`.wh.NAME` removes NAME, `.wh..wh..opq` empties its
directory of what lower layers put there), then the members, each replacing what
was in its way; PAX `SCHILY.xattr.*` records become extended attributes. Prints
`{"size": N}` (the bytes of the result) on success.

Standard library only; must not import muslin (it runs in a fresh interpreter), and
must not do anything but unpack.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import sys
import tarfile
from collections.abc import Iterator

WH = ".wh."
OPAQUE = ".wh..wh..opq"


def _norm(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _whiteouts(tar: tarfile.TarFile) -> None:
    for m in tar:
        path = _norm(m.name)
        d, base = os.path.split(path)
        if base == OPAQUE:
            if os.path.isdir(d) and not os.path.islink(d):
                for entry in os.listdir(d):
                    _remove(os.path.join(d, entry))
        elif base.startswith(WH) and not base.startswith(WH + WH):
            _remove(os.path.join(d, base[len(WH):]))


def _members(tar: tarfile.TarFile, xattrs: list[tuple[str, dict[str, str]]]
             ) -> Iterator[tarfile.TarInfo]:
    for m in tar:
        path = _norm(m.name)
        base = os.path.basename(path)
        if base.startswith(WH) or any(p.startswith(WH + WH) for p in path.split("/")):
            continue
        if path == "/":
            if m.isdir():
                xattrs.append(("/", dict(m.pax_headers)))
            continue
        m.name = path.lstrip("/")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None and not (stat.S_ISDIR(st.st_mode) and m.isdir()):
            _remove(path)
        if m.pax_headers:
            xattrs.append((path, dict(m.pax_headers)))
        yield m


def _set_xattrs(xattrs: list[tuple[str, dict[str, str]]]) -> None:
    for path, headers in xattrs:
        for k, v in headers.items():
            if not k.startswith("SCHILY.xattr."):
                continue
            # a filesystem without that namespace keeps the file without the attribute
            with contextlib.suppress(OSError):
                os.setxattr(path, k[len("SCHILY.xattr."):],
                            v.encode("utf-8", "surrogateescape"), follow_symlinks=False)


def _size() -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirs, files in os.walk("/"):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: _untar.py ROOTFS LAYER...", file=sys.stderr)
        return 2
    rootfs, layers = argv[0], argv[1:]
    files = [open(p, "rb") for p in layers]  # noqa: SIM115 - read after the chroot
    os.chroot(rootfs)
    os.chdir("/")
    for f in files:
        with tarfile.open(fileobj=f, mode="r:*") as tar:
            _whiteouts(tar)
        f.seek(0)
        xattrs: list[tuple[str, dict[str, str]]] = []
        with tarfile.open(fileobj=f, mode="r:*") as tar:
            tar.extractall("/", members=_members(tar, xattrs), numeric_owner=True,
                           filter="fully_trusted")
        _set_xattrs(xattrs)
        f.close()
    print(json.dumps({"size": _size()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
