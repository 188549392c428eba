"""W3C Trace Context Level 2: traceparent and tracestate, extract and inject, one case per spec rule.

Case ids quote or paraphrase the rule (https://www.w3.org/TR/trace-context-2/); many cases are the
W3C conformance suite's own (test/test.py in w3c/trace-context), whose trace id they reuse.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from autotrace.propagation import CaseInsensitiveGetter, TraceContextPropagator, build_propagator

T = "12345678901234567890123456789012"
S = "1234567890123456"
T_INT = int(T, 16)
S_INT = int(S, 16)
VALID = f"00-{T}-{S}-01"
LETTERS = "4bf92f3577b34da6a3ce929d0e0e4736"  # the spec's example trace-id, with a-f in it

# int("\u0661", 16) == 1: a parser that trusted int() alone would accept it.
ARABIC_ONE = "\u0661"
PROPAGATOR = TraceContextPropagator()
TRACEPARENT_RE = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]")
TRACESTATE_MEMBER_RE = re.compile(
    r"[a-z0-9][a-z0-9_\-*/@]{0,255}=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)


def span_context_of(context: Context) -> SpanContext | None:
    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


def extract_ids(carrier: Any, getter: Getter[Any] | None = None) -> tuple[int, int, int] | None:
    context = PROPAGATOR.extract(carrier) if getter is None else PROPAGATOR.extract(carrier, getter=getter)
    span_context = span_context_of(context)
    if span_context is None:
        return None
    assert span_context.is_remote is True
    return span_context.trace_id, span_context.span_id, int(span_context.trace_flags)


def extract_state(tracestate: str | list[str], traceparent: str = VALID) -> list[tuple[str, str]]:
    span_context = span_context_of(PROPAGATOR.extract({"traceparent": traceparent, "tracestate": tracestate}))
    assert span_context is not None, "an invalid tracestate must not affect the traceparent"
    return list(span_context.trace_state.items())


def context_with(
    trace_id: int = T_INT, span_id: int = S_INT, flags: int = 1, state: TraceState | None = None
) -> Context:
    span_context = SpanContext(trace_id, span_id, False, TraceFlags(flags), state)
    return trace.set_span_in_context(NonRecordingSpan(span_context), Context())


def injected(context: Context) -> dict[str, str]:
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context)
    return carrier


# ------------------------------------------------------------------ traceparent: extract

SAMPLED = (T_INT, S_INT, 0x01)

TRACEPARENT_CASES = [
    pytest.param(VALID, SAMPLED, id="valid traceparent when caller sampled this request"),
    pytest.param(f"00-{T}-{S}-00", (T_INT, S_INT, 0), id="valid traceparent when caller didn't sample"),
    # HEXDIGLC = DIGIT / "a" / "b" / "c" / "d" / "e" / "f" ; lowercase hex character. The spec's own
    # example of an invalid id is one that "contains non-lowercase hex characters": upper case is
    # rejected, not normalised, in every field.
    pytest.param(f"00-{LETTERS.upper()}-{S}-01", None, id="HEXDIGLC: upper-case trace-id is invalid"),
    pytest.param(f"00-{LETTERS}-{S}-01", (int(LETTERS, 16), S_INT, 1), id="HEXDIGLC: lower-case a-f"),
    pytest.param(f"00-{T}-ABCDEF7890123456-01", None, id="HEXDIGLC: upper-case parent-id is invalid"),
    pytest.param(f"00-{T}-{S}-0A", None, id="HEXDIGLC: upper-case trace-flags are invalid"),
    pytest.param(f"CC-{T}-{S}-01", None, id="HEXDIGLC: upper-case version is invalid"),
    pytest.param(f"00-{'0' * 32}-{S}-01", None, id="trace-id all zeroes forbidden"),
    pytest.param(f"00-{T}-{'0' * 16}-01", None, id="parent-id all zeroes forbidden"),
    pytest.param(f"ff-{T}-{S}-01", None, id="Version ff is invalid"),
    pytest.param(f"00-{T}-{S}-01.", None, id="version 00 with trailing characters is invalid"),
    pytest.param(f"00-{T}-{S}-01-what-the-future-will-be-like", None, id="version 00 with extra fields"),
    pytest.param(f"00-{T}-{S}-01-", None, id="version 00 with a trailing dash is invalid"),
    pytest.param(f"cc-{T}-{S}-01", SAMPLED, id="higher version: parse the first 55 characters"),
    pytest.param(
        f"cc-{T}-{S}-01-what-the-future-will-be-like",
        SAMPLED,
        id="higher version: MUST NOT parse unknown fields after the dash",
    ),
    pytest.param(
        f"cc-{T}-{S}-01.what-the-future-will-be-like",
        None,
        id="higher version: flags MUST be at the end of the string or followed by a dash",
    ),
    pytest.param(f"cc-{T}-{S}-1", None, id="higher version shorter than 55 characters: restart"),
    pytest.param(f"cc-{T}-{S}-ff-x", (T_INT, S_INT, 0x03), id="higher version: only known flags are read"),
    pytest.param(f".0-{T}-{S}-01", None, id="version prefix is not 2 hex characters (first)"),
    pytest.param(f"0.-{T}-{S}-01", None, id="version prefix is not 2 hex characters (second)"),
    pytest.param(f"000-{T}-{S}-01", None, id="version too long"),
    pytest.param(f"0-{T}-{S}-01", None, id="version too short"),
    pytest.param(f"00-.{T[1:]}-{S}-01", None, id="trace-id with illegal characters"),
    pytest.param(f"00-{T}3-{S}-01", None, id="trace-id more than 32 HEXDIG"),
    pytest.param(f"00-{T[1:]}-{S}-01", None, id="trace-id less than 32 HEXDIG"),
    pytest.param(f"00-{T}-.{S[1:]}-01", None, id="parent-id with illegal characters"),
    pytest.param(f"00-{T}-{S}7-01", None, id="parent-id more than 16 HEXDIG"),
    pytest.param(f"00-{T}-{S[1:]}-01", None, id="parent-id less than 16 HEXDIG"),
    pytest.param(f"00-{T}-{S}-.0", None, id="trace-flags with illegal characters"),
    pytest.param(f"00-{T}-{S}-001", None, id="trace-flags more than 2 HEXDIG"),
    pytest.param(f"00-{T}-{S}-1", None, id="trace-flags less than 2 HEXDIG"),
    pytest.param(f" {VALID}", SAMPLED, id="OWS: leading space"),
    pytest.param(f"\t{VALID}", SAMPLED, id="OWS: leading tab"),
    pytest.param(f"{VALID} ", SAMPLED, id="OWS: trailing space"),
    pytest.param(f"{VALID}\t", SAMPLED, id="OWS: trailing tab"),
    pytest.param(f"\t {VALID} \t", SAMPLED, id="OWS: both sides"),
    pytest.param(f"{VALID}\n", None, id="OWS is SP / HTAB only: a newline is not whitespace here"),
    pytest.param(f"\r{VALID}", None, id="OWS is SP / HTAB only: a carriage return is not"),
    # "a flag 00000001 could be encoded as 01 in hex, or 09 in hex if present with the flag 00001000"
    pytest.param(f"00-{T}-{S}-09", SAMPLED, id="sampled is read with a mask; reserved bit 0x08 zeroed"),
    pytest.param(f"00-{T}-{S}-02", (T_INT, S_INT, 0x02), id="Level 2 random-trace-id flag kept"),
    pytest.param(f"00-{T}-{S}-03", (T_INT, S_INT, 0x03), id="sampled and random-trace-id kept"),
    pytest.param(f"00-{T}-{S}-ff", (T_INT, S_INT, 0x03), id="other flags: 'Vendors MUST set those to zero'"),
    pytest.param("", None, id="empty value"),
    pytest.param(" \t ", None, id="whitespace-only value"),
    pytest.param(f"00-{ARABIC_ONE * 32}-{S}-01", None, id="non-ASCII digits are not HEXDIGLC"),
    pytest.param(f"00-{T}-{S}-0{ARABIC_ONE}", None, id="non-ASCII digit in flags"),
    pytest.param(f"cc-{T}-{S}-01-" + "x" * 600, None, id="prohibitively large header is disallowed"),
]


@pytest.mark.parametrize(("value", "expected"), TRACEPARENT_CASES)
def test_traceparent_extract(value: str, expected: tuple[int, int, int] | None) -> None:
    assert extract_ids({"traceparent": value}) == expected


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([VALID, f"00-{T[:-1]}1-{S}-01"], id="two different traceparent fields"),
        pytest.param([VALID, VALID], id="the same traceparent field twice"),
        pytest.param([f"{VALID},00-{T[:-1]}1-{S}-01"], id="two fields combined with a comma"),
        pytest.param([f"cc-{T}-{S}-01-x, {VALID}"], id="combined fields of a higher version"),
    ],
)
def test_repeated_traceparent_starts_a_new_trace(values: list[str]) -> None:
    """W3C test suite, test_traceparent_duplicated: "harness sends a request with two traceparent
    headers, expects a valid traceparent from the output header, with a newly generated trace_id".
    traceparent is a single field; repeated it is invalid, and so no parent is extracted."""
    assert extract_ids({"traceparent": values, "tracestate": "foo=1"}) is None


def test_a_single_field_in_a_list_is_accepted() -> None:
    assert extract_ids({"traceparent": [VALID]}) == SAMPLED


class RecordingGetter(Getter[dict[str, Any]]):
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get(self, carrier: dict[str, Any], key: str) -> list[str] | None:
        self.asked.append(key)
        value = carrier.get(key)
        return None if value is None else [value]

    def keys(self, carrier: dict[str, Any]) -> list[str]:
        return list(carrier)


@pytest.mark.parametrize("traceparent", [f"00-{'0' * 32}-{S}-01", f"ff-{T}-{S}-01", "garbage"])
def test_invalid_traceparent_ignores_tracestate(traceparent: str) -> None:
    """'If the vendor failed to parse traceparent, it MUST NOT attempt to parse tracestate.'"""
    getter = RecordingGetter()
    start = Context()
    result = PROPAGATOR.extract({"traceparent": traceparent, "tracestate": "foo=1"}, start, getter)
    assert result is start
    assert getter.asked == ["traceparent"]


def test_tracestate_without_traceparent_is_discarded() -> None:
    """W3C suite, test_tracestate_included_traceparent_missing: the tracestate is discarded."""
    start = Context()
    assert PROPAGATOR.extract({"tracestate": "foo=1"}, start) is start


def test_extract_keeps_the_given_context_and_marks_the_parent_remote() -> None:
    start = Context({"other": 1})
    result = PROPAGATOR.extract({"traceparent": VALID}, start)
    assert result["other"] == 1
    span = trace.get_current_span(result)
    assert isinstance(span, NonRecordingSpan)
    assert span.get_span_context().is_remote is True


def test_extract_without_context_starts_from_the_root_context() -> None:
    result = PROPAGATOR.extract({})
    assert isinstance(result, Context)
    assert dict(result) == {}


def test_header_name_is_case_sensitive_with_the_default_getter() -> None:
    """The API's default getter looks keys up exactly; our middleware gives lower-case keys."""
    assert extract_ids({"TraceParent": VALID}) is None


