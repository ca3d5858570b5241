"""Routes of the Engine API and Docker's API-version negotiation.

Strips the `/vX.Y` prefix, refuses versions outside [MIN_API_VERSION, API_VERSION]
with Docker's texts, matches `/networks/{id}` style patterns, and turns muslin's
typed errors into Docker's `{"message": ...}` answers with the matching status.
Must not know what the handlers do.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from muslin.api.http import Request, Response
from muslin.errors import InvalidParameter, MuslinError

log = logging.getLogger("muslin.api")

API_VERSION = "1.47"
MIN_API_VERSION = "1.41"

_VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")

Route = Callable[..., Awaitable[Response]]


def version_tuple(v: str) -> tuple[int, int]:
    major, _, minor = v.partition(".")
    return int(major), int(minor or 0)


def error(status: int, message: str) -> Response:
    return Response.json({"message": message}, status)


def body_json(req: Request, *, required: bool = True) -> Any:
    """The request body as JSON; InvalidParameter (400) when it is not."""
    if not req.body.strip():
        if required:
            raise InvalidParameter("request body is required")
        return {}
    try:
        return json.loads(req.body)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidParameter(f"invalid JSON: {e}") from None


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Route]] = []

    def add(self, method: str, pattern: str, handler: Route) -> None:
        # {name} is one path segment; {name*} may span several (image names have "/")
        regex = re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", pattern)
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex) + "$"
        self._routes.append((method, re.compile(regex), handler))

    async def __call__(self, req: Request) -> Response:
        path = req.path
        version = API_VERSION
        m = _VERSIONED.match(path)
        if m:
            version, path = m.group(1), m.group(2)
            if version_tuple(version) < version_tuple(MIN_API_VERSION):
                return error(400, f"client version {version} is too old. Minimum supported API "
                                  f"version is {MIN_API_VERSION}, please upgrade your client "
                                  "to a newer version")
            if version_tuple(version) > version_tuple(API_VERSION):
                return error(400, f"client version {version} is too new. Maximum supported "
                                  f"API version is {API_VERSION}")
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        method = "GET" if req.method == "HEAD" else req.method
        allowed = False
        for route_method, regex, handler in self._routes:
            match = regex.match(path)
            if not match:
                continue
            if route_method != method:
                allowed = True
                continue
            try:
                return await handler(req, version, **match.groupdict())
            except MuslinError as e:
                if e.http_status >= 500:
                    log.error("%s %s: %s", req.method, req.path, e)
                return error(e.http_status, str(e))
        if allowed:
            return error(405, "method not allowed")
        return error(404, "page not found")
