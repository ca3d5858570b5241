"""The Engine API of one daemon: the router with every handler group, and the bridge
from the event loop to the synchronous controller (a pool of worker threads).
Must not touch the kernel itself.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from muslin.api import networks, system
from muslin.api.events import EventBus
from muslin.api.http import Request, Response
from muslin.api.router import Router
from muslin.cnm import Controller
from muslin.daemon.containers import ContainerManager

T = TypeVar("T")


class Engine:
    def __init__(self, ctl: Controller, loop: asyncio.AbstractEventLoop, *,
                 daemon_info: dict[str, Any], workers: int = 16,
                 containers: ContainerManager | None = None) -> None:
        self.ctl = ctl
        self.containers = containers
        self.events = EventBus(loop)
        self.daemon_info = daemon_info
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="muslin-core")
        self.router = Router()
        networks.register(self.router, self)
        system.register(self.router, self)
        if containers is not None:
            from muslin.api import containers as container_api

            container_api.register(self.router, self, containers)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs a controller call on a worker thread (never on the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    async def handle(self, req: Request) -> Response:
        return await self.router(req)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
