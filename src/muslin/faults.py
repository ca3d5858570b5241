"""Fault injection at named apply steps, for crash-safety tests.

`point(name)` does nothing unless the step is armed: by `arm(name, action)` or by the
environment variable MUSLIN_FAULT=<name>[:kill|:raise] (read at each call, so a
child process can be armed). "kill" sends SIGKILL to this process at that step;
"raise" raises FaultInjected. Must not be armed in production.
"""

from __future__ import annotations

import os
import signal

from muslin.errors import MuslinError

NETWORK_CREATE_STEPS = (
    "network.create.pool",
    "network.create.driver",
    "network.create.firewall",
    "network.create.commit",
)
ENDPOINT_JOIN_STEPS = (
    "endpoint.join.link",
    "endpoint.join.attach",
    "endpoint.join.configure",
    "endpoint.join.gateway",
    "endpoint.join.commit",
)

_armed: dict[str, str] = {}


class FaultInjected(MuslinError):
    """Raised at an armed step whose action is "raise"."""


def arm(name: str, action: str = "raise") -> None:
    _armed[name] = action


def disarm(name: str | None = None) -> None:
    if name is None:
        _armed.clear()
    else:
        _armed.pop(name, None)


def point(name: str) -> None:
    action = _armed.get(name)
    env = os.environ.get("MUSLIN_FAULT")
    if action is None and env:
        step, _, act = env.partition(":")
        if step == name:
            action = act or "kill"
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise FaultInjected(f"fault injected at {name}")
