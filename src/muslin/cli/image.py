"""`muslin image import|load|ls|inspect|rm|tag|pull`, `images`, `rmi`, `tag`, `pull`.

Owns docker's image references as its CLI reads them (distribution/reference:
`busybox` is `docker.io/library/busybox:latest`, familiar names, digests, its error
texts), the requests docker sends for each image verb (tarballs streamed to
`POST /images/create?fromSrc=-` and `POST /images/load`, `POST /images/{name}/tag`,
`DELETE /images/{name}`), and printing the answers as docker does: progress messages,
`Untagged:`/`Deleted:` lines, and the `images` table.
"""

from __future__ import annotations

import re

from muslin.cli import govalues as gv
from muslin.cli.client import APIError, filters_query, quote
from muslin.cli.errors import StatusError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from muslin.cli.cmdline import Options
    from muslin.cli.context import Context

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_PREFIX = "library/"

# distribution/reference's grammar
_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = (rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[(?:[a-fA-F0-9:]+)\])"
           r"(?::[0-9]+)?")
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_REFERENCE = re.compile(rf"^((?:{_DOMAIN}/)?{_PATH})(?::({_TAG}))?(?:@({_DIGEST}))?$",
                        re.ASCII)
_NAME = re.compile(rf"^(?:({_DOMAIN})/)?({_PATH})$", re.ASCII)
_IDENTIFIER = re.compile(r"^[a-f0-9]{64}$")
_DIGEST_ONLY = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_DIGEST_SIZES = {"sha256": 64, "sha384": 96, "sha512": 128}
NAME_TOTAL_LENGTH_MAX = 255


class RefError(ValueError):
    """A reference docker's CLI refuses; the message is docker's."""


class Reference:
    """A named reference: domain, path, optional tag and digest."""

    __slots__ = ("digest", "domain", "path", "tag")

    def __init__(self, domain: str, path: str, tag: str = "", digest: str = "") -> None:
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def name(self) -> str:
        """Name(): `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def familiar_name(self) -> str:
        """FamiliarName(): `busybox`, `user/app`, `localhost:5000/app`."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            rest = path.removeprefix(OFFICIAL_PREFIX)
            if path.startswith(OFFICIAL_PREFIX) and "/" not in rest:
                return rest
            return path
        return self.name

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def familiar(self) -> str:
        """FamiliarString()."""
        return self.familiar_name() + self._suffix()

    def __str__(self) -> str:
        return self.name + self._suffix()

    def name_only(self) -> bool:
        return not self.tag and not self.digest

    def tag_name_only(self) -> Reference:
        """TagNameOnly(): `latest` for a reference with neither tag nor digest."""
        if self.name_only():
            return Reference(self.domain, self.path, "latest")
        return self

    def api_tag(self) -> str:
        """getAPITagFromNamedRef: the `tag` query value docker sends."""
        return self.digest or self.tag or "latest"


def parse(s: str) -> Reference:
    """reference.Parse."""
    m = _REFERENCE.match(s)
    if m is None:
        if s == "":
            raise RefError("repository name must have at least one component")
        if _REFERENCE.match(s.lower()):
            raise RefError("repository name must be lowercase")
        raise RefError("invalid reference format")
    name, tag, digest = m.group(1), m.group(2) or "", m.group(3) or ""
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise RefError(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} "
                       "characters")
    parts = _NAME.match(name)
    assert parts is not None
    return Reference(parts.group(1) or "", parts.group(2), tag, digest)


def split_docker_domain(name: str) -> tuple[str, str]:
    """splitDockerDomain: Docker Hub when the first component is not a host."""
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost"
                   and first.lower() == first):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = first, name[i + 1:]
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


def parse_normalized_named(s: str) -> Reference:
    """reference.ParseNormalizedNamed: `busybox` is `docker.io/library/busybox`."""
    if _IDENTIFIER.match(s):
        raise RefError(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal "
                       "strings")
    domain, rest = split_docker_domain(s)
    remote = rest.split(":", 1)[0]
    if remote.lower() != remote:
        raise RefError(f"invalid reference format: repository name ({remote}) must be "
                       "lowercase")
    return parse(f"{domain}/{rest}")