@pytest.mark.parametrize("name", ["TraceParent", "TrAcEpArEnT", "TRACEPARENT", "traceparent"])
def test_header_name_in_any_case_with_the_case_insensitive_getter(name: str) -> None:
    """'Vendors MUST expect the header name in any case (upper, lower, mixed)'."""
    carrier = {name: VALID, "TraceState": "foo=1"}
    getter = CaseInsensitiveGetter()
    assert extract_ids(carrier, getter) == SAMPLED
    span_context = span_context_of(PROPAGATOR.extract(carrier, getter=getter))
    assert span_context is not None
    assert list(span_context.trace_state.items()) == [("foo", "1")]


def test_repeated_header_under_two_casings_is_still_repeated() -> None:
    carrier = {"traceparent": VALID, "TraceParent": f"00-{T[:-1]}1-{S}-01"}
    assert extract_ids(carrier, CaseInsensitiveGetter()) is None


@pytest.mark.parametrize(("name", "value"), [("trace-parent", VALID), ("trace.parent", VALID)])
def test_wrong_header_names_are_not_read(name: str, value: str) -> None:
    """W3C suite, test_traceparent_header_name."""
    assert extract_ids({name: value}, CaseInsensitiveGetter()) is None


# ------------------------------------------------------------------ tracestate: extract

KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")
MEMBERS_32 = ",".join(f"bar{n:02d}={n:02d}" for n in range(1, 33))

TRACESTATE_CASES = [
    pytest.param("foo=1", [("foo", "1")], id="a single list-member"),
    pytest.param(
        ["foo=1,bar=2", "rojo=1,congo=2", "baz=3"],
        [("foo", "1"), ("bar", "2"), ("rojo", "1"), ("congo", "2"), ("baz", "3")],
        id="multiple tracestate fields MUST be combined, in order",
    ),
    pytest.param(
        "foo=1 \t , \t bar=2, \t baz=3",
        [("foo", "1"), ("bar", "2"), ("baz", "3")],
        id="spaces and tabs surrounding list-members are ignored",
    ),
    pytest.param("\t foo=1 \t", [("foo", "1")], id="OWS around a single member"),
    pytest.param("foo=1,, ,\t,bar=2", [("foo", "1"), ("bar", "2")], id="empty list members are allowed"),
    pytest.param("", [], id="Vendors MUST accept empty tracestate headers"),
    pytest.param(["foo=1", ""], [("foo", "1")], id="an empty field after a member"),
    pytest.param(["", "foo=1"], [("foo", "1")], id="an empty field before a member"),
    pytest.param("foo=  x", [("foo", "  x")], id="all leading spaces MUST be preserved in the value"),
    pytest.param("foo=x  ", [("foo", "x")], id="trailing spaces are optional whitespace, not value"),
    pytest.param(f"{KEY_CHARS}={VALUE_CHARS}", [(KEY_CHARS, VALUE_CHARS)], id="all allowed characters"),
    # Level 2: key = ( lcalpha / DIGIT ) 0*255 ( keychar ) with "@" a keychar: the Level 1
    # tenant@system split (tenant <= 241, system <= 14 characters) is gone.
    pytest.param("0vendor=1", [("0vendor", "1")], id="L2 key: may begin with a digit"),
    pytest.param("foo@=1,bar=2", [("foo@", "1"), ("bar", "2")], id="L2 key: '@' may end the key"),
    pytest.param("foo@@bar=1", [("foo@@bar", "1")], id="L2 key: '@' may repeat"),
    pytest.param("foo@bar@baz=1", [("foo@bar@baz", "1")], id="L2 key: several '@'"),
    pytest.param("t" * 242 + "@v=1", [("t" * 242 + "@v", "1")], id="L2 key: no 241-character tenant limit"),
    pytest.param("t@" + "v" * 15 + "=1", [("t@" + "v" * 15, "1")], id="L2 key: no 14-character system limit"),
    pytest.param("z" * 256 + "=1", [("z" * 256, "1")], id="key of 256 characters"),
    pytest.param("foo=" + "v" * 256, [("foo", "v" * 256)], id="value of 256 characters"),
    pytest.param(MEMBERS_32, [(f"bar{n:02d}", f"{n:02d}") for n in range(1, 33)], id="32 list-members"),
]

