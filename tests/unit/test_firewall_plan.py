"""The firewall planner, as data: no root, no kernel."""

from __future__ import annotations

from muslin.firewall import BridgeRules, expected_shape, network_add, network_remove
from muslin.firewall.plan import observed_shape, shape_differences, table_rebuild

A = BridgeRules("a" * 64, "br-aaaaaaaaaaaa", ("172.18.0.0/16", "fd00::/64"))
B = BridgeRules("b" * 64, "br-bbbbbbbbbbbb", ("172.19.0.0/16",), icc=False, internal=True)


def _adds(cmds: list[dict[str, object]], kind: str) -> list[dict[str, object]]:
    return [c["add"][kind] for c in cmds if "add" in c and kind in c["add"]]  # type: ignore[index]


def test_network_chains_and_dispatch() -> None:
    cmds = network_add("t", A)
    assert [c["name"] for c in _adds(cmds, "chain")] == [f"{A.tag}-from", f"{A.tag}-to",
                                                         f"{A.tag}-masq"]
    elems = {e["name"]: e["elem"] for e in _adds(cmds, "element")}
    assert elems["bridges"] == [A.bridge]
    assert elems["from_net"] == [[A.bridge, {"jump": {"target": f"{A.tag}-from"}}]]
    assert [e[0]["prefix"] for e in elems["masq4"]] == [{"addr": "172.18.0.0", "len": 16}]
    assert [e[0]["prefix"] for e in elems["masq6"]] == [{"addr": "fd00::", "len": 64}]


def test_internal_network_drops_and_has_no_masquerade() -> None:
    cmds = network_add("t", B)
    assert f"{B.tag}-masq" not in [c["name"] for c in _adds(cmds, "chain")]
    rules = _adds(cmds, "rule")
    from_rules = [r["expr"] for r in rules if r["chain"] == f"{B.tag}-from"]
    assert from_rules[0][-1] == {"drop": None}  # icc=false: own bridge dropped
    assert from_rules[-1] == [{"drop": None}]  # internal: nothing else leaves
    to_rules = [r["expr"] for r in rules if r["chain"] == f"{B.tag}-to"]
    assert to_rules == [[{"drop": None}]]


def test_remove_undoes_add_in_order() -> None:
    cmds = network_remove("t", A)
    kinds = [next(iter(c[next(iter(c))])) for c in cmds]
    assert kinds.index("element") < kinds.index("chain")  # dispatch goes before chains
    assert sum(1 for c in cmds if "delete" in c and "chain" in c["delete"]) == 3


def test_rebuild_shape_and_differences() -> None:
    cmds = table_rebuild("t", [A, B])
    # fold the element commands into their sets/maps, as libnftables lists them
    listing = [c["add"] for c in cmds if "add" in c and "table" not in c["add"]]
    holders = {x.get("set", x.get("map", {})).get("name"): x.get("set", x.get("map"))
               for x in listing if "set" in x or "map" in x}
    for x in listing:
        if "element" in x:
            holders[x["element"]["name"]].setdefault("elem", []).extend(x["element"]["elem"])
    observed = observed_shape([x for x in listing if "element" not in x])
    assert shape_differences(expected_shape([A, B]), observed, "t") == []
    assert shape_differences(expected_shape([A]), observed, "t") != []
    assert shape_differences(expected_shape([A]), None, "t") == [
        "nftables table inet t is missing"]
