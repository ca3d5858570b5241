"""Containers: images (rootfs tarballs), the runc runtime held by conmon, /etc files.

A library for the Engine layer (which wires it to the API and the CLI):

    images = ImageStore("/var/lib/muslin/images"); build_busybox(images)
    rt = Runtime("/var/lib/muslin/containers", "/run/muslin", images=images)
    rt.create(ContainerSpec(id=new_id(), image="busybox", cmd=["sleep", "1d"],
                            netns=sandbox.netns_path))
    rt.start(cid); rt.exec(cid, ["ping", "-c1", "172.18.0.2"]).wait()

Layers inside: `spec`, `etcfiles`, `oci` and `logs` are pure (no I/O but reading a
log file); `images` owns the image store; `monitor` talks to conmon and runc;
`mounts` makes the overlay mounts; `runtime` orchestrates. Nothing here creates
networks: a container joins the namespace its spec names.
"""

from muslin.containers.etcfiles import ExtServer, ResolvConf
from muslin.containers.images import Image, ImageStore, build_busybox, normalize_ref
from muslin.containers.logs import LogEntry
from muslin.containers.monitor import Attachment, RuncError
from muslin.containers.runtime import ContainerInfo, ExecProcess, Runtime, new_id
from muslin.containers.spec import ContainerSpec, Rlimit

__all__ = [
    "Attachment",
    "ContainerInfo",
    "ContainerSpec",
    "ExecProcess",
    "ExtServer",
    "Image",
    "ImageStore",
    "LogEntry",
    "ResolvConf",
    "Rlimit",
    "RuncError",
    "Runtime",
    "build_busybox",
    "new_id",
    "normalize_ref",
]