DISCARDED_CASES = [
    pytest.param("@foo=1,bar=2", id="key MUST begin with a lowercase letter or a digit"),
    pytest.param("foo=1,FOO=1", id="upper-case key"),
    pytest.param("foo =1", id="space inside the member before '='"),
    pytest.param("foo.bar=1", id="'.' is not a keychar"),
    pytest.param("z" * 257 + "=1,foo=1", id="key of 257 characters"),
    pytest.param("foo=" + "v" * 257, id="value of 257 characters"),
    pytest.param("foo=bar=baz", id="value excludes '='"),
    pytest.param("foo=,bar=3", id="empty value: value = 0*255(chr) nblk-chr"),
    pytest.param("foo=a\tb", id="value excludes tabs"),
    pytest.param("foo=é", id="value is printable ASCII only"),
    pytest.param("foo", id="list-member without '='"),
    pytest.param("=1", id="list-member without key"),
    pytest.param("foo=1,foo=1", id="Only one entry per key is allowed (same value)"),
    pytest.param("foo=1,foo=2", id="Only one entry per key is allowed (different values)"),
    pytest.param(["foo=1", "foo=2"], id="duplicate key across two fields"),
    pytest.param(MEMBERS_32 + ",bar33=33", id="There can be a maximum of 32 list-members"),
    pytest.param(["bar00=00", MEMBERS_32], id="33 members across fields"),
    pytest.param("foo=1" + "," * 20_000, id="input too long to parse is discarded unread"),
]


