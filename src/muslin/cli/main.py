"""`muslin`, the entry point: global flags, command lookup, dispatch, exit codes.

Owns the walk from argv to a command (`muslin [-H host] [-D] network ls ...`), help
and version requests, and turning what a command raises into docker's messages and
exit codes (125 flag errors, 1 errors, 0 a declined prompt, 130 Ctrl-C). Imports only
the small modules it needs; each command's module is imported when it runs.
"""

from __future__ import annotations

import sys

from muslin.cli import cmdline
from muslin.cli.commands import ROOT, TOP_COMMANDS
from muslin.cli.errors import Cancelled, StatusError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import TextIO

    from muslin.cli.context import Context


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None,
         env: Mapping[str, str] | None = None) -> int:
    """Run `muslin argv...`; returns the exit code (console scripts sys.exit it)."""
    import os

    args = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    inp = sys.stdin if stdin is None else stdin
    environ = os.environ if env is None else env
    try:
        return _run(args, inp, out, err, environ)
    except BrokenPipeError:
        # like docker killed by SIGPIPE: no message
        if stdout is None:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):
                pass
        return 141


def _usage_error(message: str, path: str, node: cmdline.Command | cmdline.Group) -> StatusError:
    text = f"{message}\nSee '{path} --help'."
    if isinstance(node, cmdline.Group):
        text += "\n\n" + _help(path, node).lstrip("\n")
    return StatusError(text.rstrip("\n"), 125)


def _help(path: str, node: cmdline.Command | cmdline.Group) -> str:
    return cmdline.help_text(path, node, top=TOP_COMMANDS if node is ROOT else ())


def _client_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("muslin")
    except metadata.PackageNotFoundError:
        return "unknown"


def _run(argv: list[str], stdin: TextIO, stdout: TextIO, stderr: TextIO,
         env: Mapping[str, str]) -> int:
    ctx: Context | None = None
    try:
        try:
            gopts, rest, want_help = cmdline.parse_flags(ROOT.flags, argv, interspersed=False)
        except cmdline.FlagError as e:
            raise _usage_error(str(e), "muslin", ROOT) from None
        if gopts.boolean("version"):
            stdout.write(f"muslin version {_client_version()}\n")
            return 0
        path = "muslin"
        node: cmdline.Command | cmdline.Group = ROOT
        while isinstance(node, cmdline.Group):
            if want_help:
                stdout.write(_help(path, node))
                return 0
            if node is not ROOT:
                try:
                    _, rest, want_help = cmdline.parse_flags(node.flags, rest,
                                                             interspersed=False)
                except cmdline.FlagError as e:
                    raise _usage_error(str(e), path, node) from None
                if want_help:
                    continue
            if not rest:
                stderr.write(_help(path, node))  # docker's ShowHelp: on stderr, exit 0
                return 0
            sub = node.find(rest[0])
            if sub is None:
                if node is ROOT:
                    raise StatusError(
                        f"muslin: '{rest[0]}' is not a muslin command.\nSee 'muslin --help'")
                raise StatusError(_help(path, node).rstrip("\n"))
            path = f"{path} {sub.name}"
            node, rest = sub, rest[1:]
        try:
            opts, args, want_help = cmdline.parse_flags(node.flags, rest,
                                                         interspersed=node.interspersed)
        except cmdline.FlagError as e:
            raise _usage_error(str(e), path, node) from None
        if want_help:
            stdout.write(_help(path, node))
            return 0
        cmdline.check_args(path, node, args)

        from muslin.cli.client import resolve_host
        from muslin.cli.context import Context

        ctx = Context(stdin, stdout, stderr, env, resolve_host(gopts.string("host"), env),
                      path=path, debug=gopts.boolean("debug"))
        module, _, func = node.run.partition(":")
        code = getattr(__import__(module, fromlist=[func]), func)(ctx, opts, args)
        stdout.flush()
        return int(code or 0)
    except StatusError as e:
        stdout.flush()
        if e.message:
            stderr.write(e.message + "\n")
        return e.code
    except Cancelled:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug or a daemon speaking nonsense: one line, -D for more
        if ctx is not None and ctx.debug:
            raise
        stderr.write(f"muslin: unexpected error: {type(e).__name__}: {e}\n")
        return 1
    finally:
        if ctx is not None:
            ctx.close()


if __name__ == "__main__":
    sys.exit(main())
