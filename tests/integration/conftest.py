"""Fixtures of the CNM integration tests: a muslin Controller inside a lab host."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import muslin

from daemon import Muslind
from lab import Lab, LabHost


@pytest.fixture
def controller(lab_host: LabHost) -> Iterator[Callable[..., muslin.Controller]]:
    """Makes Controllers of the lab host's instance (one at a time), closing them after."""
    made: list[muslin.Controller] = []

    def make(**kw: object) -> muslin.Controller:
        ctl = muslin.Controller(state_dir=lab_host.state_dir, run_dir=lab_host.run_dir,
                                prefix=lab_host.prefix, host_netns=lab_host.netns,
                                **kw)  # type: ignore[arg-type]
        made.append(ctl)
        return ctl

    yield make
    for ctl in made:
        ctl.close()


@pytest.fixture
def ctl(controller: Callable[..., muslin.Controller]) -> muslin.Controller:
    return controller()


@pytest.fixture
def muslind(lab: Lab, lab_host: LabHost) -> Iterator[Muslind]:
    """A running muslind in the lab host (stopped after the test)."""
    d = Muslind(lab, lab_host).start()
    yield d
    d.stop()