@pytest.mark.parametrize(("tracestate", "expected"), TRACESTATE_CASES)
def test_tracestate_extract(tracestate: str | list[str], expected: list[tuple[str, str]]) -> None:
    assert extract_state(tracestate) == expected


@pytest.mark.parametrize("tracestate", DISCARDED_CASES)
def test_invalid_tracestate_is_discarded_whole_and_traceparent_still_used(
    tracestate: str | list[str],
) -> None:
    """'If the tracestate header cannot be parsed the vendor MAY discard the entire header' (the W3C
    suite at STRICT_LEVEL 2 expects that), and 'failure to parse tracestate MUST NOT affect the
    parsing of traceparent'."""
    assert extract_state(tracestate) == []
    assert extract_ids({"traceparent": VALID, "tracestate": tracestate}) == SAMPLED


def test_tracestate_is_read_for_a_higher_version() -> None:
    """'Vendors need to attempt to parse tracestate if a higher version is detected'."""
    assert extract_state("foo=1", traceparent=f"cc-{T}-{S}-01-future") == [("foo", "1")]


# ------------------------------------------------------------------ inject


@pytest.mark.parametrize(
    ("flags", "header"),
    [
        pytest.param(0x01, f"00-{T}-{S}-01", id="sampled"),
        pytest.param(0x00, f"00-{T}-{S}-00", id="not sampled: injected all the same"),
        pytest.param(0x02, f"00-{T}-{S}-02", id="random-trace-id flag propagated"),
        pytest.param(0x03, f"00-{T}-{S}-03", id="sampled and random-trace-id"),
        pytest.param(0xFF, f"00-{T}-{S}-03", id="reserved flags: 'Vendors MUST set those to zero'"),
    ],
)
def test_inject_traceparent(flags: int, header: str) -> None:
    assert injected(context_with(flags=flags)) == {"traceparent": header}


def test_inject_pads_small_ids() -> None:
    assert injected(context_with(trace_id=1, span_id=2)) == {
        "traceparent": f"00-{1:032x}-{2:016x}-01",
    }


@pytest.mark.parametrize(
    "context",
    [
        pytest.param(Context(), id="no span in the context"),
        pytest.param(context_with(trace_id=0), id="invalid trace id"),
        pytest.param(context_with(span_id=0), id="invalid span id"),
        pytest.param(context_with(trace_id=2**128), id="trace id out of range"),
    ],
)
def test_inject_writes_nothing_without_a_valid_span_context(context: Context) -> None:
    assert injected(context) == {}


