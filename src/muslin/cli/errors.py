"""The CLI's exceptions and the exit codes docker gives them.

Owns what ends a command early: `StatusError` (a message for stderr and an exit code;
125 for flag errors, 64 for bad templates, 1 otherwise) and `Cancelled` (a declined
prompt: no message, exit 0, as docker 27 does).
"""

from __future__ import annotations


class StatusError(Exception):
    """Print `message` (if any) on stderr and exit with `code`."""

    def __init__(self, message: str = "", code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Cancelled(Exception):
    """The user declined a prompt."""
