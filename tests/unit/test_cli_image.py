"""The image verbs' pure parts: docker's references and the `images` table."""

from __future__ import annotations

import pytest

from muslin.cli.image import (
    RefError,
    image_path,
    parse_any_reference,
    parse_normalized_named,
    render_images,
)


@pytest.mark.parametrize(("text", "name", "familiar", "tag"), [
    ("busybox", "docker.io/library/busybox", "busybox", ""),
    ("busybox:1.36", "docker.io/library/busybox", "busybox:1.36", "1.36"),
    ("library/busybox", "docker.io/library/busybox", "busybox", ""),
    ("docker.io/library/busybox:latest", "docker.io/library/busybox", "busybox:latest",
     "latest"),
    ("index.docker.io/user/app", "docker.io/user/app", "user/app", ""),
    ("user/app:v1", "docker.io/user/app", "user/app:v1", "v1"),
    ("localhost/app", "localhost/app", "localhost/app", ""),
    ("localhost:5000/team/app:2", "localhost:5000/team/app", "localhost:5000/team/app:2", "2"),
    ("registry.example.com/a/b/c", "registry.example.com/a/b/c", "registry.example.com/a/b/c",
     ""),
])
def test_normalized_names(text: str, name: str, familiar: str, tag: str) -> None:
    ref = parse_normalized_named(text)
    assert (ref.name, ref.familiar(), ref.tag) == (name, familiar, tag)
    assert ref.tag_name_only().api_tag() == (tag or "latest")


def test_digests_and_ids() -> None:
    digest = "sha256:" + "a" * 64
    ref = parse_normalized_named(f"busybox@{digest}")
    assert ref.digest == digest and ref.api_tag() == digest
    assert ref.tag_name_only().familiar() == f"busybox@{digest}"
    assert parse_any_reference("a" * 64) is None
    assert parse_any_reference(digest) is None
    named = parse_any_reference("busybox")
    assert named is not None and named.tag_name_only().familiar() == "busybox:latest"


@pytest.mark.parametrize(("text", "message"), [
    ("", "invalid reference format"),
    ("Busybox", "invalid reference format: repository name (library/Busybox) must be "
                "lowercase"),
    ("a" * 64, f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal "
               "strings"),
    ("bad name", "invalid reference format"),
    ("busybox:", "invalid reference format"),
    ("x/" + "a" * 260, "repository name must not be more than 255 characters"),
])
def test_reference_errors(text: str, message: str) -> None:
    with pytest.raises(RefError) as e:
        parse_normalized_named(text)
    assert str(e.value) == message


def test_image_path_keeps_slashes() -> None:
    assert image_path("localhost:5000/app:1", "/json") == "/images/localhost:5000/app:1/json"
    assert image_path("a b") == "/images/a%20b"


NOW = 1_714_557_600.0
BUSYBOX = {"Id": "sha256:" + "1b" * 32, "RepoTags": ["busybox:latest", "busybox:1.36"],
           "RepoDigests": [], "Created": int(NOW) - 3 * 86400, "Size": 4_261_550,
           "SharedSize": -1, "Containers": -1}
DANGLING = {"Id": "sha256:" + "2c" * 32, "RepoTags": [], "RepoDigests": [],
            "Created": int(NOW) - 7200, "Size": 1_024, "SharedSize": -1, "Containers": 2}
PUSHED = {"Id": "sha256:" + "3d" * 32, "RepoTags": ["localhost:5000/app:v1"],
          "RepoDigests": ["localhost:5000/app@sha256:" + "e" * 64,
                          "other@sha256:" + "f" * 64],
          "Created": int(NOW) - 30, "Size": 12_345_678, "SharedSize": 0, "Containers": 0}


def test_images_table_like_docker() -> None:
    out = render_images([BUSYBOX, DANGLING, PUSHED], "", quiet=False, trunc=True,
                        digests=False, now=NOW)
    assert out.splitlines() == [
        "REPOSITORY           TAG       IMAGE ID       CREATED          SIZE",
        "busybox              latest    1b1b1b1b1b1b   3 days ago       4.26MB",
        "busybox              1.36      1b1b1b1b1b1b   3 days ago       4.26MB",
        "<none>               <none>    2c2c2c2c2c2c   2 hours ago      1.02kB",
        "localhost:5000/app   v1        3d3d3d3d3d3d   30 seconds ago   12.3MB",
        "other                <none>    3d3d3d3d3d3d   30 seconds ago   12.3MB",
    ]
    assert render_images([], "", quiet=False, trunc=True, digests=False, now=NOW) == (
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n")


def test_images_digests_quiet_and_templates() -> None:
    out = render_images([PUSHED], "", quiet=False, trunc=True, digests=True, now=NOW)
    lines = out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED",
                                "SIZE"]
    assert lines[1].split()[:3] == ["localhost:5000/app", "v1", "sha256:" + "e" * 64]
    assert lines[2].split()[:3] == ["other", "<none>", "sha256:" + "f" * 64]
    assert render_images([BUSYBOX, DANGLING], "", quiet=True, trunc=False, digests=False,
                         now=NOW) == (BUSYBOX["Id"] + "\n") * 2 + DANGLING["Id"] + "\n"
    out = render_images([BUSYBOX], "{{.Repository}}:{{.Tag}} {{.Containers}} {{.SharedSize}} "
                        "{{.VirtualSize}}", quiet=False, trunc=True, digests=False, now=NOW)
    assert out == "busybox:latest N/A N/A 4.262MB\nbusybox:1.36 N/A N/A 4.262MB\n"
    import json

    row = json.loads(render_images([DANGLING], "json", quiet=False, trunc=True, digests=False,
                                   now=NOW))
    assert row["Repository"] == "<none>" and row["Containers"] == "2"
    assert row["CreatedSince"] == "2 hours ago"
