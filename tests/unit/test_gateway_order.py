"""libnetwork's default-gateway ordering, as data."""

from __future__ import annotations

from muslin.cnm.gateway import Candidate, choose, order


def c(name: str, *, internal: bool = False, prio: int = 0, gw4: str | None = "10.0.0.1",
      gw6: str | None = None) -> Candidate:
    return Candidate(name, name, internal, prio, gw4, gw6)


def test_order_priority_internal_dualstack_name() -> None:
    cands = [c("b"), c("a"), c("z", prio=5), c("aa", internal=True, gw4=None), c("y", gw6="fd::1")]
    assert [x.network_name for x in order(cands)] == ["z", "y", "a", "b", "aa"]


def test_choose_skips_internal_and_splits_families() -> None:
    ep4, ep6 = choose([c("a", internal=True), c("b", gw4=None, gw6="fd::1"), c("c")])
    assert ep4 is not None and ep4.network_name == "c"
    assert ep6 is not None and ep6.network_name == "b"
    assert choose([c("x", internal=True)]) == (None, None)