def _is_digest(s: str) -> bool:
    m = _DIGEST_ONLY.match(s)
    if m is None:
        return False
    size = _DIGEST_SIZES.get(m.group(1))
    return size is not None and len(m.group(2)) == size and bool(
        re.fullmatch(r"[a-f0-9]+", m.group(2)))


def parse_any_reference(s: str) -> Reference | None:
    """reference.ParseAnyReference: None for an image ID or digest (no name to pull)."""
    if _IDENTIFIER.match(s) or _is_digest(s):
        return None
    return parse_normalized_named(s)


def image_path(name: str, suffix: str = "") -> str:
    """`/images/<name><suffix>`, the name escaped as Go escapes a URL path (its slashes
    kept: `/images/localhost:5000/app:1/json`)."""
    return "/images/" + quote(name, b"!$&'()*+,;=:@/") + suffix


# -- images / image ls -----------------------------------------------------------------

IMAGE_HEADERS = {
    "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
    "Containers": "CONTAINERS", "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
}

DEFAULT_IMAGE_FORMAT = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t"
                        "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}")
DEFAULT_IMAGE_DIGEST_FORMAT = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
                               "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t"
                               "{{.Size}}")


def image_format(fmt: str, quiet: bool, digest: bool) -> str:
    """docker's NewImageFormat."""
    if fmt == "table":
        if quiet:
            return "{{.ID}}"
        return DEFAULT_IMAGE_DIGEST_FORMAT if digest else DEFAULT_IMAGE_FORMAT
    if fmt == "raw":
        if quiet:
            return "image_id: {{.ID}}"
        return ("repository: {{ .Repository }}\ntag: {{.Tag}}\n"
                + ("digest: {{.Digest}}\n" if digest else "")
                + "image_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n")
    if fmt.startswith("table") and digest and "{{.Digest}}" not in fmt:
        fmt += "\t{{.Digest}}"
    return fmt


def _dangling(img: dict[str, Any]) -> bool:
    tags, digests = img.get("RepoTags") or [], img.get("RepoDigests") or []
    if not tags and not digests:
        return True
    return tags == ["<none>:<none>"] and digests == ["<none>@<none>"]


def image_rows(images: list[dict[str, Any]], show_digest: bool, need_digest: bool
               ) -> list[tuple[dict[str, Any], str, str, str]]:
    """docker's imageFormat: one row (image, repository, tag, digest) per tag, digest
    rows for untagged digests, `<none>` for dangling images."""
    rows: list[tuple[dict[str, Any], str, str, str]] = []
    for img in images:
        if _dangling(img):
            rows.append((img, "<none>", "<none>", "<none>"))
            continue
        repo_tags: dict[str, list[str]] = {}
        repo_digests: dict[str, list[str]] = {}
        for text in img.get("RepoTags") or []:
            try:
                ref = parse_normalized_named(str(text))
            except RefError:
                continue
            if ref.tag:
                repo_tags.setdefault(ref.familiar_name(), []).append(ref.tag)
        for text in img.get("RepoDigests") or []:
            try:
                ref = parse_normalized_named(str(text))
            except RefError:
                continue
            if ref.digest:
                repo_digests.setdefault(ref.familiar_name(), []).append(ref.digest)
        for repo, tags in repo_tags.items():
            digests = repo_digests.pop(repo, [])
            if not need_digest:
                digests = []
            for tag in tags:
                if not digests:
                    rows.append((img, repo, tag, "<none>"))
                for d in digests:
                    rows.append((img, repo, tag, d))
        for repo, digests in repo_digests.items():
            if show_digest:
                rows += [(img, repo, "<none>", d) for d in digests]
            else:
                rows.append((img, repo, "<none>", ""))
    return rows


def human_size_4(size: float) -> str:
    """go-units HumanSize."""
    from muslin.cli.container import human_size

    return human_size(size, 4)


