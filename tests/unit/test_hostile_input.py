"""Hostile input: whatever a client sends, the agent raises nothing, changes no response, sends on only
valid headers and records only attributes within the configured limits (docs/limits.md).

Three parts, each driven by hypothesis (derandomized, so a run is repeatable):

1. the propagators in ``autotrace.propagation``: arbitrary text, bytes read as Latin-1, near-valid
   values, many and repeated fields; extract never raises, and what extract+inject writes is always
   valid W3C Trace Context / Baggage (or b3 / jaeger) within the W3C limits. Valid input round-trips.
2. the ASGI and WSGI middleware around plain apps and real Starlette and Flask apps, with generated
   scopes and environs: the response is the one the app gives without the middleware, and every span
   attribute is a valid OTLP value within the limits.
3. SQL with NUL, lone surrogates and undecodable bytes through a real sqlite3 connection under the
   instrumentation: the driver's own result or exception is unchanged; ``sql.sanitize`` never raises.

The oracles below are written from the specifications, not taken from the code under test.
"""

from __future__ import annotations

import asyncio
import copy
import io
import re
import sqlite3
from collections.abc import Iterator
from typing import Any, Callable
from urllib.parse import unquote, unquote_to_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags

from autotrace import sdk, sql
from autotrace.config import Config
from autotrace.middleware import _server
from autotrace.middleware.asgi import GETTER as ASGI_GETTER
from autotrace.middleware.asgi import ASGIMiddleware
from autotrace.middleware.wsgi import WSGIMiddleware
from autotrace.propagation import CaseInsensitiveGetter, build_propagator
from tests.instrumentation.conftest import instrumented

# Captured before any test installs the sqlite3 instrumentation: the untraced twin of a connection.
PLAIN_SQLITE_CONNECT = sqlite3.connect
HYPOTHESIS = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,  # a shared 2-core machine: time is not what these tests measure
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ============================================================================ oracles (from the specs)

HEX = "0123456789abcdef"
# W3C Trace Context: version 00 as we write it, HEXDIGLC, flags sampled / random-trace-id only.
TRACEPARENT_OUT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-3]")
# Level 2 list-member: key = (lcalpha / DIGIT) 0*255(keychar); value = 0*255(chr) nblk-chr.
TRACESTATE_MEMBER = re.compile(
    r"([a-z0-9][a-z0-9_\-*/@]{0,255})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)
# W3C Baggage: key = token, value = *baggage-octet, "%" starting a valid percent-encoding.
BAGGAGE_MEMBER = re.compile(
    r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)=((?:[\x21\x23\x24\x26-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]|%[0-9A-Fa-f]{2})*)"
)
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
B3_SINGLE_OUT = re.compile(r"[0-9a-f]{32}-[0-9a-f]{16}-[01]")
UBER_OUT = re.compile(r"([0-9a-f]{32}):([0-9a-f]{16}):0:0[01]")
URL_ENCODED = re.compile(r"(?:[A-Za-z0-9_.\-~]|%[0-9A-F]{2})*")
# An HTTP field value we may send: visible ASCII, inner spaces only (no CR, LF, NUL, no obs-text); it
# may be empty (RFC 9110 field-value = *field-content): an empty baggage value is one.
FIELD_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?")
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
PROPAGATOR_NAMES = ["tracecontext", "baggage", "b3", "b3multi", "jaeger"]


def check_traceparent(value: str) -> tuple[int, int]:
    match = TRACEPARENT_OUT.fullmatch(value)
    assert match, value
    trace_id, span_id = (int(group, 16) for group in match.groups())
    assert trace_id and span_id, value  # "all bytes as zero ... is considered an invalid value"
    return trace_id, span_id


def check_tracestate(value: str) -> list[str]:
    assert len(value) <= 512, len(value)  # the most we send on ("at least 512" must be propagated)
    members = value.split(",")
    assert 1 <= len(members) <= 32, value
    keys = []
    for member in members:
        match = TRACESTATE_MEMBER.fullmatch(member)
        assert match, member
        keys.append(match.group(1))
    assert len(set(keys)) == len(keys), value  # "Only one entry per key is allowed"
    return members


def check_baggage(value: str) -> dict[str, str]:
    assert len(value.encode()) <= 8192, len(value)  # W3C Baggage "Limits"
    members = value.split(",")
    assert 1 <= len(members) <= 64, len(members)
    entries = {}
    for member in members:
        match = BAGGAGE_MEMBER.fullmatch(member)
        assert match, member
        unquote_to_bytes(match.group(2)).decode("utf-8")  # percent-encoded UTF-8, strictly
        entries[match.group(1)] = match.group(2)
    return entries


