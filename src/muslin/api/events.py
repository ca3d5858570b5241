"""The daemon's event stream (`GET /events`): a bounded history and live subscribers.

Lives on the event loop; publishers on other threads use `publish_threadsafe`. Must
not know HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

Event = dict[str, Any]
log = logging.getLogger("muslin.events")


class EventBus:
    def __init__(self, loop: asyncio.AbstractEventLoop, history: int = 1024) -> None:
        self._loop = loop
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[Event]] = set()

    def publish(self, kind: str, action: str, actor_id: str, attributes: dict[str, str],
                scope: str = "local") -> None:
        now = time.time_ns()
        event: Event = {
            "Type": kind, "Action": action,
            "Actor": {"ID": actor_id, "Attributes": attributes},
            "scope": scope, "time": now // 1_000_000_000, "timeNano": now,
        }
        self._history.append(event)
        if log.isEnabledFor(logging.DEBUG):
            ids = {kind: actor_id} if kind in ("container", "network") else {}
            if attributes.get("container"):
                ids["container"] = attributes["container"]
            log.debug("event %s %s %s", kind, action,
                      " ".join(f"{k}={v}" for k, v in sorted(attributes.items())), extra=ids)
        for q in self._subscribers:
            q.put_nowait(event)

    def publish_threadsafe(self, *args: Any, **kw: Any) -> None:
        self._loop.call_soon_threadsafe(lambda: self.publish(*args, **kw))

    def history(self, since_ns: int) -> list[Event]:
        return [e for e in self._history if e["timeNano"] >= since_ns]

    def subscribe(self) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        self._subscribers.discard(q)
