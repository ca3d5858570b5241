"""The image store: import, load (whiteouts), tag, get, inspect, remove; busybox; no pull.

Root is needed (layers are unpacked in a chroot); everything lives in the lab's
directory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from muslin.containers import ImageStore, build_busybox, normalize_ref
from muslin.containers.images import busybox_tar
from muslin.errors import Conflict, InvalidParameter, NotFound, Unavailable

from lab import Lab

pytestmark = pytest.mark.kernel


@pytest.fixture
def store(lab: Lab) -> ImageStore:
    return ImageStore(str(lab.dir / "images"))


def tarball(entries: list[tuple[str, str | bytes | None]]) -> bytes:
    """A tar of (name, content): bytes/str a file, None a directory, "->x" a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if content is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(ti)
            elif isinstance(content, str) and content.startswith("->"):
                ti.type, ti.linkname = tarfile.SYMTYPE, content[2:]
                tar.addfile(ti)
            else:
                data = content.encode() if isinstance(content, str) else content
                ti.size, ti.mode = len(data), 0o644
                tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


ROOTFS = tarball([("etc", None), ("etc/os-release", "ID=test\n"), ("bin", None),
                  ("bin/tool", b"\x7fELF..."), ("bin/link", "->tool")])


def test_normalize_ref() -> None:
    assert normalize_ref("busybox") == "busybox:latest"
    assert normalize_ref("docker.io/library/busybox:1.36") == "busybox:1.36"
    assert normalize_ref("docker.io/me/app") == "me/app:latest"
    assert normalize_ref("localhost:5000/app:v1") == "localhost:5000/app:v1"
    for bad in ("", "Busybox", "a b", "x:", "x@sha256:" + "0" * 64, "-x", "x:-bad"):
        with pytest.raises(InvalidParameter):
            normalize_ref(bad)


def test_import_get_tag_inspect(store: ImageStore) -> None:
    img = store.import_tar(io.BytesIO(ROOTFS), "test/app")
    assert img.id == "sha256:" + hashlib.sha256(ROOTFS).hexdigest()
    assert img.repo_tags == ("test/app:latest",)
    assert Path(img.rootfs, "etc/os-release").read_text() == "ID=test\n"
    assert os.readlink(os.path.join(img.rootfs, "bin/link")) == "tool"
    # the same tarball again, gzipped: the same image, one more tag
    again = store.import_tar(io.BytesIO(gzip.compress(ROOTFS)), "test/app:v2")
    assert again.id == img.id and again.repo_tags == ("test/app:latest", "test/app:v2")
    assert store.get("test/app").id == store.get("test/app:v2").id == img.id
    assert store.get(img.id).id == store.get(img.short_id).id == store.get(img.hex[:4]).id
    with pytest.raises(NotFound, match="No such image: nothere:latest"):
        store.get("nothere")
    with pytest.raises(NotFound, match="No such image: nothere:v1"):
        store.get("nothere:v1")
    store.tag("test/app:v2", "other:1")
    assert [i.repo_tags for i in store.list()] == [
        ("other:1", "test/app:latest", "test/app:v2")]
    doc = store.inspect("other:1")
    assert doc["Id"] == img.id and doc["RepoTags"] == ["other:1", "test/app:latest",
                                                        "test/app:v2"]
    assert doc["RootFS"] == {"Type": "layers", "Layers": [img.id]}
    assert doc["Size"] > 0 and doc["Os"] == "linux" and doc["Created"].endswith("Z")
    assert doc["Config"]["Cmd"] is None and doc["Metadata"]["LastTagTime"].endswith("Z")
    # with a config: the id covers it, inspect shows it
    cfg = store.import_tar(io.BytesIO(ROOTFS), "withcfg",
                           config={"Cmd": ["/bin/tool"], "Env": ["A=1"], "WorkingDir": "/etc"})
    assert cfg.id != img.id
    c = store.inspect("withcfg")["Config"]
    assert (c["Cmd"], c["Env"], c["WorkingDir"]) == (["/bin/tool"], ["A=1"], "/etc")
    with pytest.raises(InvalidParameter, match="not a valid change"):
        store.import_tar(io.BytesIO(ROOTFS), "bad", config={"Nope": 1})


def test_remove_as_docker(store: ImageStore) -> None:
    img = store.import_tar(io.BytesIO(ROOTFS), "app:1")
    store.tag("app:1", "app:2")
    # one of two tags: untag only; by id with two tags: must force
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        store.remove(img.short_id)
    assert store.remove("app:2") == [{"Untagged": "app:2"}]
    assert store.get(img.id).repo_tags == ("app:1",)
    # used by a container: rmi needs force, and the data stays until it goes
    store.hold(img.id, "c" * 64)
    with pytest.raises(Conflict, match='unable to remove repository reference "app:1"'):
        store.remove("app:1")
    with pytest.raises(Conflict, match="used by stopped container cccccccccccc"):
        store.remove(img.id)
    store.running_check = lambda cid: True
    with pytest.raises(Conflict, match="cannot be forced"):
        store.remove(img.id, force=True)
    store.running_check = None
    assert store.remove("app:1", force=True) == [{"Untagged": "app:1"},
                                                  {"Deleted": img.id}]
    assert store.list() == [] and os.path.isdir(img.rootfs)  # still the container's
    store.release(img.id, "c" * 64)
    assert not os.path.exists(img.rootfs)
    # unused and untagged: gone
    img = store.import_tar(io.BytesIO(ROOTFS))
    assert img.repo_tags == ()
    assert store.remove(img.short_id) == [{"Deleted": img.id}]
    with pytest.raises(NotFound):
        store.remove(img.id)