def check_outgoing(carrier: dict[str, str]) -> None:
    """Every header a propagator wrote is a valid HTTP field of its own format."""
    for name, value in carrier.items():
        assert isinstance(value, str) and FIELD_VALUE.fullmatch(value), (name, value)
        # Names are tokens; uberctx-{key} keeps the baggage key's case (names are case-insensitive).
        assert TOKEN.fullmatch(name) and (name == name.lower() or name.startswith("uberctx-")), name
    checks: dict[str, Callable[[str], object]] = {
        "traceparent": check_traceparent,
        "tracestate": check_tracestate,
        "baggage": check_baggage,
        "b3": lambda v: B3_SINGLE_OUT.fullmatch(v) or pytest.fail(v),
        "x-b3-traceid": lambda v: re.fullmatch("[0-9a-f]{32}", v) or pytest.fail(v),
        "x-b3-spanid": lambda v: re.fullmatch("[0-9a-f]{16}", v) or pytest.fail(v),
        "x-b3-sampled": lambda v: v in ("0", "1") or pytest.fail(v),
        "uber-trace-id": lambda v: UBER_OUT.fullmatch(v) or pytest.fail(v),
    }
    uberctx = {k: v for k, v in carrier.items() if k.startswith("uberctx-")}
    for name, value in carrier.items():
        if name in checks:
            checks[name](value)
        else:
            assert name in uberctx, f"unexpected header {name!r}"
    assert len(uberctx) <= 64
    assert sum(len(k) - 8 + len(v) + 2 for k, v in uberctx.items()) <= 8193
    for value in uberctx.values():
        assert URL_ENCODED.fullmatch(value), value
        unquote_to_bytes(value).decode("utf-8")


def check_extracted(context: Context, names: list[str]) -> None:
    span_context = trace.get_current_span(context).get_span_context()
    if span_context.is_valid:
        assert span_context.is_remote
        assert 0 < span_context.trace_id < 2**128 and 0 < span_context.span_id < 2**64
        assert span_context.trace_flags in range(4)
        assert len(span_context.trace_state) <= 32
    entries = baggage.get_all(context)
    # Each of baggage and jaeger (uberctx-*) keeps the W3C limit; what they read is merged.
    assert len(entries) <= 64 * len({"baggage", "jaeger"} & set(names))
    assert all(isinstance(k, str) and TOKEN.fullmatch(k) for k in entries)


# ============================================================================ strategies

any_char = st.characters(exclude_categories=())  # lone surrogates included
special = st.sampled_from([*",;=-:% \t\r\n\x00\x7f\x80\xff\u00b2\u0661\u2028\ufeff", "%zz", "%ff", "%"])
hostile_text = st.one_of(
    st.text(any_char, max_size=80),
    st.binary(max_size=120).map(lambda b: b.decode("latin-1")),  # what a server hands over
    st.lists(special, max_size=20).map("".join),
)


def hex_text(size: int) -> st.SearchStrategy[str]:
    return st.text(HEX, min_size=size, max_size=size)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """A value one edit away from ``base`` (often a valid one): where parsers slip."""
    text = draw(base)
    if not text or draw(st.booleans()):
        return text
    at = draw(st.integers(0, len(text)))
    noise = draw(st.one_of(special, any_char))
    edit = draw(st.sampled_from(["replace", "insert", "delete", "upper", "cut", "repeat"]))
    if edit == "replace":
        return text[:at] + noise + text[at + 1 :]
    if edit == "insert":
        return text[:at] + noise + text[at:]
    if edit == "delete":
        return text[:at] + text[at + 1 :]
    if edit == "upper":
        return text.upper()
    if edit == "cut":
        return text[:at]
    return text * draw(st.integers(2, 300))


traceparents = mutated(
    st.builds(
        "{}-{}-{}-{}".format,
        st.sampled_from(["00", "01", "cc", "ff", "0", "000"]) | hex_text(2),
        hex_text(32) | st.just("0" * 32),
        hex_text(16) | st.just("0" * 16),
        hex_text(2),
    )
)
tracestate_keys = st.from_regex(r"[a-z0-9][a-z0-9_\-*/@]{0,12}", fullmatch=True) | st.from_regex(
    r"[a-z][a-z0-9]{250,260}", fullmatch=True
)
tracestate_values = st.from_regex(
    r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,12}[\x21-\x2b\x2d-\x3c\x3e-\x7e]", fullmatch=True
)
tracestate_members = st.builds("{}={}".format, tracestate_keys, tracestate_values)
separators = st.sampled_from([",", ", ", " ,\t", ",,", ",\t"])


