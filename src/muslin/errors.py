"""Typed errors of muslin.

Owns the error hierarchy and its mapping to Docker's HTTP status codes. Every
error a user can see is one of these; they carry the text Docker would show.
Must not import anything else of muslin.
"""

from __future__ import annotations


class MuslinError(Exception):
    """Base of all errors muslin raises on purpose."""

    http_status = 500


class InvalidParameter(MuslinError):
    """Bad input: names the field and the accepted values (HTTP 400)."""

    http_status = 400


class Forbidden(MuslinError):
    """The request is valid but not allowed in this state (HTTP 403)."""

    http_status = 403


class NotFound(MuslinError):
    """No such object (HTTP 404)."""

    http_status = 404


class Conflict(MuslinError):
    """The object exists already or is in use (HTTP 409)."""

    http_status = 409


class Unavailable(MuslinError):
    """A resource is exhausted or a service cannot be reached (HTTP 503)."""

    http_status = 503


class KernelError(MuslinError):
    """The kernel refused a change; the message carries the kernel's text."""

    http_status = 500


class MissingKernelFeature(Unavailable):
    """This kernel lacks a feature; the message names the kernel option."""

    def __init__(self, feature: str, option: str) -> None:
        super().__init__(
            f"{feature} is not supported by this kernel: it needs {option}"
        )
        self.feature = feature
        self.option = option
