"""What a command runs with: its streams, environment, command path and API client.

Owns the `Context` handed to every command: stdin/stdout/stderr (real or a test's),
the environment, the daemon address, and the Engine API client, made on first use so
that `--help` and parse errors never touch the socket. Also the prompt and colour
rules: colour only on a terminal, never with NO_COLOR or TERM=dumb.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

    from muslin.cli.client import Client


class Context:
    """Streams, environment and client of one CLI invocation."""

    def __init__(self, stdin: TextIO, stdout: TextIO, stderr: TextIO,
                 env: Mapping[str, str], host: str, path: str = "muslin",
                 debug: bool = False) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.env = env
        self.host = host
        self.path = path
        self.debug = debug
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from muslin.cli.client import Client

            self._client = Client(self.host)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def out(self, text: str) -> None:
        self.stdout.write(text)

    def err(self, text: str) -> None:
        self.stderr.write(text)

    def colour(self, text: str, code: str, stream: TextIO | None = None) -> str:
        """`text` in SGR `code` (e.g. "1;33") when `stream` is a terminal."""
        s = self.stdout if stream is None else stream
        if self.env.get("NO_COLOR") or self.env.get("TERM") == "dumb":
            return text
        try:
            tty = s.isatty()
        except (AttributeError, ValueError):
            tty = False
        return f"\x1b[{code}m{text}\x1b[0m" if tty else text

    def confirm(self, message: str) -> bool:
        """command.PromptForConfirmation: `message [y/N] ` on stdout, yes only for y/Y."""
        self.out(message + " [y/N] ")
        self.stdout.flush()
        line = self.stdin.readline()
        return line.strip().lower() == "y"