class ImageContext(gv.GoStruct):
    """An `images` row: docker's *formatter.imageContext (fields are methods)."""

    go_type = "*formatter.imageContext"

    def __init__(self, img: dict[str, Any], repo: str, tag: str, digest: str, trunc: bool,
                 now: float) -> None:
        self.i = img
        self.repo = repo
        self.tag = tag
        self.digest = digest
        self.trunc = trunc
        self.now = now

    def _int(self, key: str, default: int = 0) -> int:
        v = self.i.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else default

    def methods(self) -> dict[str, Callable[..., Any]]:
        from muslin.cli.container import human_size, unix_time_string
        from muslin.cli.views import truncate_id
        from muslin.units import human_duration

        ident = str(self.i.get("Id") or "")
        created, size = self._int("Created"), self._int("Size")
        shared, containers = self._int("SharedSize", -1), self._int("Containers", -1)
        return {
            "ID": lambda: truncate_id(ident) if self.trunc else ident,
            "Repository": lambda: self.repo,
            "Tag": lambda: self.tag,
            "Digest": lambda: self.digest,
            "CreatedSince": lambda: human_duration(self.now - created) + " ago",
            "CreatedAt": lambda: unix_time_string(created),
            "Size": lambda: human_size(float(size)),
            "Containers": lambda: "N/A" if containers == -1 else str(containers),
            "VirtualSize": lambda: human_size_4(float(size)),
            "SharedSize": lambda: "N/A" if shared == -1 else human_size_4(float(shared)),
            "UniqueSize": lambda: ("N/A" if size == -1 or shared == -1
                                   else human_size_4(float(size - shared))),
        }

    def go_method(self, name: str) -> Callable[..., Any] | None:
        return self.methods().get(name)

    def to_json(self) -> Any:
        return {k: f() for k, f in self.methods().items()}


def render_images(images: list[dict[str, Any]], fmt: str, quiet: bool, trunc: bool,
                  digests: bool, now: float) -> str:
    from muslin.cli.formatter import FormatError, render_list

    source = image_format(fmt or "table", quiet, digests)
    rows = [ImageContext(img, repo, tag, digest, trunc, now) for img, repo, tag, digest in
            image_rows(images, digests, digests or "{{.Digest}}" in source)]
    try:
        return render_list(source, rows, IMAGE_HEADERS)
    except FormatError as e:
        raise StatusError(str(e)) from None


def ls(ctx: Context, opts: Options, args: list[str]) -> int:
    import time

    filters = opts.filters("filter")
    if args:
        filters.setdefault("reference", {})[args[0]] = True
    query = {"all": "1"} if opts.boolean("all") else {}
    query.update(filters_query(filters))
    images = ctx.client.get_json("/images/json", query)
    ctx.out(render_images(images if isinstance(images, list) else [], opts.string("format"),
                          opts.boolean("quiet"), not opts.boolean("no-trunc"),
                          opts.boolean("digests"), time.time()))
    return 0


# -- inspect, rm, tag, pull ------------------------------------------------------------


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    from muslin.cli.container import _check_template, _print_inspect

    fmt = opts.string("format")
    _check_template(fmt)
    raws: list[str] = []
    errors: list[str] = []
    for name in args:
        try:
            data = ctx.client.call("GET", image_path(name, "/json"))
        except APIError as e:
            errors.append(e.message)
            continue
        raws.append(data.decode("utf-8", "replace"))
    return _print_inspect(ctx, raws, fmt, errors)


def rm(ctx: Context, opts: Options, args: list[str]) -> int:
    query = {"force": "1"} if opts.boolean("force") else {}
    if opts.boolean("no-prune"):
        query["noprune"] = "1"
    errors: list[str] = []
    fatal = False
    for name in args:
        try:
            result = ctx.client.call("DELETE", image_path(name), query=query)
        except StatusError as e:
            if not (isinstance(e, APIError) and e.status == 404):
                fatal = True
            errors.append(e.message)
            continue
        import json

        items = json.loads(result) if result.strip() else []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            if item.get("Deleted"):
                ctx.out(f"Deleted: {item['Deleted']}\n")
            else:
                ctx.out(f"Untagged: {item.get('Untagged', '')}\n")
    if errors:
        message = "\n".join(errors)
        if not opts.boolean("force") or fatal:
            raise StatusError(message)
        ctx.stdout.flush()
        ctx.err(message + "\n")
    return 0


