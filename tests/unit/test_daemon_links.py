"""muslin.daemon.containers' pure helpers for --link and ndots (no root)."""

from __future__ import annotations

import pytest

from muslin.daemon.containers import _ndots_set, parse_links
from muslin.errors import InvalidParameter


def test_parse_links_takes_docker_cli_and_engine_forms() -> None:
    assert parse_links(None) == []
    assert parse_links(["c1:buddy", "c2", "/db:/web/data", "x:y"]) == [
        ("c1", "buddy"), ("c2", "c2"), ("db", "data"), ("x", "y")]
    for bad in ("c1", ["c1", 3], [":alias"], ["bad name:x"]):
        with pytest.raises(InvalidParameter, match=r"HostConfig\.Links"):
            parse_links(bad)


def test_ndots_set_only_above_zero_and_last_one_wins() -> None:
    assert _ndots_set(["ndots:2"]) and _ndots_set(["ndots:0", "ndots:1"])
    assert not _ndots_set([]) and not _ndots_set(["ndots:0"])
    assert not _ndots_set(["ndots:2", "ndots:0"]) and not _ndots_set(["ndots:x"])
    assert not _ndots_set(["timeout:3", "attempts:2"])