def test_inject_writes_tracestate_in_order() -> None:
    state = TraceState([("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")])
    assert injected(context_with(state=state)) == {
        "traceparent": VALID,
        "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    }


def members(prefix: str, count: int, length: int) -> list[tuple[str, str]]:
    """``count`` list-members of exactly ``length`` characters each ("key=value")."""
    keys = [f"{prefix}{n:02d}" for n in range(count)]
    return [(key, "v" * (length - len(key) - 1)) for key in keys]


def header_of(entries: list[tuple[str, str]]) -> str:
    return ",".join(f"{key}={value}" for key, value in entries)


BIG1, BIG2 = members("big", 2, 250)
SMALL = members("s", 4, 10)
FORTY = members("f", 15, 40)
TRUNCATION_CASES = [
    pytest.param(FORTY[:12], FORTY[:12], id="491 characters: propagated whole"),
    pytest.param(
        [BIG1, *FORTY[:8]],
        FORTY[:8],
        id="Entries larger than 128 characters long SHOULD be removed first",
    ),
    pytest.param(
        [BIG1, *SMALL[:3], BIG2, SMALL[3]],
        [BIG1, *SMALL[:3], SMALL[3]],
        id="large entries removed only until the list fits, from the end",
    ),
    pytest.param(FORTY, FORTY[:12], id="Then entries SHOULD be removed starting from the end of tracestate"),
    pytest.param(
        [*members("x", 3, 200), *FORTY[:3]],
        [members("x", 1, 200)[0], *FORTY[:3]],
        id="large entries go, from the end, before any small one",
    ),
]


@pytest.mark.parametrize(("entries", "expected"), TRUNCATION_CASES)
def test_inject_truncates_tracestate_to_512_characters(
    entries: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> None:
    """'In a situation where tracestate needs to be truncated due to size limitations, the vendor
    MUST truncate whole entries.' We propagate 512 characters: 'Vendors SHOULD propagate at least
    512 characters of a combined header.'"""
    header = injected(context_with(state=TraceState(entries)))["tracestate"]
    assert header == header_of(expected)
    assert len(header) <= 512


def test_inject_writes_no_tracestate_when_empty() -> None:
    """'Vendors MUST accept empty tracestate headers but SHOULD avoid sending them.'"""
    assert "tracestate" not in injected(context_with(state=TraceState()))


def test_inject_writes_no_tracestate_when_truncation_leaves_nothing() -> None:
    """The longest list-member is 513 characters (256 + '=' + 256): alone it exceeds 512."""
    state = TraceState([("k" * 256, "v" * 256)])
    assert injected(context_with(state=state)) == {"traceparent": VALID}


def test_round_trip_keeps_level_2_keys() -> None:
    header = "0vendor=1,foo@bar@baz=2,t@" + "v" * 15 + "=3"
    context = PROPAGATOR.extract({"traceparent": f"00-{T}-{S}-03", "tracestate": header})
    assert injected(context) == {"traceparent": f"00-{T}-{S}-03", "tracestate": header}


def test_round_trip_after_downgrading_a_higher_version() -> None:
    """'Vendors MUST use these fields to construct the new traceparent field according to the highest
    version of the specification known to the implementation' (00)."""
    context = PROPAGATOR.extract({"traceparent": f"cc-{T}-{S}-ff-future"})
    assert injected(context) == {"traceparent": f"00-{T}-{S}-03"}


def test_fields() -> None:
    assert PROPAGATOR.fields == {"traceparent", "tracestate"}


# ------------------------------------------------------------------ robustness

ODD_CARRIERS = [
    None,
    b"traceparent",
    "traceparent",
    42,
    [("traceparent", VALID)],
    {"traceparent": b"00-" + T.encode() + b"-" + S.encode() + b"-01"},
    {"traceparent": [None, 3, b"x"]},
    {"traceparent": 42},
    {"traceparent": None},
    {"traceparent": VALID, "tracestate": [None, 1, b"\xff\xfe"]},
    {"traceparent": "x" * 1_000_000},
    {"traceparent": VALID, "tracestate": "a=1," * 1_000_000},
    {"traceparent": ["x"] * 100_000},
    {"traceparent": "\udcff" + VALID},
]


@pytest.mark.parametrize("carrier", ODD_CARRIERS)
def test_extract_never_raises_on_odd_carriers(carrier: Any) -> None:
    result = PROPAGATOR.extract(carrier)
    assert isinstance(result, Context)
    span_context = span_context_of(result)
    if span_context is not None:  # only the valid traceparent with an oversized tracestate
        assert (span_context.trace_id, list(span_context.trace_state.items())) == (T_INT, [])


ALL_PROPAGATORS = build_propagator(["tracecontext", "baggage", "b3", "b3multi", "jaeger"])[0]
HEADER_NAMES = st.sampled_from(
    [
        "traceparent",
        "tracestate",
        "baggage",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "uber-trace-id",
        "uberctx-k",
    ]
)
FIELD = st.one_of(
    st.text(max_size=80),
    st.from_regex(
        r"[ \t]?[0-9a-fA-F]{2}-[0-9a-f]{30,33}-[0-9a-f]{15,17}-[0-9a-f]{1,3}(-.{0,5})?", fullmatch=True
    ),
    st.from_regex(r"[a-z0-9@*/_-]{1,6}=[ -~]{0,6}(,[ \t]*[a-z0-9@]{1,4}=[ -~]{0,4}){0,4}", fullmatch=True),
    st.binary(max_size=40),
    st.integers(),
    st.none(),
)
CARRIERS = st.one_of(
    st.none(),
    st.binary(max_size=20),
    st.text(max_size=20),
    st.integers(),
    st.lists(FIELD, max_size=3),
    st.dictionaries(
        st.one_of(HEADER_NAMES, st.text(max_size=10)),
        st.one_of(FIELD, st.lists(FIELD, max_size=3)),
        max_size=6,
    ),
)


@settings(max_examples=200, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(carrier=CARRIERS)
def test_property_extract_never_raises(carrier: Any) -> None:
    for propagator in (PROPAGATOR, ALL_PROPAGATORS):
        assert isinstance(propagator.extract(carrier), Context)
        assert isinstance(propagator.extract(carrier, getter=CaseInsensitiveGetter()), Context)


TS_KEY = st.from_regex(r"[a-z0-9][a-z0-9_\-*/@]{0,40}", fullmatch=True)
TS_VALUE = st.from_regex(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,60}[\x21-\x2b\x2d-\x3c\x3e-\x7e]", fullmatch=True)
TRACESTATES = st.dictionaries(TS_KEY, TS_VALUE, max_size=32).map(lambda d: header_of(list(d.items())))


@settings(max_examples=200, derandomize=True)
@given(
    trace_id=st.integers(1, 2**128 - 1),
    span_id=st.integers(1, 2**64 - 1),
    flags=st.integers(0, 255),
    tracestate=TRACESTATES,
)
def test_property_inject_round_trips_and_writes_valid_headers(
    trace_id: int, span_id: int, flags: int, tracestate: str
) -> None:
    traceparent = f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"
    first = span_context_of(PROPAGATOR.extract({"traceparent": traceparent, "tracestate": tracestate}))
    assert first is not None
    carrier = injected(trace.set_span_in_context(NonRecordingSpan(first)))
    assert TRACEPARENT_RE.fullmatch(carrier["traceparent"])
    sent = carrier.get("tracestate", "")
    sent_members = sent.split(",") if sent else []
    assert len(sent) <= 512
    assert len(sent_members) <= 32
    assert all(TRACESTATE_MEMBER_RE.fullmatch(member) for member in sent_members)
    original = tracestate.split(",") if tracestate else []
    if len(tracestate) <= 512:
        assert sent_members == original
    else:  # whole entries dropped, order kept
        assert sent_members == [member for member in original if member in sent_members]
    second = span_context_of(PROPAGATOR.extract(carrier))
    assert second is not None
    assert (second.trace_id, second.span_id, second.trace_flags) == (trace_id, span_id, flags & 0x03)
    assert [f"{k}={v}" for k, v in second.trace_state.items()] == sent_members
