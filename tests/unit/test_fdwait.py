"""muslin.fdwait: waiting on a descriptor numbered past FD_SETSIZE (1024), where
select.select aborts the process (muslind died so at its ~200th container)."""

from __future__ import annotations

import os
import resource
import socket
from collections.abc import Iterator

import pytest

from muslin.fdwait import readable


@pytest.fixture
def high_pipe() -> Iterator[tuple[int, int]]:
    """A pipe whose read end is numbered above 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    r, w = os.pipe()
    high = os.dup2(r, 1100)
    os.close(r)
    try:
        yield high, w
    finally:
        os.close(high)
        os.close(w)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_descriptor_past_fd_setsize_times_out_then_reads(high_pipe: tuple[int, int]) -> None:
    r, w = high_pipe
    assert r >= 1024
    assert readable(r, 0.01) is False
    os.write(w, b"x")
    assert readable(r, 0.5) is True
    assert readable(r, None) is True


def test_eof_counts_as_readable_and_objects_with_fileno_work() -> None:
    a, b = socket.socketpair()
    with a, b:
        assert readable(a, 0) is False
        b.close()
        assert readable(a, 0) is True
