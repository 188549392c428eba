"""B3 (single and multiple headers), Jaeger, and composing propagators from OTEL_PROPAGATORS names.

B3 rules are quoted from https://github.com/openzipkin/b3-propagation; Jaeger's from its
"Propagation Format" (``uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from autotrace.propagation import (
    B3MultiPropagator,
    B3SinglePropagator,
    BaggagePropagator,
    CaseInsensitiveGetter,
    CompositePropagator,
    JaegerPropagator,
    TraceContextPropagator,
    build_propagator,
)

T128 = "80f198ee56343ba864fe8b2a57d3eff7"
T64 = "64fe8b2a57d3eff7"
SPAN = "e457b5a2e4d86bd1"
PARENT = "05e3ac9a4f6e3b90"
T128_INT = int(T128, 16)
T64_INT = int(T64, 16)
SPAN_INT = int(SPAN, 16)
SAMPLED = (T128_INT, SPAN_INT, 1)
UNSAMPLED = (T128_INT, SPAN_INT, 0)

ARABIC_ONE = "\u0661"  # int() takes it as the digit 1
B3_PROPAGATORS = [
    pytest.param(B3SinglePropagator(), id="B3SinglePropagator"),
    pytest.param(B3MultiPropagator(), id="B3MultiPropagator"),
]


def ids_of(context: Context) -> tuple[int, int, int] | None:
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid:
        return None
    assert span_context.is_remote is True
    return span_context.trace_id, span_context.span_id, int(span_context.trace_flags)


def context_with(trace_id: int = T128_INT, span_id: int = SPAN_INT, flags: int = 1) -> Context:
    span_context = SpanContext(trace_id, span_id, False, TraceFlags(flags))
    return trace.set_span_in_context(NonRecordingSpan(span_context), Context())


def injected(propagator: TextMapPropagator, context: Context) -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context)
    return carrier


# ------------------------------------------------------------------ B3: extract

B3_CASES = [
    pytest.param({"b3": f"{T128}-{SPAN}-1"}, SAMPLED, id="single: Accept is 1"),
    pytest.param({"b3": f"{T128}-{SPAN}-1-{PARENT}"}, SAMPLED, id="single: with ParentSpanId"),
    pytest.param({"b3": f"{T128}-{SPAN}-0"}, UNSAMPLED, id="single: Deny is 0"),
    pytest.param({"b3": f"{T128}-{SPAN}-d"}, SAMPLED, id="single: Debug is d and implies accept"),
    pytest.param({"b3": f"{T128}-{SPAN}"}, UNSAMPLED, id="single: Defer (absent) reads as not sampled"),
    pytest.param(
        {"b3": f"{T64}-{SPAN}-1"}, (T64_INT, SPAN_INT, 1), id="single: 16-character TraceId left-padded"
    ),
    pytest.param({"b3": f" {T128}-{SPAN}-1 "}, SAMPLED, id="single: surrounding whitespace"),
    pytest.param({"b3": f"{T128}-{SPAN}-1, 0"}, SAMPLED, id="single: the first value wins"),
    pytest.param({"b3": "0"}, None, id="single: b3: 0 carries no ids, so no parent"),
    pytest.param({"b3": "1"}, None, id="single: b3: 1 carries no ids"),
    pytest.param({"b3": "d"}, None, id="single: b3: d carries no ids"),
    pytest.param({"b3": f"{T128}-{SPAN}-x"}, None, id="single: unknown sampling state"),
    pytest.param({"b3": f"{T128}-{SPAN}-true"}, None, id="single: true is not a sampling state"),
    pytest.param({"b3": f"{T128.upper()}-{SPAN}-1"}, None, id="single: TraceId is lower-hex"),
    pytest.param({"b3": f"{T128}-{SPAN.upper()}-1"}, None, id="single: SpanId is lower-hex"),
    pytest.param({"b3": f"{T128[:20]}-{SPAN}-1"}, None, id="single: TraceId is 32 or 16 characters"),
    pytest.param({"b3": f"{T128}-{SPAN[:15]}-1"}, None, id="single: SpanId is 16 characters"),
    pytest.param({"b3": f"{'0' * 32}-{SPAN}-1"}, None, id="single: zero TraceId"),
    pytest.param({"b3": f"{T128}-{'0' * 16}-1"}, None, id="single: zero SpanId"),
    pytest.param({"b3": f"{T128}-{SPAN}-1-xyz"}, None, id="single: ParentSpanId is 16 lower-hex"),
    pytest.param({"b3": f"{T128}-{SPAN}-1-{PARENT}-x"}, None, id="single: at most four fields"),
    pytest.param({"b3": f"{T128}--1"}, None, id="single: SpanId is required"),
    pytest.param(
        {"x-b3-traceid": T128, "x-b3-spanid": SPAN, "x-b3-sampled": "1"}, SAMPLED, id="multi: Sampled 1"
    ),
    pytest.param(
        {"x-b3-traceid": T128, "x-b3-spanid": SPAN, "x-b3-sampled": "0"}, UNSAMPLED, id="multi: Sampled 0"
    ),
    pytest.param({"x-b3-traceid": T128, "x-b3-spanid": SPAN}, UNSAMPLED, id="multi: absent means defer"),
    pytest.param(
        {"x-b3-traceid": T128, "x-b3-spanid": SPAN, "x-b3-flags": "1"},
        SAMPLED,
        id="multi: Debug is encoded as X-B3-Flags: 1",
    ),
    pytest.param(
        {"x-b3-traceid": T128, "x-b3-spanid": SPAN, "x-b3-sampled": "true"},
        SAMPLED,
        id="multi: a lenient implementation may accept true",
    ),
    pytest.param(
        {"x-b3-traceid": T128, "x-b3-spanid": SPAN, "x-b3-sampled": "false"},
        UNSAMPLED,
        id="multi: ... and false",
    ),
    pytest.param(
        {"x-b3-traceid": T64, "x-b3-spanid": SPAN, "x-b3-sampled": "1"},
        (T64_INT, SPAN_INT, 1),
        id="multi: 16-character TraceId left-padded",
    ),
    pytest.param(
        {"x-b3-traceid": [T128, T64], "x-b3-spanid": [SPAN], "x-b3-sampled": ["1", "0"]},
        SAMPLED,
        id="multi: When extracting state headers, the first value wins",
    ),
    pytest.param({"x-b3-traceid": T128, "x-b3-sampled": "1"}, None, id="multi: SpanId header is required"),
    pytest.param({"x-b3-spanid": SPAN, "x-b3-sampled": "1"}, None, id="multi: TraceId header is required"),
    pytest.param({"x-b3-traceid": T128.upper(), "x-b3-spanid": SPAN}, None, id="multi: lower-hex only"),
    pytest.param(
        {"b3": f"{T64}-{SPAN}-0", "x-b3-traceid": T128, "x-b3-spanid": SPAN, "x-b3-sampled": "1"},
        (T64_INT, SPAN_INT, 0),
        id="The single-header variant takes precedence over the multiple header one",
    ),
    pytest.param(
        {"b3": f"{T64}-{SPAN}-x", "x-b3-traceid": T128, "x-b3-spanid": SPAN, "x-b3-sampled": "1"},
        None,
        id="an invalid single header still takes precedence",
    ),
    pytest.param({}, None, id="no B3 headers"),
]


@pytest.mark.parametrize("propagator", B3_PROPAGATORS)
@pytest.mark.parametrize(("carrier", "expected"), B3_CASES)
def test_b3_extract_accepts_both_encodings(
    propagator: TextMapPropagator, carrier: dict[str, Any], expected: tuple[int, int, int] | None
) -> None:
    assert ids_of(propagator.extract(carrier)) == expected


@pytest.mark.parametrize("propagator", B3_PROPAGATORS)
def test_b3_header_names_in_other_case_need_the_case_insensitive_getter(
    propagator: TextMapPropagator,
) -> None:
    """'Http headers are case-insensitive': X-B3-TraceId as written in the B3 README."""
    carrier = {"X-B3-TraceId": T128, "X-B3-SpanId": SPAN, "X-B3-Sampled": "1"}
    assert ids_of(propagator.extract(carrier)) is None
    assert ids_of(propagator.extract(carrier, getter=CaseInsensitiveGetter())) == SAMPLED


# ------------------------------------------------------------------ B3: inject


@pytest.mark.parametrize(
    ("context", "header"),
    [
        pytest.param(context_with(), f"{T128}-{SPAN}-1", id="sampled"),
        pytest.param(context_with(flags=0), f"{T128}-{SPAN}-0", id="not sampled (Deny)"),
        pytest.param(context_with(flags=2), f"{T128}-{SPAN}-0", id="W3C random flag is not B3 sampling"),
        pytest.param(context_with(trace_id=T64_INT), f"{'0' * 16}{T64}-{SPAN}-1", id="64-bit id as 32"),
    ],
)
def test_b3_single_inject(context: Context, header: str) -> None:
    assert injected(B3SinglePropagator(), context) == {"b3": header}


@pytest.mark.parametrize(
    ("context", "headers"),
    [
        pytest.param(
            context_with(),
            {"x-b3-traceid": T128, "x-b3-spanid": SPAN, "x-b3-sampled": "1"},
            id="sampled",
        ),
        pytest.param(
            context_with(flags=0),
            {"x-b3-traceid": T128, "x-b3-spanid": SPAN, "x-b3-sampled": "0"},
            id="not sampled",
        ),
    ],
)
def test_b3_multi_inject(context: Context, headers: dict[str, str]) -> None:
    assert injected(B3MultiPropagator(), context) == headers


@pytest.mark.parametrize("propagator", B3_PROPAGATORS)
@pytest.mark.parametrize("context", [Context(), context_with(trace_id=0), context_with(span_id=0)])
def test_b3_inject_writes_nothing_without_a_valid_span(
    propagator: TextMapPropagator, context: Context
) -> None:
    assert injected(propagator, context) == {}


def test_b3_fields() -> None:
    assert B3SinglePropagator().fields == {"b3"}
    assert B3MultiPropagator().fields == {"x-b3-traceid", "x-b3-spanid", "x-b3-sampled"}


# ------------------------------------------------------------------ Jaeger

JAEGER = JaegerPropagator()

JAEGER_CASES = [
    pytest.param(f"{T128}:{SPAN}:0:1", SAMPLED, id="sampled flag 1"),
    pytest.param(f"{T128}:{SPAN}:0:01", SAMPLED, id="flags as two hex digits"),
    pytest.param(f"{T128}:{SPAN}:0:0", UNSAMPLED, id="flags 0"),
    pytest.param(f"{T128}:{SPAN}:0:3", SAMPLED, id="sampled and debug"),
    pytest.param(f"{T128}:{SPAN}:0:2", UNSAMPLED, id="only the sampled bit is read"),
    pytest.param(f"{T128}:{SPAN}:{PARENT}:1", SAMPLED, id="parent-span-id is deprecated and ignored"),
    pytest.param("abc:def:0:1", (0xABC, 0xDEF, 1), id="variable length: shorter values are 0-padded"),
    pytest.param(f"{T64}:{SPAN}:0:1", (T64_INT, SPAN_INT, 1), id="64-bit trace-id"),
    pytest.param(f"{T128.upper()}:{SPAN.upper()}:0:1", SAMPLED, id="base16 in either case"),
    pytest.param(f"{T128}%3A{SPAN}%3A0%3A1", SAMPLED, id="url-encoded colons are tolerated"),
    pytest.param(f"{T128}%3a{SPAN}%3a0%3a1", SAMPLED, id="url-encoding in lower case"),
    pytest.param(f" {T128}:{SPAN}:0:1 ", SAMPLED, id="surrounding whitespace"),
    pytest.param(f"{'0' * 32}:{SPAN}:0:1", None, id="trace-id: Value of 0 is invalid"),
    pytest.param(f"{T128}:0:0:1", None, id="span-id of 0 is invalid"),
    pytest.param(f"{T128}1:{SPAN}:0:1", None, id="trace-id longer than 128 bits"),
    pytest.param(f"{T128}:{SPAN}1:0:1", None, id="span-id longer than 64 bits"),
    pytest.param(f"{T128}:{SPAN}:0:001", None, id="flags is one byte"),
    pytest.param(f"{T128}:{SPAN}:1", None, id="three fields"),
    pytest.param(f"{T128}:{SPAN}:0:1:x", None, id="five fields"),
    pytest.param(f"{T128}:{SPAN}:0:g", None, id="flags are hex"),
    pytest.param("", None, id="empty"),
    pytest.param(f"{T128}:{SPAN}:0:1" + "%20" * 200, None, id="oversized value"),
]


@pytest.mark.parametrize(("value", "expected"), JAEGER_CASES)
def test_jaeger_extract(value: str, expected: tuple[int, int, int] | None) -> None:
    assert ids_of(JAEGER.extract({"uber-trace-id": value})) == expected


@pytest.mark.parametrize(
    ("carrier", "expected"),
    [
        pytest.param({"uberctx-user": "alice"}, {"user": "alice"}, id="uberctx-{key}: {value}"),
        pytest.param({"uberctx-user": "a%20b%E2%9C%93"}, {"user": "a b✓"}, id="values are url-encoded"),
        pytest.param({"Uberctx-User": "x"}, {"User": "x"}, id="the prefix in any case"),
        pytest.param({"uberctx-": "x"}, {}, id="an empty key is skipped"),
        pytest.param({"uberctx-a b": "x", "uberctx-k": "v"}, {"k": "v"}, id="a key that is not a token"),
        pytest.param({"uberctx-user": ["a", "b"]}, {"user": "a"}, id="the first value wins"),
        pytest.param({"uberctx-user": " a,b "}, {"user": "a,b"}, id="an unencoded comma stays in the value"),
        pytest.param({"other": "x"}, {}, id="other headers are not baggage"),
    ],
)
def test_jaeger_extract_baggage(carrier: dict[str, Any], expected: dict[str, object]) -> None:
    context = JAEGER.extract({"uber-trace-id": f"{T128}:{SPAN}:0:1", **carrier})
    assert dict(baggage.get_all(context)) == expected
    assert ids_of(context) == SAMPLED


def test_jaeger_baggage_is_extracted_without_a_valid_trace_id() -> None:
    context = JAEGER.extract({"uber-trace-id": "garbage", "uberctx-k": "v"})
    assert ids_of(context) is None
    assert dict(baggage.get_all(context)) == {"k": "v"}


def test_jaeger_baggage_is_limited_to_64_entries() -> None:
    carrier = {f"uberctx-k{n:03d}": "v" for n in range(100)}
    assert len(baggage.get_all(JAEGER.extract(carrier))) == 64


@pytest.mark.parametrize(
    ("context", "headers"),
    [
        pytest.param(context_with(), {"uber-trace-id": f"{T128}:{SPAN}:0:01"}, id="sampled"),
        pytest.param(context_with(flags=0), {"uber-trace-id": f"{T128}:{SPAN}:0:00"}, id="not sampled"),
        pytest.param(
            baggage.set_baggage("user", "a b/✓", context_with()),
            {"uber-trace-id": f"{T128}:{SPAN}:0:01", "uberctx-user": "a%20b%2F%E2%9C%93"},
            id="baggage as url-encoded uberctx- headers",
        ),
        pytest.param(
            baggage.set_baggage("k", "v", Context()), {"uberctx-k": "v"}, id="baggage without a span"
        ),
        pytest.param(Context(), {}, id="nothing to send"),
    ],
)
def test_jaeger_inject(context: Context, headers: dict[str, str]) -> None:
    assert injected(JAEGER, context) == headers


def test_jaeger_fields_name_only_the_trace_header() -> None:
    """Baggage header names depend on the baggage, so they cannot be listed."""
    assert JAEGER.fields == {"uber-trace-id"}


# ------------------------------------------------------------------ robustness and round trips

ODD_CARRIERS = [
    None,
    b"b3",
    "uber-trace-id",
    3,
    {"b3": None, "x-b3-traceid": [None], "uber-trace-id": 5},
    {"b3": b"\xff" * 10, "uber-trace-id": b"1:2:0:1"},
    {"b3": "-" * 100_000, "uber-trace-id": ":" * 100_000},
    {"x-b3-traceid": "0" * 1_000_000, "x-b3-spanid": SPAN},
    {"uberctx-k": "%", "uberctx-j": "%ff%fe", "uber-trace-id": "%zz"},
    {"b3": ARABIC_ONE * 16 + f"-{SPAN}-1"},
]


@pytest.mark.parametrize("carrier", ODD_CARRIERS)
@pytest.mark.parametrize("propagator", [B3SinglePropagator(), B3MultiPropagator(), JAEGER])
def test_extract_never_raises(propagator: TextMapPropagator, carrier: Any) -> None:
    context = propagator.extract(carrier)
    assert isinstance(context, Context)
    assert ids_of(context) is None


ROUND_TRIP = [B3SinglePropagator(), B3MultiPropagator(), JAEGER]
B3_SINGLE_RE = re.compile(r"[0-9a-f]{32}-[0-9a-f]{16}-[01]")
UBER_RE = re.compile(r"[0-9a-f]{32}:[0-9a-f]{16}:0:0[01]")


@settings(max_examples=200, derandomize=True)
@given(
    trace_id=st.integers(1, 2**128 - 1),
    span_id=st.integers(1, 2**64 - 1),
    flags=st.integers(0, 255),
)
def test_property_inject_round_trips(trace_id: int, span_id: int, flags: int) -> None:
    for propagator in ROUND_TRIP:
        carrier = injected(propagator, context_with(trace_id, span_id, flags))
        for value in (carrier.get("b3"), carrier.get("uber-trace-id")):
            assert value is None or B3_SINGLE_RE.fullmatch(value) or UBER_RE.fullmatch(value)
        assert ids_of(propagator.extract(carrier)) == (trace_id, span_id, flags & 1)


@settings(max_examples=200, derandomize=True)
@given(
    carrier=st.dictionaries(
        st.sampled_from(["b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags", "uber-trace-id"])
        | st.from_regex(r"uberctx-[ -~]{0,5}", fullmatch=True),
        st.one_of(
            st.text(max_size=50),
            st.from_regex(
                r"[0-9a-fA-F]{1,33}[-:%3A]{1,3}[0-9a-f]{1,17}([-:][0-9a-fd]{0,3}){0,3}", fullmatch=True
            ),
            st.lists(st.one_of(st.text(max_size=20), st.binary(max_size=10), st.none()), max_size=3),
            st.binary(max_size=20),
            st.none(),
        ),
        max_size=6,
    )
)
def test_property_extract_never_raises(carrier: dict[str, Any]) -> None:
    for propagator in ROUND_TRIP:
        assert isinstance(propagator.extract(carrier), Context)


# ------------------------------------------------------------------ composition


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("tracecontext", TraceContextPropagator),
        ("baggage", BaggagePropagator),
        ("b3", B3SinglePropagator),
        ("b3multi", B3MultiPropagator),
        ("jaeger", JaegerPropagator),
        (" TraceContext ", TraceContextPropagator),
    ],
)
def test_build_maps_each_otel_propagators_name(name: str, kind: type[TextMapPropagator]) -> None:
    propagator, unknown = build_propagator([name])
    assert type(propagator) is kind
    assert unknown == []


def test_build_composes_in_order() -> None:
    propagator, unknown = build_propagator(["tracecontext", "baggage"])
    assert isinstance(propagator, CompositePropagator)
    assert propagator.fields == {"traceparent", "tracestate", "baggage"}
    assert unknown == []
    context = baggage.set_baggage("k", "v", context_with())
    assert injected(propagator, context) == {"traceparent": f"00-{T128}-{SPAN}-01", "baggage": "k=v"}


def test_build_skips_unknown_names_and_returns_them() -> None:
    propagator, unknown = build_propagator(["xray", "tracecontext", "ottrace", "xray"])
    assert type(propagator) is TraceContextPropagator
    assert unknown == ["xray", "ottrace"]


def test_build_deduplicates() -> None:
    propagator, _ = build_propagator(["baggage", "baggage", "BAGGAGE"])
    assert type(propagator) is BaggagePropagator


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(["none"], id="none alone"),
        pytest.param(["tracecontext", "none"], id="none wins over other names, as in config"),
        pytest.param([], id="no names"),
        pytest.param(["nope"], id="only unknown names"),
    ],
)
def test_build_none_does_nothing(names: list[str]) -> None:
    propagator, _ = build_propagator(names)
    context = baggage.set_baggage("k", "v", context_with())
    assert injected(propagator, context) == {}
    start = Context()
    assert propagator.extract({"traceparent": f"00-{T128}-{SPAN}-01"}, start) is start
    assert isinstance(propagator.extract({}), Context)
    assert propagator.fields == set()


def test_composite_extract_later_propagators_override_earlier_ones() -> None:
    carrier = {"traceparent": f"00-{T128}-{SPAN}-01", "b3": f"{T64}-{SPAN}-0", "baggage": "k=v"}
    w3c_then_b3 = CompositePropagator([TraceContextPropagator(), B3SinglePropagator(), BaggagePropagator()])
    b3_then_w3c = CompositePropagator([B3SinglePropagator(), TraceContextPropagator()])
    context = w3c_then_b3.extract(carrier)
    assert ids_of(context) == (T64_INT, SPAN_INT, 0)
    assert dict(baggage.get_all(context)) == {"k": "v"}
    assert ids_of(b3_then_w3c.extract(carrier)) == SAMPLED


def test_composite_fields_are_a_copy() -> None:
    propagator = CompositePropagator([B3SinglePropagator()])
    propagator.fields.add("x")
    assert propagator.fields == {"b3"}


def test_composite_keeps_the_w3c_tracestate_when_b3_names_the_same_parent() -> None:
    from opentelemetry import trace as _trace

    from autotrace.propagation import build_propagator

    propagator, _ = build_propagator(["tracecontext", "b3multi"])
    carrier = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=value",
        "x-b3-traceid": "0af7651916cd43dd8448eb211c80319c",
        "x-b3-spanid": "b7ad6b7169203331",
        "x-b3-sampled": "1",
    }
    span_context = _trace.get_current_span(propagator.extract(carrier)).get_span_context()
    assert span_context.trace_state.to_header() == "vendor=value"
    carrier["x-b3-spanid"] = "00f067aa0ba902b7"  # a different parent: b3 wins, nothing carried over
    span_context = _trace.get_current_span(propagator.extract(carrier)).get_span_context()
    assert (span_context.span_id, len(span_context.trace_state)) == (0x00F067AA0BA902B7, 0)
