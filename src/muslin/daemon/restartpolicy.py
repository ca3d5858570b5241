"""Docker's restart policies as pure decisions: whether a HostConfig.RestartPolicy is
valid (dockerd's texts), whether a container that exited is started again, and the
delay before (100 ms doubling to 1 min, back to 100 ms after a run of 10 s or more).

No I/O, no clock: the daemon's container manager applies the decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from muslin.errors import InvalidParameter

NAMES = ("no", "always", "on-failure", "unless-stopped")
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


def validate(policy: Mapping[str, Any] | None, *, auto_remove: bool = False) -> None:
    """Raises InvalidParameter with dockerd's text for a policy it refuses."""
    name = str((policy or {}).get("Name") or "")
    try:
        count = int((policy or {}).get("MaximumRetryCount") or 0)
    except (TypeError, ValueError):
        raise InvalidParameter("invalid restart policy: maximum retry count must be an "
                               "integer") from None
    if name in ("always", "unless-stopped", "no"):
        if count != 0:
            msg = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
            raise InvalidParameter(msg + (" and cannot be negative" if count < 0 else ""))
    elif name == "on-failure":
        if count < 0:
            raise InvalidParameter("invalid restart policy: maximum retry count cannot be "
                                   "negative")
    elif name != "":
        raise InvalidParameter(f"invalid restart policy: unknown policy '{name}'; use one of "
                               "'no', 'always', 'on-failure', or 'unless-stopped'")
    if auto_remove and name not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")


def should_restart(policy: Mapping[str, Any] | None, exit_code: int, *,
                   manually_stopped: bool, restart_count: int) -> bool:
    """dockerd's restart manager: always; unless-stopped unless a user stopped it;
    on-failure on a non-zero exit while restarts stay under MaximumRetryCount (0: no
    limit). A user's stop or kill ends every policy until the next start."""
    if manually_stopped:
        return False
    name = str((policy or {}).get("Name") or "")
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = int((policy or {}).get("MaximumRetryCount") or 0)
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return False


def next_delay(previous: float | None, ran_for: float) -> float:
    """The wait before the next restart, given the last one (None: none yet) and how
    long the container ran this time."""
    if previous is None or ran_for >= RESET_AFTER:
        return FIRST_DELAY
    return min(previous * 2, MAX_DELAY)
