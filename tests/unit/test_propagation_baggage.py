"""W3C Baggage: the ``baggage`` header, extract and inject, one case per spec rule.

Case ids quote or paraphrase https://www.w3.org/TR/baggage/ (sections "Definition", "value",
"property", "Limits").
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage
from opentelemetry.context import Context

from autotrace.propagation import BaggagePropagator, CaseInsensitiveGetter

PROPAGATOR = BaggagePropagator()
TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
OCTETS = r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
# baggage-string as we write it: list-members without properties or whitespace.
HEADER_RE = re.compile(rf"{TOKEN}={OCTETS}(,{TOKEN}={OCTETS})*")


def extracted(header: str | list[str], context: Context | None = None) -> dict[str, object]:
    return dict(baggage.get_all(PROPAGATOR.extract({"baggage": header}, context)))


def context_with(entries: dict[str, object]) -> Context:
    context = Context()
    for key, value in entries.items():
        context = baggage.set_baggage(key, value, context)
    return context


def injected(entries: dict[str, object]) -> dict[str, str]:
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context_with(entries))
    return carrier


def sized_members(count: int, length: int) -> list[str]:
    """``count`` list-members "kNN=xxx" of exactly ``length`` characters each."""
    return [f"k{n:02d}=" + "x" * (length - 4) for n in range(count)]


# ------------------------------------------------------------------ extract

EXTRACT_CASES = [
    pytest.param("key1=value1", {"key1": "value1"}, id="a single list-member"),
    pytest.param(
        "userId=alice,serverNode=DF%2028,isProduction=false",
        {"userId": "alice", "serverNode": "DF 28", "isProduction": "false"},
        id="spec example: single header",
    ),
    pytest.param(
        ["userId=alice", "serverNode=DF%2028,isProduction=false"],
        {"userId": "alice", "serverNode": "DF 28", "isProduction": "false"},
        id="Multiple baggage headers are allowed: combined",
    ),
    pytest.param(
        ["userId =   alice", "serverNode = DF%2028, isProduction = false"],
        {"userId": "alice", "serverNode": "DF 28", "isProduction": "false"},
        id="Values and names might begin and end with spaces (OWS not part of key or value)",
    ),
    pytest.param("\tk\t=\tv\t", {"k": "v"}, id="OWS includes horizontal tabs"),
    pytest.param("k=%E2%9C%93", {"k": "✓"}, id="A value contains a URL encoded UTF-8 string"),
    pytest.param(
        "k=%FF,j=%C3",
        {"k": "\ufffd", "j": "\ufffd"},
        id="sequences that do not match UTF-8 MUST be replaced with U+FFFD",
    ),
    pytest.param("k=a+b", {"k": "a+b"}, id="percent-encoding, not form-encoding: '+' stays '+'"),
    pytest.param("k=100%25", {"k": "100%"}, id="an encoded '%' decodes to '%'"),
    pytest.param("k=a=b==", {"k": "a=b=="}, id="value MAY contain any number of the equal sign"),
    pytest.param("k=", {"k": ""}, id="value = *baggage-octet: an empty value"),
    pytest.param(
        "key1=value1;property1;property2, key3=value3; propertyKey=propertyValue",
        {"key1": "value1", "key3": "value3"},
        id="spec example: properties are allowed (and not kept: the API has no slot)",
    ),
    pytest.param("k=v ; p = 1 ;q", {"k": "v"}, id="OWS around ';' and inside a property"),
    pytest.param(
        "a=1,bad key=2,b=2", {"a": "1", "b": "2"}, id="key = token: a space makes one member invalid"
    ),
    pytest.param("a=1,novalue,b=2", {"a": "1", "b": "2"}, id="a member without '=' is skipped"),
    pytest.param("a=1,=2,b=2", {"a": "1", "b": "2"}, id="a member without key is skipped"),
    pytest.param("a=1,c=x y,b=2", {"a": "1", "b": "2"}, id="baggage-octet excludes whitespace inside"),
    pytest.param('a=1,c="x",b=2', {"a": "1", "b": "2"}, id="baggage-octet excludes DQUOTE"),
    pytest.param("a=1,c=x\\y,b=2", {"a": "1", "b": "2"}, id="baggage-octet excludes backslash"),
    pytest.param("a=1,c=é,b=2", {"a": "1", "b": "2"}, id="baggage-octet is US-ASCII"),
    pytest.param("a=1,c(x)=1,b=2", {"a": "1", "b": "2"}, id="'(' is not a tchar"),
    pytest.param("a=1,c=1;=x,b=2", {"a": "1", "b": "2"}, id="property = key ...: a property needs a key"),
    pytest.param("a=1,c=1;,b=2", {"a": "1", "b": "2"}, id="an empty property is malformed"),
    pytest.param("a=1,c=1;p=x y,b=2", {"a": "1", "b": "2"}, id="property value is baggage-octets"),
    pytest.param("a=1,,  ,b=2", {"a": "1", "b": "2"}, id="empty members are skipped"),
    pytest.param("k=1,k=2", {"k": "2"}, id="Uniqueness of keys is not guaranteed: the last value wins"),
    pytest.param("K=1,k=2", {"K": "1", "k": "2"}, id="keys are case-sensitive"),
    pytest.param("!#$%&'*+-.^_`|~09AZaz=1", {"!#$%&'*+-.^_`|~09AZaz": "1"}, id="every tchar in a key"),
    pytest.param("", {}, id="an empty header"),
]


@pytest.mark.parametrize(("header", "expected"), EXTRACT_CASES)
def test_extract(header: str | list[str], expected: dict[str, object]) -> None:
    assert extracted(header) == expected


def test_extract_keeps_at_most_64_members() -> None:
    """'A platform MUST propagate all list-members up to at least 64 list-members'; more MAY be dropped."""
    header = ",".join(f"k{n}={n}" for n in range(70))
    assert extracted(header) == {f"k{n}": str(n) for n in range(64)}


def test_extract_counts_only_valid_members_towards_64() -> None:
    header = ",".join(["bad key=1"] * 10 + [f"k{n}={n}" for n in range(64)])
    assert len(extracted(header)) == 64


def test_extract_keeps_whole_members_within_8192_bytes() -> None:
    """'...if the resulting baggage-string would be 8192 bytes or less'; beyond, members MAY be dropped,
    never in part. Eight 1000-byte members use 8007 bytes; a ninth would not fit, "z=1" still does."""
    header = ",".join([*sized_members(10, 1000), "z=1"])
    expected: dict[str, object] = {f"k{n:02d}": "x" * 996 for n in range(8)}
    expected["z"] = "1"
    assert extracted(header) == expected


def test_extract_is_bounded_on_huge_input() -> None:
    entries = extracted(",".join(f"k{n}={n}" for n in range(200_000)))
    assert entries == {f"k{n}": str(n) for n in range(64)}


def test_extract_of_an_oversized_field_keeps_the_whole_members_before_the_cut() -> None:
    header = "a=1,b=2," + "c=" + "x" * 100_000
    assert extracted(header) == {"a": "1", "b": "2"}


def test_extract_merges_into_the_given_context() -> None:
    start = baggage.set_baggage("existing", "yes", Context())
    assert extracted("k=v", start) == {"existing": "yes", "k": "v"}


def test_extract_without_header_returns_the_given_context() -> None:
    start = Context({"x": 1})
    assert PROPAGATOR.extract({}, start) is start


def test_extract_without_context_starts_from_the_root_context() -> None:
    assert dict(PROPAGATOR.extract({})) == {}


def test_header_name_with_the_case_insensitive_getter() -> None:
    context = PROPAGATOR.extract({"Baggage": "k=v"}, getter=CaseInsensitiveGetter())
    assert dict(baggage.get_all(context)) == {"k": "v"}


@pytest.mark.parametrize(
    "carrier",
    [
        None,
        b"baggage",
        "baggage=1",
        7,
        {"baggage": None},
        {"baggage": 7},
        {"baggage": [None, 1, b"k=v"]},
        {"baggage": b"k=\xff"},
        {"baggage": "k=%" + "\udcff"},
        {"baggage": "k=v;" * 100_000},
    ],
)
def test_extract_never_raises(carrier: Any) -> None:
    assert isinstance(PROPAGATOR.extract(carrier), Context)


def test_bytes_fields_are_read_as_latin_1() -> None:
    assert extracted([b"k=v"]) == {"k": "v"}  # type: ignore[list-item]


# ------------------------------------------------------------------ inject

INJECT_CASES = [
    pytest.param({"userId": "alice"}, "userId=alice", id="a plain value is sent as it is"),
    pytest.param({"serverNode": "DF 28"}, "serverNode=DF%2028", id="spec example: space percent-encoded"),
    pytest.param({"k": "100%"}, "k=100%25", id="'%' itself MUST be percent-encoded"),
    pytest.param({"k": "✓"}, "k=%E2%9C%93", id="non-ASCII is percent-encoded UTF-8"),
    pytest.param({"k": 'a,b;c"d\\e'}, "k=a%2Cb%3Bc%22d%5Ce", id="comma, semicolon, DQUOTE, backslash"),
    pytest.param({"k": "a=b"}, "k=a=b", id="'=' is a baggage-octet and is sent as it is"),
    pytest.param({"k": " x "}, "k=%20x%20", id="leading/trailing spaces survive (they are not OWS)"),
    pytest.param({"k": ""}, "k=", id="an empty value"),
    pytest.param({"k": 5}, "k=5", id="a non-string value is sent as its text"),
    pytest.param(
        {"a": "1", "b c": "2", "d": "3"}, "a=1,d=3", id="a key that is not a token cannot be sent: skipped"
    ),
    pytest.param({"b": "2", "a": "1"}, "b=2,a=1", id="order is kept"),
    pytest.param({"k": "\ud800"}, "k=?", id="a lone surrogate has no UTF-8 form: sent as '?'"),
]


@pytest.mark.parametrize(("entries", "header"), INJECT_CASES)
def test_inject(entries: dict[str, object], header: str) -> None:
    assert injected(entries) == {"baggage": header}


def test_inject_writes_nothing_when_baggage_is_empty() -> None:
    assert injected({}) == {}


def test_inject_writes_nothing_when_no_key_can_be_sent() -> None:
    assert injected({"bad key": "v"}) == {}


def test_inject_sends_at_most_64_members() -> None:
    header = injected({f"k{n}": str(n) for n in range(70)})["baggage"]
    assert header == ",".join(f"k{n}={n}" for n in range(64))


def test_inject_sends_whole_members_within_8192_bytes() -> None:
    """'MUST NOT propagate any partial list-members': the one that does not fit is left out whole."""
    entries: dict[str, object] = {f"k{n:02d}": "x" * 996 for n in range(10)}
    entries["z"] = "1"
    header = injected(entries)["baggage"]
    assert header == ",".join([*sized_members(8, 1000), "z=1"])
    assert len(header.encode()) == 8011


def test_inject_counts_encoded_bytes() -> None:
    # 3000 "✓" encode to 27,000 bytes: too large to send at all.
    assert injected({"big": "✓" * 3000, "k": "v"}) == {"baggage": "k=v"}


def test_round_trip() -> None:
    entries: dict[str, object] = {"userId": "alice", "serverNode": "DF 28", "note": "a,b;c=%✓"}
    carrier = injected(entries)
    assert dict(baggage.get_all(PROPAGATOR.extract(carrier))) == entries


def test_fields() -> None:
    assert PROPAGATOR.fields == {"baggage"}


# ------------------------------------------------------------------ properties

KEYS = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}", fullmatch=True)
VALUES = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=200, derandomize=True)
@given(entries=st.dictionaries(KEYS, VALUES, max_size=20))
def test_property_injected_baggage_is_valid_and_re_extracts_the_same(entries: dict[str, str]) -> None:
    carrier = injected(dict(entries))
    if not entries:
        assert carrier == {}
        return
    header = carrier["baggage"]
    assert HEADER_RE.fullmatch(header)
    assert len(header.encode()) <= 8192
    assert dict(baggage.get_all(PROPAGATOR.extract(carrier))) == entries


FIELDS = st.one_of(
    st.text(max_size=60),
    st.from_regex(
        rf"[ \t]?{TOKEN}[ \t]?=[ \t]?[ -~]{{0,8}}(;[ -~]{{0,6}})?(,[ -~]{{0,12}}){{0,3}}", fullmatch=True
    ),
    st.binary(max_size=30),
    st.none(),
    st.integers(),
)


@settings(max_examples=200, derandomize=True)
@given(value=st.one_of(FIELDS, st.lists(FIELDS, max_size=4)))
def test_property_extract_never_raises_and_yields_only_valid_entries(value: Any) -> None:
    entries = baggage.get_all(PROPAGATOR.extract({"baggage": value}))
    assert len(entries) <= 64
    assert all(re.fullmatch(TOKEN, key) for key in entries)
    assert all(isinstance(item, str) for item in entries.values())
