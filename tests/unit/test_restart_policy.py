"""Docker's restart policies as pure decisions (muslin.daemon.restartpolicy)."""

from __future__ import annotations

import pytest

from muslin.daemon import restartpolicy as rp
from muslin.errors import InvalidParameter


@pytest.mark.parametrize(("policy", "auto_remove", "text"), [
    ({"Name": "bogus"}, False, "invalid restart policy: unknown policy 'bogus'; use one of "
     "'no', 'always', 'on-failure', or 'unless-stopped'"),
    ({"Name": "always", "MaximumRetryCount": 3}, False,
     "maximum retry count can only be used with 'on-failure'"),
    ({"Name": "no", "MaximumRetryCount": -1}, False,
     "can only be used with 'on-failure' and cannot be negative"),
    ({"Name": "on-failure", "MaximumRetryCount": -1}, False,
     "maximum retry count cannot be negative"),
    ({"Name": "always"}, True, "can't create 'AutoRemove' container with restart policy"),
])
def test_refused_policies(policy: dict[str, object], auto_remove: bool, text: str) -> None:
    with pytest.raises(InvalidParameter, match=text.replace("(", r"\(")):
        rp.validate(policy, auto_remove=auto_remove)


@pytest.mark.parametrize("policy", [None, {}, {"Name": ""}, {"Name": "no"},
                                    {"Name": "on-failure", "MaximumRetryCount": 5},
                                    {"Name": "unless-stopped"}])
def test_accepted_policies(policy: dict[str, object] | None) -> None:
    rp.validate(policy)
    rp.validate({"Name": "no"}, auto_remove=True)


def test_should_restart() -> None:
    def go(name: str, code: int, *, stopped: bool = False, count: int = 0,
           limit: int = 0) -> bool:
        return rp.should_restart({"Name": name, "MaximumRetryCount": limit}, code,
                                 manually_stopped=stopped, restart_count=count)

    assert go("always", 0) and go("unless-stopped", 0) and go("always", 1)
    assert not go("always", 0, stopped=True) and not go("unless-stopped", 1, stopped=True)
    assert not go("no", 1) and not go("", 1)
    assert go("on-failure", 1) and not go("on-failure", 0)
    assert go("on-failure", 1, count=1, limit=2) and not go("on-failure", 1, count=2, limit=2)
    assert go("on-failure", 1, count=100)  # no limit


def test_back_off() -> None:
    delays = [rp.next_delay(None, 0)]
    for _ in range(12):
        delays.append(rp.next_delay(delays[-1], 0.5))
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8] and delays[-1] == rp.MAX_DELAY
    assert rp.next_delay(30.0, rp.RESET_AFTER) == rp.FIRST_DELAY
