"""The Go-template subset of `muslin --format`: outputs and errors as Go prints them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from muslin.cli import govalues as gv
from muslin.cli.gotemplate import Template, TemplateError
from muslin.cli.views import NetworkContext, typed

NET: dict[str, Any] = {
    "Name": "localnet", "Id": "3c1f7d9a2b4e" + "0" * 52, "Driver": "bridge",
    "Created": "2024-05-01T10:00:00.5Z", "Scope": "local", "EnableIPv6": False,
    "Internal": True,
    "IPAM": {"Driver": "default", "Options": None, "Config": [
        {"Subnet": "10.1.0.0/16", "Gateway": "10.1.0.1"},
        {"Subnet": "fd00::/64", "IPRange": "fd00::/80",
         "AuxiliaryAddresses": {"r": "fd00::2"}}]},
    "Containers": {"ab12": {"Name": "c1", "EndpointID": "e1", "MacAddress": "02:42:0a:01:00:02",
                            "IPv4Address": "10.1.0.2/16", "IPv6Address": ""}},
    "Options": {}, "Labels": {"env": "prod", "team": "net"},
}


def render(src: str, data: Any = NET, **kw: Any) -> str:
    return Template(src).execute(data, **kw)


@pytest.mark.parametrize(("src", "want"), [
    ("{{.Name}}", "localnet"),
    ("plain text", "plain text"),
    ("{{.IPAM.Driver}}", "default"),
    ('{{index .Labels "env"}}', "prod"),
    ('{{index .Labels "nope"}}', "<no value>"),
    ("{{len .Containers}}", "1"),
    ("{{len .IPAM.Config}}", "2"),
    ("{{len .Name}}", "8"),
    ("{{range .IPAM.Config}}{{.Subnet}},{{end}}", "10.1.0.0/16,fd00::/64,"),
    ("{{range $i, $c := .IPAM.Config}}{{$i}}={{$c.Subnet}} {{end}}",
     "0=10.1.0.0/16 1=fd00::/64 "),
    ("{{range $k, $v := .Labels}}{{$k}}:{{$v}};{{end}}", "env:prod;team:net;"),
    ("{{range .Labels}}{{.}}{{end}}", "prodnet"),
    ("{{range .Missing}}x{{else}}empty{{end}}", "empty"),
    ("{{range .Options}}x{{else}}none{{end}}", "none"),
    ("{{range .IPAM.Config}}{{if .Gateway}}{{.Gateway}}{{break}}{{end}}{{end}}", "10.1.0.1"),
    ("{{range .IPAM.Config}}{{if not .Gateway}}{{continue}}{{end}}{{.Subnet}}{{end}}",
     "10.1.0.0/16"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ('{{join (split "a,b,c" ",") "+"}}', "a+b+c"),
    ("{{join .Labels \",\"}}", "net,prod"),  # map values, sorted, as docker's join
    ("{{upper .Driver}} {{lower \"ABC\"}} {{title \"hello net-work\"}}",
     "BRIDGE abc Hello Net-Work"),
    ("{{.Driver | upper}}", "BRIDGE"),
    ('{{pad .Scope 1 2}}|{{pad "" 3 3}}|', " local  ||"),
    ("{{truncate .Id 12}}", "3c1f7d9a2b4e"),
    ("{{json .Labels}}", '{"env":"prod","team":"net"}'),
    ("{{json .IPAM.Options}}", "null"),
    ("{{json .Missing}}", "null"),
    ('{{json "a<b"}}', '"a<b"'),  # no HTML escaping, as docker
    ("{{.IPAM.Config}}",
     "[map[Gateway:10.1.0.1 Subnet:10.1.0.0/16] "
     "map[AuxiliaryAddresses:map[r:fd00::2] IPRange:fd00::/80 Subnet:fd00::/64]]"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Missing.Deeper}}", "<no value>"),
    ("{{.IPAM.Options}}", "<no value>"),
    ("{{if .Internal}}internal{{else}}public{{end}}", "internal"),
    ("{{if .EnableIPv6}}6{{else if .Internal}}i{{else}}x{{end}}", "i"),
    ("{{if and .Internal .EnableIPv6}}y{{else}}n{{end}}", "n"),
    ("{{or .Missing .Name}}", "localnet"),
    ("{{and .Name .Driver}}", "bridge"),
    ('{{if eq .Driver "macvlan" "bridge"}}match{{end}}', "match"),
    ('{{if ne .Driver "bridge"}}x{{else}}same{{end}}', "same"),
    ("{{if lt 1 2}}lt{{end}}{{if ge 2 2}}ge{{end}}", "ltge"),
    ("{{with .IPAM}}{{.Driver}}{{end}}", "default"),
    ("{{with .Missing}}x{{else}}nothing{{end}}", "nothing"),
    ("{{with $c := index .IPAM.Config 0}}{{$c.Gateway}}{{end}}", "10.1.0.1"),
    ("{{$n := .Name}}{{$n}}-{{$n = \"x\"}}{{$n}}", "localnet-x"),
    ("{{range .IPAM.Config}}{{$.Name}}{{end}}", "localnetlocalnet"),
    ("{{(index .IPAM.Config 1).IPRange}}", "fd00::/80"),
    ('{{printf "%s/%d %q %v %5s|%-4s|" .Name 7 "q" true "r" "l"}}',
     'localnet/7 "q" true     r|l   |'),
    ('{{print "a" 1 2 "b"}}', "a1 2b"),
    ('{{println "a" 1}}', "a 1\n"),
    ("{{slice .Name 0 5}}", "local"),
    ("{{- /* a comment */ -}}", ""),
    ("a  {{- .Scope -}}  b", "alocalb"),
    ("{{ .Scope }}", "local"),
    ('{{"quoted\\tstring"}}', "quoted\tstring"),
    ("{{`raw\\n`}}", "raw\\n"),
    ("{{'a'}} {{0x10}} {{1.5}} {{-3}} {{true}}", "97 16 1.5 -3 true"),
    ("{{nil | print}}", "<nil>"),
])
def test_render(src: str, want: str) -> None:
    assert render(src) == want


def test_json_numbers_stay_as_written() -> None:
    data = gv.loads_use_number('{"MTU": 1500, "Ratio": 1.50, "Big": 12345678901234567890}')
    assert render("{{.MTU}} {{.Ratio}} {{.Big}} {{json .}}", data) == (
        '1500 1.50 12345678901234567890 {"Big":12345678901234567890,"MTU":1500,"Ratio":1.50}')


def test_typed_struct_prints_like_go() -> None:
    t = typed("network.Inspect", NET)
    assert render("{{.IPAM.Config}}", t) == (
        "[{10.1.0.0/16  10.1.0.1 map[]} {fd00::/64 fd00::/80  map[r:fd00::2]}]")
    assert render("{{.Created}}", t) == "2024-05-01 10:00:00.5 +0000 UTC"
    assert render("{{.ID}} {{.IPAM.Options}} {{.ConfigFrom}}", t) == (
        NET["Id"] + " map[] {}")
    assert render("{{.Containers}}", t) == (
        "map[ab12:{c1 e1 02:42:0a:01:00:02 10.1.0.2/16 }]")
    assert render("{{range .IPAM.Config}}{{.AuxAddress}}{{end}}", t) == "map[]map[r:fd00::2]"
    # json of a typed struct: Go's field order and omitempty, nil maps stay null
    assert render("{{json .IPAM}}", t) == (
        '{"Driver":"default","Options":null,"Config":[{"Subnet":"10.1.0.0/16",'
        '"Gateway":"10.1.0.1"},{"Subnet":"fd00::/64","IPRange":"fd00::/80",'
        '"AuxiliaryAddresses":{"r":"fd00::2"}}]}')
    with pytest.raises(TemplateError,
                       match=re.escape("can't evaluate field Id in type network.Inspect")):
        render("{{.Id}}", t)


def test_formatter_context_methods() -> None:
    row = NetworkContext(NET, trunc=True)
    assert render("{{.ID}} {{.Name}} {{.IPv6}} {{.Internal}} {{.Labels}}", row) == (
        "3c1f7d9a2b4e localnet false true env=prod,team=net")
    assert render('{{.Label "team"}}|{{.Label "nope"}}|', row) == "net||"
    assert render("{{.CreatedAt}}", row) == "2024-05-01 10:00:00.5 +0000 UTC"
    assert render("{{json .}}", row) == (
        '{"CreatedAt":"2024-05-01 10:00:00.5 +0000 UTC","Driver":"bridge",'
        '"ID":"3c1f7d9a2b4e","IPv6":"false","Internal":"true",'
        '"Labels":"env=prod,team=net","Name":"localnet","Scope":"local"}')


@pytest.mark.parametrize(("src", "message"), [
    ("{{.Name.Foo}}",
     'template: :1:2: executing "" at <.Name.Foo>: can\'t evaluate field Foo in type string'),
    ("{{.IPAM.Options.foo}}",
     'template: :1:2: executing "" at <.IPAM.Options.foo>: '
     "nil pointer evaluating interface {}.foo"),
    ("x\n{{index .IPAM.Config 7}}",
     'template: :2:2: executing "" at <index .IPAM.Config 7>: '
     "error calling index: index out of range: 7"),
    ("{{upper .Labels}}",
     'template: :1:2: executing "" at <upper .Labels>: '
     "wrong type for value; expected string; got map[string]interface {}"),
    ("{{len 3}}", 'template: :1:2: executing "" at <len 3>: error calling len: len of type int'),
    ("{{.Name 1}}", 'template: :1:2: executing "" at <.Name>: Name is not a method but '
                    "has arguments"),
    ("{{$x}}", "undefined variable: $x"),
    ("{{range .Name}}{{end}}", "range can't iterate over localnet"),
])
def test_exec_errors(src: str, message: str) -> None:
    with pytest.raises(TemplateError) as e:
        render(src)
    assert message in str(e.value)


def test_missingkey_error_and_partial_output() -> None:
    with pytest.raises(TemplateError, match='map has no entry for key "Nope"') as e:
        render("{{.Name}} {{.Nope}}", missingkey_error=True)
    assert e.value.partial == "localnet "


@pytest.mark.parametrize(("src", "message"), [
    ("{{nope .Name}}", 'template: :1: function "nope" not defined'),
    ("{{.Name", "template: :1: unclosed action"),
    ("{{if .Name}}x", "template: :1: unexpected EOF"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{if}}{{end}}", "template: :1: missing value for if"),
    ("{{break}}", "{{break}} outside {{range}}"),
    ('{{"open}}', "unterminated quoted string"),
    ("{{.Name | 3}}", "non executable command in pipeline stage 2"),
    ('{{template "x"}}', "not supported"),
    ("{{/* open", "unclosed comment"),
])
def test_parse_errors(src: str, message: str) -> None:
    with pytest.raises(TemplateError) as e:
        Template(src)
    assert message in str(e.value)


def test_header_functions_keep_headers() -> None:
    headers = {"Name": "NAME", "Driver": "DRIVER"}
    t = Template("{{upper .Name}}\t{{json .Driver}}\t{{truncate .Name 2}}\t{{pad .Name 1 1}}")
    assert t.execute(headers, funcs=gv.HEADER_FUNCS) == "NAME\tDRIVER\tNAME\t NAME "


@pytest.mark.parametrize(("value", "text"), [
    (1e6, "1e+06"), (123456.0, "123456"), (1234567.0, "1.234567e+06"), (0.0001, "0.0001"),
    (0.00001, "1e-05"), (-2.5, "-2.5"), (0.0, "0"), (100.0, "100"),
])
def test_float_printing_like_go(value: float, text: str) -> None:
    assert gv.sprint_value(value) == text
