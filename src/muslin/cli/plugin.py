"""`muslin plugin serve`: runs muslin's bridge driver as a Docker network plugin in
this process (no muslind needed). Owns only the command's flags and start-up; the
service itself is muslin.plugins.serve.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from muslin.cli.cmdline import Options
    from muslin.cli.context import Context


def serve(ctx: Context, opts: Options, args: list[str]) -> int:
    import asyncio
    import logging
    import os
    import re

    from muslin.cli.errors import StatusError
    from muslin.errors import MuslinError
    from muslin.plugins.serve import DriverService
    from muslin.plugins.serve import serve as run

    name = opts.string("name")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise StatusError(f"invalid plugin name {name!r}: letters, digits, '_', '.', '-'")
    if opts.string("driver") != "bridge":
        raise StatusError(f"driver {opts.string('driver')!r} cannot be served: only bridge")
    logging.basicConfig(level=logging.DEBUG if ctx.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    socket_path = os.path.join(opts.string("plugin-dir"), f"{name}.sock")
    try:
        service = DriverService(opts.string("data-root"), prefix=opts.string("prefix"),
                                iptables=opts.boolean("iptables"))
    except MuslinError as e:
        raise StatusError(f"muslin plugin serve: {e}") from None
    try:
        asyncio.run(run(socket_path, service))
    finally:
        service.close()
    return 0