def tag(ctx: Context, opts: Options, args: list[str]) -> int:
    source, target = args
    try:
        parse_any_reference(source)
    except RefError as e:
        raise StatusError(f'Error parsing reference: "{source}" is not a valid '
                          f"repository/tag: {e}") from None
    try:
        ref = parse_normalized_named(target)
    except RefError as e:
        raise StatusError(f'Error parsing reference: "{target}" is not a valid '
                          f"repository/tag: {e}") from None
    if ref.digest:
        raise StatusError("refusing to create a tag with a digest reference")
    ref = ref.tag_name_only()
    query = {"repo": ref.name}
    if ref.tag:
        query["tag"] = ref.tag
    ctx.client.call("POST", image_path(source, "/tag"), query=query)
    return 0


def pull(ctx: Context, opts: Options, args: list[str]) -> int:
    from muslin.cli.stream import display_json_messages

    try:
        ref = parse_normalized_named(args[0])
    except RefError as e:
        raise StatusError(str(e)) from None
    quiet = opts.boolean("quiet")
    all_tags = opts.boolean("all-tags")
    if all_tags and not ref.name_only():
        raise StatusError("tag can't be used with --all-tags/-a")
    if not all_tags and ref.name_only():
        ref = ref.tag_name_only()
        if not quiet:
            ctx.out(f"Using default tag: {ref.tag}\n")
    query = {"fromImage": ref.name}
    if not all_tags:
        query["tag"] = ref.api_tag()
    if opts.string("platform"):
        query["platform"] = opts.string("platform").lower()
    resp = ctx.client.request("POST", "/images/create", query=query)
    if quiet:
        import io

        display_json_messages(resp, io.StringIO())
    else:
        display_json_messages(resp, ctx.stdout)
        ctx.out(f"{ref}\n")
    return 0


# -- import, load ----------------------------------------------------------------------


def _file_reader(path: str) -> tuple[Any, Callable[[], bytes]]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as e:
        raise StatusError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    return f, lambda: f.read(1 << 20)


def import_(ctx: Context, opts: Options, args: list[str]) -> int:
    from muslin.cli.stream import display_json_messages, post_body, stdin_reader

    source = args[0]
    reference = args[1] if len(args) > 1 else ""
    if reference:
        try:
            parse_normalized_named(reference)
        except RefError as e:
            raise StatusError(str(e)) from None
    query: dict[str, str | list[str]] = {}
    handle = None
    if source == "-":
        read = stdin_reader(ctx.stdin)
        query["fromSrc"] = "-"
    elif source.startswith(("http://", "https://")):
        def read() -> bytes:
            return b""

        query["fromSrc"] = source
    else:
        handle, read = _file_reader(source)
        query["fromSrc"] = "-"
    if reference:
        query["repo"] = reference
    if opts.string("message"):
        query["message"] = opts.string("message")
    if opts.string("platform"):
        query["platform"] = opts.string("platform").lower()
    if opts.strings("change"):
        query["changes"] = opts.strings("change")
    try:
        resp = post_body(ctx.client, "/images/create", query, read)
    finally:
        if handle is not None:
            handle.close()
    display_json_messages(resp, ctx.stdout)
    return 0


def load(ctx: Context, opts: Options, args: list[str]) -> int:
    from muslin.cli.stream import (
        Sink,
        display_json_messages,
        is_terminal,
        post_body,
        stdin_reader,
    )

    path = opts.string("input")
    if not path and is_terminal(ctx.stdin):
        raise StatusError("requested load from stdin, but stdin is empty")
    quiet = opts.boolean("quiet") or not is_terminal(ctx.stdout)
    handle = None
    if path:
        handle, read = _file_reader(path)
    else:
        read = stdin_reader(ctx.stdin)
    try:
        resp = post_body(ctx.client, "/images/load", {"quiet": "1" if quiet else "0"}, read,
                         "application/x-tar")
    finally:
        if handle is not None:
            handle.close()
    if "application/json" in resp.headers.get("content-type", ""):
        display_json_messages(resp, ctx.stdout)
    else:
        sink = Sink(ctx.stdout)
        for chunk in resp.chunks():
            sink.write(chunk)
        sink.close()
    return 0
