"""The `busybox` image every peer imports: a root filesystem made from Debian's
busybox-static (`/bin/busybox`), as a tarball for `docker import` / `podman import`.
No registry is ever contacted."""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from pathlib import Path

BUSYBOX = "/bin/busybox"


def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, link
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = int(time.time())
    return ti


def build(dest: Path, busybox: str = BUSYBOX) -> Path:
    """Writes the rootfs tarball to dest and returns it."""
    if not Path(busybox).is_file():
        raise FileNotFoundError(f"{busybox} not found: apt-get install busybox-static")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True,
                             check=True, timeout=30).stdout.split()
    data = Path(busybox).read_bytes()
    files = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
        "etc/group": b"root:x:0:\nnogroup:x:65534:\n",
        "etc/hosts": b"127.0.0.1 localhost\n",
        "etc/resolv.conf": b"nameserver 127.0.0.1\n",
    }
    with tarfile.open(dest, "w") as tar:
        for d in ("bin", "etc", "dev", "proc", "sys", "tmp", "root", "var", "run"):
            tar.addfile(_info(d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755))
        tar.addfile(_info("bin/busybox", tarfile.REGTYPE, 0o755, len(data)), io.BytesIO(data))
        for a in applets:
            if a != "busybox":
                tar.addfile(_info(f"bin/{a}", tarfile.SYMTYPE, 0o777, link="busybox"))
        for name, content in files.items():
            tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(content)), io.BytesIO(content))
    return dest