@st.composite
def joined(draw: st.DrawFn, member: st.SearchStrategy[str], max_members: int) -> str:
    members = draw(st.lists(member, max_size=max_members))
    out = members[:1]
    for item in members[1:]:
        out += [draw(separators), item]
    return "".join(out)


def sized(lengths: list[int]) -> str:
    """A valid list ``k0=vvv,k1=v,...`` of the given value sizes: near the member and length limits."""
    return ",".join(f"k{i}={'v' * n}" for i, n in enumerate(lengths))


def sized_lists(sizes: st.SearchStrategy[list[int]]) -> st.SearchStrategy[str]:
    return sizes.map(sized)


tracestates = mutated(
    joined(tracestate_members | hostile_text, 40)
    | sized_lists(st.lists(st.just(1), min_size=28, max_size=40))  # around 32 members
    | sized_lists(st.lists(st.integers(1, 80), max_size=32))  # around 512 characters
)
baggage_keys = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,10}", fullmatch=True)
baggage_values = st.from_regex(
    r"(?:[\x21\x23\x24\x26-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]|%[0-9A-Fa-f]{2}|%[^0-9A-Fa-f]?){0,12}",
    fullmatch=True,
) | st.integers(100, 9000).map(lambda n: "v" * n)
baggage_members = st.builds(
    "{}{}={}{}{}".format,
    baggage_keys,
    st.sampled_from(["", " ", "\t"]),
    baggage_values,
    st.sampled_from(["", ";p", ";p=v", "; p = v;q", ";=bad"]),
    st.sampled_from(["", " "]),
)
baggages = mutated(
    joined(baggage_members | hostile_text, 100)
    | sized_lists(st.lists(st.just(1), min_size=60, max_size=70))  # around 64 members
    | sized_lists(st.lists(st.integers(1, 1500), max_size=20))  # around 8192 bytes
)
b3_values = mutated(
    st.builds(
        "-".join,
        st.lists(
            st.one_of(hex_text(32), hex_text(16), st.sampled_from(["0", "1", "d", "true", ""])), max_size=5
        ),
    )
)
uber_values = mutated(
    st.builds(
        "{}:{}:{}:{}".format,
        st.text("0123456789abcdefABCDEF", min_size=1, max_size=33),
        st.text("0123456789abcdef", min_size=1, max_size=17),
        st.just("0") | hex_text(16),
        st.text(HEX, min_size=1, max_size=3),
    )
)
FIELD_VALUES: dict[str, st.SearchStrategy[str]] = {
    "traceparent": traceparents,
    "tracestate": tracestates,
    "baggage": baggages,
    "b3": b3_values,
    "x-b3-traceid": mutated(hex_text(32) | hex_text(16)),
    "x-b3-spanid": mutated(hex_text(16)),
    "x-b3-sampled": st.sampled_from(["0", "1", "true", "false", "d", ""]) | hostile_text,
    "x-b3-flags": st.sampled_from(["1", "0"]) | hostile_text,
    "uber-trace-id": uber_values,
    "uberctx-user": hostile_text,
    "uberctx-a%20b": hostile_text,
    "uberctx-": hostile_text,
}


