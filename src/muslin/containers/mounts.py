"""Overlay mounts of container root filesystems (storage, not networking).

Owns the two mount(2)/umount2(2) calls a container's rootfs needs: the image's
unpacked directory as the read-only lower layer, the container's own upper and work
directories, mounted at the bundle's `rootfs`. Must not decide paths or policy; the
runtime does. (The kernel door, `muslin.kernel`, holds networking only so far; this
is the one other place muslin changes the kernel, and it belongs there once the
door grows a mounts module.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
MNT_DETACH = 2


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount_overlay(lower: str, upper: str, work: str, target: str) -> None:
    """Mounts an overlay of lower (read-only) and upper at target."""
    for p in (lower, upper, work, target):
        if "," in p or ":" in p:
            raise ValueError(f"overlay paths must not contain ',' or ':': {p}")
    data = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    _check(_libc.mount(b"overlay", target.encode(), b"overlay", 0, data),
           f"mount overlay at {target}")


def unmount(target: str) -> None:
    """Unmounts target (lazily if busy); quiet when nothing is mounted there."""
    if _libc.umount2(target.encode(), 0) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return
    if err == errno.EBUSY:
        _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")
        return
    raise OSError(err, f"umount {target}: {os.strerror(err)}")


def is_mounted(target: str) -> bool:
    """True when something is mounted exactly at target (per /proc/self/mountinfo)."""
    real = os.path.realpath(target)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == real:
                return True
    return False
