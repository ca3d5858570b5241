"""docker-py against muslind: IPAM config round trip, filters, and Docker's errors with
their status codes; random create bodies never give a 5xx nor leave a half-made network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import docker
import pytest
from docker.types import IPAMConfig, IPAMPool
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from daemon import Muslind

pytestmark = pytest.mark.kernel


@pytest.fixture
def client(muslind: Muslind) -> Iterator[docker.APIClient]:
    c = docker.APIClient(base_url=f"unix://{muslind.socket}", version="auto")
    yield c
    c.close()


def test_ipam_config_round_trip_and_filters(client: docker.APIClient) -> None:
    ipam = IPAMConfig(pool_configs=[IPAMPool(
        subnet="172.28.0.0/16", iprange="172.28.5.0/24", gateway="172.28.5.254",
        aux_addresses={"a": "172.28.1.5", "b": "172.28.1.6", "c": "172.28.1.7"})])
    created = client.create_network("ipamnet", driver="bridge", ipam=ipam)
    doc = client.inspect_network(created["Id"])
    assert doc["IPAM"]["Config"] == [{
        "Subnet": "172.28.0.0/16", "IPRange": "172.28.5.0/24", "Gateway": "172.28.5.254",
        "AuxiliaryAddresses": {"a": "172.28.1.5", "b": "172.28.1.6", "c": "172.28.1.7"}}]
    client.create_network("other")
    assert [n["Name"] for n in client.networks(names=["ipamnet"])] == ["ipamnet"]
    assert [n["Name"] for n in client.networks(ids=[created["Id"][:6]])] == ["ipamnet"]
    custom = client.networks(filters={"type": "custom"})
    assert sorted(n["Name"] for n in custom) == ["ipamnet", "other"]


def status_of(muslind: Muslind, method: str, path: str, body: Any = None, *,
              raw: bytes | None = None) -> tuple[int, Any]:
    return muslind.request(method, "/v1.47" + path, body, raw=raw)


def test_bad_input_status_codes(muslind: Muslind) -> None:
    assert status_of(muslind, "POST", "/networks/create", {"Name": "dup"})[0] == 201
    before = status_of(muslind, "GET", "/networks")[1]
    cases = [
        ({"Name": "dup"}, 409, "already exists"),
        ({"Name": "h2", "Driver": "host"}, 403, 'only one instance of "host"'),
        ({"Name": "host"}, 403, "pre-defined"),
        ({"Name": "bad", "IPAM": {"Config": [{"Subnet": "300.1.1.0/24"}]}}, 400, "subnet"),
        ({"Name": "bad", "Driver": "nosuch"}, 404, 'plugin "nosuch" not found'),
        ({"Name": "bad", "Internal": "yes"}, 400, "Internal"),
        ({"Name": "bad", "Options": {"k": 1}}, 400, "Options[k]"),
    ]
    for body, status, text in cases:
        got, answer = status_of(muslind, "POST", "/networks/create", body)
        assert (got, text in answer["message"]) == (status, True), (body, got, answer)
    got, answer = status_of(muslind, "POST", "/networks/create", raw=b"{not json")
    assert got == 400 and "invalid JSON" in answer["message"]
    assert status_of(muslind, "DELETE", "/networks/bridge")[0] == 403
    assert status_of(muslind, "DELETE", "/networks/nosuch")[0] == 404
    assert status_of(muslind, "GET", "/networks/nosuch")[0] == 404
    bogus = quote(json.dumps({"bogus": ["x"]}))
    assert status_of(muslind, "GET", f"/networks?filters={bogus}")[0] == 400
    assert status_of(muslind, "GET", "/networks")[1] == before
    assert muslind.request("GET", "/v1.40/version")[0] == 400
    assert muslind.request("POST", "/v1.47/swarm/leave")[0] == 503
    assert muslind.request("GET", "/v1.47/plugins") == (200, [])


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(
        ["", "x", "bridge", "host", "null", "10.0.0.0/24", "fd00::/64", "10.0.0.1",
         "300.1.1.0/24", "local", "swarm", "true"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["Subnet", "IPRange", "Gateway", "AuxiliaryAddresses", "Config",
                         "Driver", "Options", "k"]), children, max_size=3),
    max_leaves=8)

CREATE_BODY = st.fixed_dictionaries({}, optional={
    "Name": st.sampled_from(["rnd", "rnd2", "", "bad name", "bridge"]) | JSONISH,
    "Driver": st.sampled_from(["bridge", "host", "null", "nosuch", ""]) | JSONISH,
    "Internal": JSONISH, "Attachable": JSONISH, "EnableIPv6": JSONISH, "Ingress": JSONISH,
    "Scope": JSONISH, "Options": JSONISH, "Labels": JSONISH,
    "IPAM": st.fixed_dictionaries({}, optional={
        "Driver": st.sampled_from(["default", "nosuch"]) | JSONISH,
        "Config": st.lists(st.fixed_dictionaries({}, optional={
            "Subnet": st.sampled_from(["10.44.0.0/24", "10.44.0.0/16", "fd00:44::/64",
                                       "x", "10.44.0.1/24"]) | JSONISH,
            "IPRange": st.sampled_from(["10.44.0.0/25", "10.45.0.0/25"]) | JSONISH,
            "Gateway": st.sampled_from(["10.44.0.1", "10.44.0.0", "10.99.0.1"]) | JSONISH,
            "AuxiliaryAddresses": JSONISH}), max_size=2) | JSONISH,
        "Options": JSONISH}) | JSONISH,
})


def test_random_create_bodies_never_5xx_nor_half_made(muslind: Muslind) -> None:
    baseline = {n["Name"] for n in status_of(muslind, "GET", "/networks")[1]}

    @seed(20261128)
    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(CREATE_BODY)
    def check(body: dict[str, Any]) -> None:
        status, answer = status_of(muslind, "POST", "/networks/create", body)
        assert status < 500, (body, status, answer)
        if status == 201:
            doc = status_of(muslind, "GET", f"/networks/{answer['Id']}")[1]
            assert doc["Name"] == body["Name"]
            assert status_of(muslind, "DELETE", f"/networks/{answer['Id']}")[0] == 204
        names = {n["Name"] for n in status_of(muslind, "GET", "/networks")[1]}
        assert names == baseline, body

    check()