@st.composite
def header_fields(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Headers as (lower-case name, value) pairs: any propagation field, any number of times.

    Half the time with one valid ``traceparent``: ``tracestate`` is read only beside one.
    """
    fields: list[tuple[str, str]] = []
    if draw(st.booleans()):
        fields.append(("traceparent", draw(st.builds("00-{}1-{}1-01".format, hex_text(31), hex_text(15)))))
    for name, values in FIELD_VALUES.items():
        times = draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))
        for _ in range(0 if fields and name == "traceparent" else times):
            fields.append((name, draw(values | hostile_text)))
    extra = st.tuples(st.from_regex(r"uberctx-[a-z!#]{0,8}|x-[a-z]{1,8}", fullmatch=True), hostile_text)
    fields += draw(st.lists(extra, max_size=5))
    return draw(st.permutations(fields))


def as_dict(fields: list[tuple[str, str]], shape: str) -> dict[str, Any]:
    """A carrier in one of the shapes a getter may meet: one string, a list of fields, bytes."""
    carrier: dict[str, Any] = {}
    for name, value in fields:
        carrier.setdefault(name, []).append(value)
    if shape == "first":
        return {k: v[0] for k, v in carrier.items()}
    if shape == "bytes":
        return {k: [x.encode("utf-8", "surrogatepass") for x in v] for k, v in carrier.items()}
    return carrier


# ============================================================================ 1. propagators

CHILD_TRACER = TracerProvider().get_tracer("hostile")


def extract_and_inject(names: list[str], carrier: Any, getter: Any = None) -> list[dict[str, str]]:
    """What the propagator sends on: for the extracted context itself and for a child span of it."""
    propagator, unknown = build_propagator(names)
    assert unknown == []
    context = propagator.extract(carrier) if getter is None else propagator.extract(carrier, getter=getter)
    check_extracted(context, names)
    direct: dict[str, str] = {}
    propagator.inject(direct, context)
    child = CHILD_TRACER.start_span("child", context=context)
    via_child: dict[str, str] = {}
    propagator.inject(via_child, trace.set_span_in_context(child, context))
    child.end()
    parent = trace.get_current_span(context).get_span_context()
    if parent.is_valid and "traceparent" in via_child:
        assert check_traceparent(via_child["traceparent"])[0] == parent.trace_id
    return [direct, via_child]


names_lists = st.lists(st.sampled_from(PROPAGATOR_NAMES), min_size=1, max_size=5, unique=True)


@HYPOTHESIS
@given(header_fields(), names_lists, st.sampled_from(["first", "fields", "bytes"]))
def test_extract_never_raises_and_inject_always_writes_valid_headers(
    fields: list[tuple[str, str]], names: list[str], shape: str
) -> None:
    carrier = as_dict(fields, shape)
    for out in extract_and_inject(names, carrier):
        check_outgoing(out)
    for out in extract_and_inject(names, carrier, CaseInsensitiveGetter()):
        check_outgoing(out)


@HYPOTHESIS
@given(header_fields(), names_lists, st.booleans())
def test_asgi_header_lists_any_bytes_any_case(
    fields: list[tuple[str, str]], names: list[str], upper: bool
) -> None:
    """The carrier the ASGI middleware hands over: (name, value) byte pairs, repeated names, any case."""
    headers = [
        ((name.upper() if upper else name).encode("latin-1"), value.encode("utf-8", "surrogatepass"))
        for name, value in fields
    ]
    for out in extract_and_inject(names, headers, ASGI_GETTER):
        check_outgoing(out)


@HYPOTHESIS
@given(st.one_of(st.none(), st.integers(), st.text(), st.binary(), st.lists(st.integers())), names_lists)
def test_carriers_that_are_not_mappings_give_no_parent(carrier: Any, names: list[str]) -> None:
    context = build_propagator(names)[0].extract(carrier)
    assert not trace.get_current_span(context).get_span_context().is_valid


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("traceparent", "00-" + "a" * 65536),
        ("tracestate", ",".join(f"k{i}=v" for i in range(5000))),
        ("tracestate", "k=" + "v" * 65536),
        ("baggage", ",".join(f"k{i}=v" for i in range(10000))),
        ("baggage", "k=" + "v" * 65536),
        ("b3", "a" * 65536),
        ("uber-trace-id", "%3A" * 30000),
    ],
    ids=lambda v: v if len(v) < 20 else f"{len(v)} chars",
)
def test_oversized_single_headers(name: str, value: str) -> None:
    valid = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    for out in extract_and_inject(PROPAGATOR_NAMES, {**valid, name: value}):
        check_outgoing(out)


@HYPOTHESIS
@given(st.lists(st.integers(1, 250), max_size=40), st.lists(st.integers(0, 2000), max_size=80))
def test_valid_lists_past_the_limits_are_sent_on_within_them(state: list[int], bags: list[int]) -> None:
    """What is sent on is what was received, less whole members, and within the limits."""
    sent_state, sent_baggage = sized(state), sized(bags)
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    carrier.update(tracestate=sent_state, baggage=sent_baggage)
    for out in extract_and_inject(["tracecontext", "baggage"], carrier):
        check_outgoing(out)
        if "tracestate" in out:
            assert set(out["tracestate"].split(",")) <= set(sent_state.split(","))
        if "baggage" in out:
            assert set(out["baggage"].split(",")) <= set(sent_baggage.split(","))


def test_thousands_of_repeated_fields() -> None:
    carrier = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": [f"k{i}=v" for i in range(10000)],
        "baggage": [f"k{i}={'v' * 100}" for i in range(10000)],
        **{f"uberctx-k{i}": "v" for i in range(2000)},
    }
    direct, _ = extract_and_inject(PROPAGATOR_NAMES, carrier)
    check_outgoing(direct)
    assert "tracestate" not in direct  # more than 32 members: discarded whole, as W3C allows
    assert 0 < len(check_baggage(direct["baggage"])) <= 64


@st.composite
def valid_tracestate(draw: st.DrawFn) -> list[str]:
    keys = draw(
        st.lists(st.from_regex(r"[a-z][a-z0-9_\-*/@]{0,8}", fullmatch=True), max_size=32, unique=True)
    )
    members = [f"{key}={draw(tracestate_values)}" for key in keys]
    while len(",".join(members)) > 512:  # within what every vendor must propagate
        members.pop()
    return members


@HYPOTHESIS
@given(hex_text(32), hex_text(16), st.sampled_from(["00", "01", "02", "03"]), valid_tracestate())
def test_valid_trace_context_round_trips(trace_id: str, span_id: str, flags: str, state: list[str]) -> None:
    if int(trace_id, 16) == 0 or int(span_id, 16) == 0:
        return
    traceparent = f"00-{trace_id}-{span_id}-{flags}"
    carrier = {"traceparent": traceparent, **({"tracestate": ",".join(state)} if state else {})}
    direct, via_child = extract_and_inject(["tracecontext"], carrier)
    assert direct == carrier
    assert via_child.get("tracestate") == carrier.get("tracestate")


@HYPOTHESIS
@given(
    st.dictionaries(
        st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}", fullmatch=True),
        st.text(st.characters(codec="utf-8"), max_size=40),
        max_size=64,
    )
)
def test_valid_baggage_round_trips(entries: dict[str, str]) -> None:
    context = Context()
    for key, value in entries.items():
        context = baggage.set_baggage(key, value, context)
    sent: dict[str, str] = {}
    build_propagator(["baggage"])[0].inject(sent, context)
    if not entries:
        assert sent == {}
        return
    check_outgoing(sent)
    if len(sent["baggage"]) < 8000:  # nothing was left out for size
        received = build_propagator(["baggage"])[0].extract(sent)
        assert dict(baggage.get_all(received)) == entries


@HYPOTHESIS
@given(st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1), st.sampled_from([0, 1]))
def test_b3_and_jaeger_round_trip(trace_id: int, span_id: int, sampled: int) -> None:
    span_context = SpanContext(trace_id, span_id, True, TraceFlags(sampled))
    context = trace.set_span_in_context(trace.NonRecordingSpan(span_context))
    for names in (["b3"], ["b3multi"], ["jaeger"]):
        propagator = build_propagator(names)[0]
        sent: dict[str, str] = {}
        propagator.inject(sent, context)
        check_outgoing(sent)
        back = trace.get_current_span(propagator.extract(sent)).get_span_context()
        assert (back.trace_id, back.span_id, back.trace_flags) == (trace_id, span_id, sampled)


# ============================================================================ 2. middleware

LIMITED = 64  # a small value length limit, so generated values go past it often
CAPTURED = "user-agent,x-h,traceparent,baggage,host,x-forwarded-for,content-type"
TRACING_ENV = {
    "OTEL_PROPAGATORS": "tracecontext,baggage,b3,jaeger",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": CAPTURED,
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE": "x-echo,content-type",
}


class Traced:
    """SDK objects as the agent builds them (the configured span limits), spans kept in memory."""

    def __init__(self, **env: str) -> None:
        self.config = Config.from_env({"OTEL_TRACES_EXPORTER": "none", **TRACING_ENV, **env}, argv=["tests"])
        assert self.config.problems == ()
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(span_limits=sdk.make_span_limits(self.config))
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracing = sdk.Tracing(self.config, provider, [])
        self.settings = _server.ServerSettings.from_tracing(self.tracing)
        self.outgoing: list[dict[str, str]] = []
        self.spans_seen = 0

    def take(self) -> tuple[list[ReadableSpan], list[dict[str, str]]]:
        spans, outgoing = list(self.exporter.get_finished_spans()), self.outgoing
        self.exporter.clear()
        self.outgoing = []
        return spans, outgoing

    def send_on(self) -> None:
        """What an instrumented HTTP client in the app would send onward (only while traced)."""
        if trace.get_current_span().get_span_context().is_valid:
            carrier: dict[str, str] = {}
            self.tracing.propagator.inject(carrier)
            self.outgoing.append(carrier)


TRACED = {"default": Traced(), "limited": Traced(OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT=str(LIMITED))}


def test_the_default_value_length_limit_is_8192() -> None:
    # The bound docs/limits.md states, and the one the checks below use for the default set-up.
    assert TRACED["default"].config.limits.attribute_value_length == 8192


def check_value(value: object, limit: int) -> None:
    if isinstance(value, str):
        assert len(value) <= limit, len(value)
        value.encode("utf-8")  # OTLP strings are UTF-8: a lone surrogate would fail the whole batch
    else:
        assert isinstance(value, (bool, int, float)), type(value)


def check_spans(traced: Traced, spans: list[ReadableSpan], outgoing: list[dict[str, str]]) -> None:
    limits = traced.config.limits
    # One request, one SERVER span; none when the caller's headers say "not sampled".
    assert len(spans) <= 1, [s.name for s in spans]
    traced.spans_seen += len(spans)
    for span in spans:
        attributes = dict(span.attributes or {})
        assert len(attributes) <= (limits.attribute_count or 128)
        for value in attributes.values():
            for item in value if isinstance(value, tuple) else (value,):
                check_value(item, limits.attribute_value_length or 8192)
        assert span.name in KNOWN_METHODS | {"HTTP"}, span.name
        assert attributes["http.request.method"] in KNOWN_METHODS | {"_OTHER"}
        assert span.name in (attributes["http.request.method"], "HTTP")
    encode_spans(spans).SerializeToString()  # what the exporter will do with them
    for carrier in outgoing:
        check_outgoing(carrier)


# ---------------------------------------------------------------- generated requests

token_methods = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}", fullmatch=True)
methods = st.one_of(
    st.sampled_from([*sorted(KNOWN_METHODS), "get", "Get", "PROPFIND", "QUERY", "_OTHER", "HTTP", ""]),
    token_methods,
    st.binary(max_size=24).map(lambda b: b.decode("latin-1")),
)
raw_paths = st.binary(max_size=60).map(lambda b: b"/" + b) | st.lists(
    st.sampled_from([b"/", b"%", b"%zz", b"%ff", b"%c3%28", b"%ed%a0%80", b"%00", b"..", b"\xff", b"a"]),
    max_size=12,
).map(lambda parts: b"/" + b"".join(parts))
queries = st.binary(max_size=60) | st.sampled_from([b"token=secret&a=%ff", b"a=%", b"%00=1", b"&&=&"])
header_names = st.sampled_from(
    [b"user-agent", b"x-h", b"host", b"x-forwarded-for", b"content-type", b"X-H", b"HOST", b"x-other"]
) | st.binary(min_size=1, max_size=12)
header_values = st.one_of(
    st.binary(max_size=80),
    st.sampled_from([b"a:\xb2", b"[::1]:\xb2", b"h:99999", b"[::1", b":80", b"\x00\r\n", b"\xc3\x28"]),
    st.just(b"v" * 65536),  # oversized
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, bytes, list[tuple[bytes, bytes]]]:
    headers = [(n.lower(), v) for n, v in draw(st.lists(st.tuples(header_names, header_values), max_size=12))]
    propagation = draw(header_fields())
    headers += [(n.encode("latin-1"), v.encode("utf-8", "surrogatepass")) for n, v in propagation]
    if draw(st.booleans()):
        headers += [(b"x-many", b"%d" % i) for i in range(draw(st.integers(100, 1000)))]
    return draw(methods), draw(raw_paths), draw(queries), draw(st.permutations(headers))


def asgi_scope(
    method: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]]
) -> dict[str, Any]:
    # As uvicorn and hypercorn build it: the path percent-decoded (UTF-8, errors replaced).
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }


def wsgi_environ(
    method: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]]
) -> dict[str, Any]:
    # PEP 3333: "native strings" are bytes decoded as Latin-1; the path percent-decoded.
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers:
        key = name.decode("latin-1").upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        environ[key] = value.decode("latin-1")  # a repeated header: the server keeps one (gunicorn joins)
    environ.pop("CONTENT_LENGTH", None)  # no body is sent
    return environ


# ---------------------------------------------------------------- the apps


def plain_asgi(traced: Traced) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        traced.send_on()
        body = repr((scope["method"], scope["path"], scope["query_string"], len(scope["headers"])))
        echo = scope["raw_path"].replace(b"\r", b"").replace(b"\n", b"")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-echo", echo)]})
        await send({"type": "http.response.body", "body": body.encode("utf-8", "backslashreplace")})

    return app


def starlette_app(traced: Traced) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def item(request: Request) -> PlainTextResponse:
        traced.send_on()
        text = f"{request.path_params['item_id']} {request.url.query} {dict(request.query_params)}"
        return PlainTextResponse(text.encode("utf-8", "backslashreplace"), headers={"x-echo": "1"})

    async def home(request: Request) -> PlainTextResponse:
        traced.send_on()
        return PlainTextResponse(f"{len(request.headers)} {request.headers.get('user-agent')!r}")

    return Starlette(routes=[Route("/", home, methods=["GET", "POST"]), Route("/{item_id}", item)])


def plain_wsgi(traced: Traced) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        traced.send_on()
        body = repr((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["QUERY_STRING"]))
        start_response("200 OK", [("X-Echo", "yes"), ("Content-Type", "text/plain")])
        return [body.encode("utf-8", "backslashreplace")]

    return app


def flask_app(traced: Traced) -> Any:
    from flask import Flask, request

    app = Flask("hostile")

    @app.route("/", methods=["GET", "POST"])
    def home() -> str:
        traced.send_on()
        return repr((request.method, request.path, request.query_string, len(request.headers)))

    @app.route("/<path:rest>")
    def rest(rest: str) -> str:
        traced.send_on()
        return repr((rest, dict(request.args)))

    return app.wsgi_app


def run_asgi(app: Any, scope: dict[str, Any]) -> tuple[str, Any]:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        asyncio.run(app(scope, receive, send))
    except Exception as exc:  # the app's own failure: it must be the same with the middleware
        return "raised", (type(exc), str(exc), sent)
    return "answered", sent


def run_wsgi(app: Any, environ: dict[str, Any]) -> tuple[str, Any]:
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))
        return lambda data: None

    try:
        body = app(environ, start_response)
        try:
            content = b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()
    except Exception as exc:
        return "raised", (type(exc), str(exc), started)
    return "answered", (started, content)


@pytest.fixture(params=sorted(TRACED))
def traced(request: pytest.FixtureRequest) -> Iterator[Traced]:
    chosen = TRACED[request.param]
    chosen.take()
    yield chosen


ASGI_APPS = {"plain": plain_asgi, "starlette": starlette_app}
WSGI_APPS = {"plain": plain_wsgi, "flask": flask_app}


@pytest.mark.parametrize("host", ["a:\u00b2", "[::1]:\u00b9", "a:\u0661", "a:\uff11"])
def test_a_host_port_of_non_ascii_digits_is_no_port(host: str) -> None:
    # str.isdigit() says yes to "²" (a Latin-1 byte, so it arrives from the wire), int() says no.
    assert _server.split_host(host)[1] is None


@pytest.mark.parametrize("kind", sorted(ASGI_APPS))
def test_asgi_middleware_changes_no_response_and_records_bounded_spans(traced: Traced, kind: str) -> None:
    app = ASGI_APPS[kind](traced)
    wrapped = ASGIMiddleware(app, traced.settings)

    @HYPOTHESIS
    @given(requests())
    def check(request: tuple[str, bytes, bytes, list[tuple[bytes, bytes]]]) -> None:
        scope = asgi_scope(*request)
        expected = run_asgi(app, copy.deepcopy(scope))
        assert traced.take() == ([], [])  # the untraced run: no span, nothing sent on
        assert run_asgi(wrapped, copy.deepcopy(scope)) == expected
        check_spans(traced, *traced.take())

    seen = traced.spans_seen
    check()
    assert traced.spans_seen - seen > 100  # most generated requests did make a span


@pytest.mark.parametrize("kind", sorted(WSGI_APPS))
def test_wsgi_middleware_changes_no_response_and_records_bounded_spans(traced: Traced, kind: str) -> None:
    app = WSGI_APPS[kind](traced)
    wrapped = WSGIMiddleware(app, traced.settings)

    @HYPOTHESIS
    @given(requests())
    def check(request: tuple[str, bytes, bytes, list[tuple[bytes, bytes]]]) -> None:
        environ = wsgi_environ(*request)
        plain, traced_environ = copy.deepcopy(environ), copy.deepcopy(environ)
        expected = run_wsgi(app, plain)
        assert traced.take() == ([], [])
        assert run_wsgi(wrapped, traced_environ) == expected
        check_spans(traced, *traced.take())

    seen = traced.spans_seen
    check()
    assert traced.spans_seen - seen > 100  # most generated requests did make a span


# ============================================================================ 3. SQL with odd bytes

odd_sql_pieces = st.sampled_from(
    [
        "SELECT ",
        "* ",
        "a ",
        "FROM t ",
        "WHERE a = ",
        "'x'",
        "'",
        '"',
        "--",
        "/*",
        "*/",
        "$$",
        "?",
        ":n",
        ";",
        "\x00",
        "\ud800",
        "\udcff",
        "\udc80'",
        "é",
        "\u2028",
        "\ufeff",
        "0x1F",
        "1e5",
        "X'00'",
        "INSERT INTO t VALUES (",
        ")",
    ]
)
odd_statements = st.one_of(
    st.lists(odd_sql_pieces | st.text(any_char, max_size=5), max_size=12).map("".join),
    st.binary(max_size=60).map(lambda b: "SELECT " + b.decode("utf-8", "surrogateescape")),
    st.text(any_char, max_size=60),
)
odd_parameters = st.lists(
    st.one_of(st.text(any_char, max_size=10), st.binary(max_size=10), st.integers(-(2**63), 2**63 - 1)),
    max_size=3,
)


def outcome(connect: Callable[..., sqlite3.Connection], call: Callable[[sqlite3.Connection], Any]) -> Any:
    """The driver's result, or its exception as type and message: what the app would see."""
    conn = connect(":memory:")
    try:
        conn.execute("CREATE TABLE t (a, b)")
        conn.execute("INSERT INTO t VALUES ('x', X'00ff')")
        try:
            cursor = call(conn)
            return "rows", cursor.fetchall(), cursor.description
        except Exception as exc:
            return "raised", type(exc), str(exc)
    finally:
        conn.close()


def test_sqlite3_with_odd_bytes_behaves_as_without_the_instrumentation() -> None:
    with instrumented("sqlite3") as rec:
        assert sqlite3.connect is not PLAIN_SQLITE_CONNECT  # the traced side really is traced

        @HYPOTHESIS
        @given(odd_statements, odd_parameters, st.sampled_from(["execute", "executemany", "executescript"]))
        def check(statement: str, parameters: list[Any], method: str) -> None:
            def call(conn: sqlite3.Connection) -> Any:
                cursor = conn.cursor()
                if method == "execute":
                    return cursor.execute(statement, parameters)
                if method == "executemany":
                    return cursor.executemany(statement, [parameters, parameters])
                return cursor.executescript(statement)

            expected = outcome(PLAIN_SQLITE_CONNECT, call)
            rec.clear()
            assert outcome(sqlite3.connect, call) == expected
            spans = rec.spans()
            assert spans, "the traced connection made no span"
            for span in spans:
                for value in dict(span.attributes or {}).values():
                    check_value(value, 8192)
                for event in span.events:
                    for value in dict(event.attributes or {}).values():
                        check_value(value, 8192)
                check_value(span.name, 255 + len("BATCH "))
            encode_spans(spans).SerializeToString()

        check()


def test_lone_surrogates_in_a_statement_become_replacement_characters() -> None:
    assert (
        sql.sanitize("SELECT \udc80 FROM t\ud800 WHERE a = '\udcff'")
        == "SELECT \ufffd FROM t\ufffd WHERE a = ?"
    )


class Unprintable:
    def __str__(self) -> str:
        return "SELECT \ud800 FROM t WHERE a = 'secret'"


@HYPOTHESIS
@given(
    st.one_of(
        odd_statements,
        st.text(any_char, max_size=300),
        st.binary(max_size=300),
        st.binary(max_size=300).map(bytearray),
        st.binary(max_size=300).map(lambda b: memoryview(b)),
        st.integers(),
        st.just(Unprintable()),
        st.integers(8000, 40000).map(lambda n: "SELECT '" + "\ud800" * n),
    ),
    st.booleans(),
)
def test_sanitize_never_raises_and_stays_bounded_and_exportable(statement: Any, mysql: bool) -> None:
    text = sql.sanitize(statement, mysql=mysql)
    assert isinstance(text, str) and len(text) <= sql.MAX_SCANNED + 2
    text.encode("utf-8")
    operation, table, summary = sql.summarize(text)
    assert len(summary) <= sql.MAX_SUMMARY
    for part in (operation, table or "", summary):
        part.encode("utf-8")