def test_pull_says_there_is_no_registry(store: ImageStore) -> None:
    with pytest.raises(Unavailable, match=r"no registry is reachable.*image import.*image load"):
        store.pull("alpine")


def _save_tarball(layers: list[bytes], config: dict[str, object], tags: list[str],
                  *, oci_layout: bool) -> tuple[bytes, str]:
    raw_config = json.dumps(config).encode()
    image_id = hashlib.sha256(raw_config).hexdigest()
    entries: list[tuple[str, str | bytes | None]] = []
    names = []
    for i, layer in enumerate(layers):
        if oci_layout:
            name = "blobs/sha256/" + hashlib.sha256(layer).hexdigest()
        else:
            name = f"{i:064x}/layer.tar"
            entries.append((f"{i:064x}", None))
        entries.append((name, gzip.compress(layer) if oci_layout and i else layer))
        names.append(name)
    config_name = f"blobs/sha256/{image_id}" if oci_layout else f"{image_id}.json"
    entries.append((config_name, raw_config))
    entries.append(("manifest.json", json.dumps(
        [{"Config": config_name, "RepoTags": tags, "Layers": names}])))
    if oci_layout:
        entries.insert(0, ("blobs", None))
        entries.insert(1, ("blobs/sha256", None))
    return tarball(entries), image_id


@pytest.mark.parametrize("oci_layout", [False, True])
def test_load_applies_layers_and_whiteouts(store: ImageStore, oci_layout: bool) -> None:
    lower = tarball([("etc", None), ("etc/a", "a"), ("etc/b", "b"), ("d", None),
                     ("d/x", "x"), ("d/sub", None), ("d/sub/y", "y"), ("f", "a file")])
    upper = tarball([("etc", None), ("etc/.wh.a", ""), ("d", None), ("d/.wh..wh..opq", ""),
                     ("d/z", "z"), ("f", None), ("f/now-a-dir", "yes")])
    config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
              "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [
                  "sha256:" + hashlib.sha256(x).hexdigest() for x in (lower, upper)]}}
    data, image_id = _save_tarball([lower, upper], config, ["docker.io/library/demo:1"],
                                   oci_layout=oci_layout)
    [img] = store.load(io.BytesIO(data))
    assert img.id == "sha256:" + image_id and img.repo_tags == ("demo:1",)
    root = Path(img.rootfs)
    assert sorted(os.listdir(root / "etc")) == ["b"]
    assert sorted(os.listdir(root / "d")) == ["z"]
    assert (root / "f/now-a-dir").read_text() == "yes"
    assert not any(".wh." in n for _, dirs, files in os.walk(root) for n in dirs + files)
    assert store.inspect("demo:1")["Created"] == "2024-01-01T00:00:00Z"
    # loading it again changes nothing
    assert [i.id for i in store.load(io.BytesIO(data))] == [img.id]
    with pytest.raises(InvalidParameter, match=r"manifest\.json"):
        store.load(io.BytesIO(ROOTFS))


def test_layers_cannot_write_outside_their_rootfs(lab: Lab, store: ImageStore) -> None:
    outside = lab.dir / "outside"
    outside.mkdir()
    # "..", and a symlink to "/" then a file below it: both land inside the rootfs
    img = store.import_tar(io.BytesIO(tarball([
        ("up", "->../../../.."), ("../../../../escaped-by-dots", "x"),
        ("up/escaped-by-link", "x")])), "dots")
    assert (Path(img.rootfs) / "escaped-by-dots").exists()
    assert (Path(img.rootfs) / "escaped-by-link").exists()
    # a symlink to an absolute path outside, then a file below it: refused (the path
    # means nothing inside the chroot), and nothing is written outside
    with pytest.raises(InvalidParameter, match="cannot unpack"):
        store.import_tar(io.BytesIO(tarball([("esc", f"->{outside}"), ("esc/pwned", "x")])),
                         "evil")
    assert list(outside.iterdir()) == []
    assert not Path("/escaped-by-dots").exists() and not Path("/escaped-by-link").exists()
    assert not (lab.dir / "escaped-by-dots").exists()
    assert [i.repo_tags for i in store.list()] == [("dots:latest",)]


def test_busybox_image(store: ImageStore) -> None:
    img = build_busybox(store)
    assert img.repo_tags == ("busybox:latest",)
    assert img.container_config["Cmd"] == ["sh"]
    root = Path(img.rootfs)
    assert os.readlink(root / "bin/sh") == "busybox" and (root / "bin/busybox").is_file()
    assert os.readlink(root / "bin/ping") == "busybox"
    assert (root / "etc/passwd").read_text().startswith("root:x:0:0:")
    assert (root / "etc/hosts").read_text() == ""
    assert oct((root / "tmp").stat().st_mode & 0o7777) == "0o1777"
    # deterministic: the same binary makes the same image
    assert build_busybox(store).id == img.id
    assert busybox_tar() == busybox_tar()
