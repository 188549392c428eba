"""Context propagators: W3C Trace Context Level 2, W3C Baggage, B3 (single and multi) and Jaeger.

Each propagator is an ``opentelemetry.propagators.textmap.TextMapPropagator``; ``build_propagator``
maps ``OTEL_PROPAGATORS`` names to them. The rules each one implements are quoted next to the code.

Header names. Every propagator looks up and writes lower-case names. The API's ``default_getter``
is case-sensitive, so a carrier must have lower-case keys, and the carriers our middleware builds
have them (ASGI and HTTP/2 names are lower-case already; WSGI ``HTTP_*`` names are turned back into
lower-case header names). For a hand-built mapping in other casings, pass
``getter=CaseInsensitiveGetter()``.

Robustness. ``extract`` never raises, whatever the carrier (None, bytes, odd lists, huge or non-ASCII
strings): a getter that fails on a carrier it was not written for counts as "no header", and every
parser is bounded in the input it reads, so hostile headers cost bounded time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Callable

__all__ = [
    "B3MultiPropagator",
    "B3SinglePropagator",
    "BaggagePropagator",
    "CaseInsensitiveGetter",
    "CompositePropagator",
    "JaegerPropagator",
    "TraceContextPropagator",
    "build_propagator",
]

_logger = logging.getLogger(__name__)

# What a getter may raise when handed a carrier it was not written for (None, a str, a list...).
# Extraction treats that as an absent header instead of failing the request.
_CARRIER_ERRORS = (AttributeError, TypeError, ValueError, LookupError, UnicodeError)
# Repeated header fields looked at; a carrier with more is hostile and the rest is ignored.
_MAX_FIELDS = 64
_OWS = " \t"


# --------------------------------------------------------------------------- shared helpers


def _field_values(raw: object) -> list[str]:
    """The getter's answer as a list of strings; anything that is not text (or bytes) is dropped."""
    if type(raw) is list and len(raw) == 1 and type(raw[0]) is str:
        return raw  # the common case: one header field, nothing to copy
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, (bytes, bytearray)):
        return [raw.decode("latin-1")]
    if not isinstance(raw, (list, tuple)):
        return []
    values: list[str] = []
    for item in raw[:_MAX_FIELDS]:
        if isinstance(item, str):
            values.append(item)
        elif isinstance(item, (bytes, bytearray)):
            # HTTP field values are ISO-8859-1 octets (RFC 9110 §5.5); latin-1 never fails.
            values.append(item.decode("latin-1"))
    return values


def _get(getter: Getter[CarrierT], carrier: CarrierT, key: str) -> list[str]:
    try:
        raw: object = getter.get(carrier, key)
    except _CARRIER_ERRORS:
        return []
    return _field_values(raw)


def _first_value(getter: Getter[CarrierT], carrier: CarrierT, key: str) -> str | None:
    """B3's rule for repeated fields: "When extracting state headers, the first value wins"."""
    values = _get(getter, carrier, key)
    if not values:
        return None
    # A comma-joined value is several fields combined (RFC 9110 §5.3); the first one wins too.
    return values[0].split(",", 1)[0].strip(_OWS)


def _remote_context(ids: tuple[int, int, int], state: TraceState | None, context: Context) -> Context:
    trace_id, span_id, flags = ids
    span_context = SpanContext(trace_id, span_id, True, TraceFlags(flags), state)
    return trace.set_span_in_context(NonRecordingSpan(span_context), context)


def _valid_span_context(context: Context | None) -> SpanContext | None:
    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


def _sampled_bit(span_context: SpanContext) -> int:
    return span_context.trace_flags & TraceFlags.SAMPLED


# --------------------------------------------------------------------------- W3C Trace Context

_TRACEPARENT = "traceparent"
_TRACESTATE = "tracestate"
# version "-" trace-id "-" parent-id "-" trace-flags, all HEXDIGLC: "lowercase hex character".
_TRACEPARENT_FIELDS = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_TRACEPARENT_LENGTH = 55
# "Pass-through services ... should only disallow prohibitively large headers": 512 is far above
# any version we could parse (we read 55 characters of it) and bounds the work on hostile input.
_MAX_TRACEPARENT_CHARS = 512
_ZERO_TRACE_ID = "0" * 32
_ZERO_PARENT_ID = "0" * 16
# Level 2 defines sampled (0x01) and random-trace-id (0x02); "The behavior of other flags ... is
# not defined and is reserved for future use. Vendors MUST set those to zero."
_KNOWN_FLAGS = TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID

# Level 2 key: ( lcalpha / DIGIT ) 0*255 ( keychar ), keychar = lcalpha / DIGIT / "_" / "-" / "*" /
# "/" / "@" (the Level 1 tenant@system split is gone). Value: 0*255(chr) nblk-chr, where
# nblk-chr = %x21-2B / %x2D-3C / %x3E-7E and chr = %x20 / nblk-chr.
_TRACESTATE_MEMBER = re.compile(
    r"([a-z0-9][a-z0-9_\-*/@]{0,255})=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)
# "There can be a maximum of 32 list-members in a list."
_MAX_TRACESTATE_MEMBERS = 32
# The longest valid list is 32 * (256 + 1 + 256) + 31 commas = 16,447 characters; allow some
# optional whitespace on top. Longer input is discarded unread, which bounds the parsing work.
_MAX_TRACESTATE_INPUT = 20_000
# "Vendors SHOULD propagate at least 512 characters of a combined header": that is our limit.
_TRACESTATE_PROPAGATED_CHARS = 512
_TRACESTATE_LARGE_ENTRY = 128


def _parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """(trace id, parent id, flags) from a traceparent value, or None when it must be ignored."""
    # A comma can only come from repeated fields joined into one (RFC 9110 §5.3): see extract().
    if len(value) > _MAX_TRACEPARENT_CHARS or "," in value:
        return None
    value = value.strip(_OWS)
    match = _TRACEPARENT_FIELDS.match(value)
    if match is None or not _version_allows(match.group(1), value):
        return None
    _, trace_hex, parent_hex, flags_hex = match.groups()
    # "All bytes as zero ... is considered an invalid value" for both ids.
    if trace_hex == _ZERO_TRACE_ID or parent_hex == _ZERO_PARENT_ID:
        return None
    return int(trace_hex, 16), int(parent_hex, 16), int(flags_hex, 16) & _KNOWN_FLAGS


def _version_allows(version: str, value: str) -> bool:
    if version == "00":
        # Version 00 is exactly the four fields: trailing data makes it invalid.
        return len(value) == _TRACEPARENT_LENGTH
    if version == "ff":
        return False  # "Version ff is invalid."
    # A higher version: "Vendors MUST check that the 2 characters [of flags] are either at the end
    # of the string or followed by a dash" and "MUST NOT parse ... unknown fields".
    return len(value) == _TRACEPARENT_LENGTH or value[_TRACEPARENT_LENGTH] == "-"


def _parse_tracestate(values: list[str]) -> list[tuple[str, str]] | None:
    """The list-members in order, or None when the header must be discarded as a whole.

    "If the tracestate header cannot be parsed the vendor MAY discard the entire header": an
    invalid member, a duplicated key or more than 32 members discard all of it, as the W3C test
    suite expects, rather than forwarding a list this process invented by dropping some members.
    """
    if sum(map(len, values)) > _MAX_TRACESTATE_INPUT:
        return None
    members: dict[str, str] = {}
    # "When receiving multiple tracestate header fields, they MUST be combined into a single header."
    for raw in ",".join(values).split(","):
        # "Spaces and horizontal tabs surrounding list-members are ignored"; empty members allowed.
        member = raw.strip(_OWS)
        if not member:
            continue
        match = _TRACESTATE_MEMBER.fullmatch(member)
        if match is None or len(members) == _MAX_TRACESTATE_MEMBERS:
            return None
        key, value = match.groups()
        if key in members:
            return None  # "Only one entry per key is allowed"
        members[key] = value
    return list(members.items())


class _ParsedTraceState(TraceState):
    """A TraceState holding members already checked against the Level 2 grammar.

    The API's constructor (1.45) validates keys with the older Level 1 grammar and would drop valid
    Level 2 keys such as ``0vendor`` or ``t@v@x``, so the checked members are stored directly.
    Should a future API store its entries elsewhere, its own (stricter) constructor is used.
    """

    def __init__(self, entries: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        store = self.__dict__.get("_dict")
        if isinstance(store, dict):
            store.update(entries)
        else:
            super().__init__(entries)


def _tracestate_header(state: Mapping[str, str]) -> str:
    # Entries that are not valid list-members could not be read back by anyone: leave them out.
    members = [member for member in map("=".join, state.items()) if _TRACESTATE_MEMBER.fullmatch(member)]
    return ",".join(_truncate_tracestate(members[:_MAX_TRACESTATE_MEMBERS]))


def _truncate_tracestate(members: list[str]) -> list[str]:
    """Fit the list into 512 characters.

    "the vendor MUST truncate whole entries. Entries larger than 128 characters long SHOULD be
    removed first. Then entries SHOULD be removed starting from the end of tracestate."
    """
    kept = list(members)
    for index in reversed(range(len(kept))):
        if _joined_length(kept) <= _TRACESTATE_PROPAGATED_CHARS:
            return kept
        if len(kept[index]) > _TRACESTATE_LARGE_ENTRY:
            del kept[index]
    while _joined_length(kept) > _TRACESTATE_PROPAGATED_CHARS:
        kept.pop()
    return kept


def _joined_length(members: list[str]) -> int:
    return sum(map(len, members)) + len(members) - 1


class TraceContextPropagator(TextMapPropagator):
    """W3C Trace Context Level 2: the ``traceparent`` and ``tracestate`` headers.

    Extraction keeps the sampled and random-trace-id flags and drops the reserved bits; injection
    writes version 00 with those two flags, and ``tracestate`` only when it has members.
    """

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        if context is None:
            context = Context()
        values = _get(getter, carrier, _TRACEPARENT)
        # traceparent is a single field: repeated, it is invalid (the W3C test suite's
        # test_traceparent_duplicated expects a new trace).
        ids = _parse_traceparent(values[0]) if len(values) == 1 else None
        if ids is None:
            if values:
                _logger.debug("ignoring invalid traceparent (%d field(s))", len(values))
            # "If the vendor failed to parse traceparent, it MUST NOT attempt to parse tracestate."
            return context
        return _remote_context(ids, self._extract_state(getter, carrier), context)

    @staticmethod
    def _extract_state(getter: Getter[CarrierT], carrier: CarrierT) -> TraceState | None:
        values = _get(getter, carrier, _TRACESTATE)
        if not values:
            return None
        members = _parse_tracestate(values)
        if members is None:
            # "failure to parse tracestate MUST NOT affect the parsing of traceparent."
            _logger.debug("discarding invalid tracestate")
            return None
        return _ParsedTraceState(members) if members else None

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span_context = _valid_span_context(context)
        if span_context is None:
            return
        flags = span_context.trace_flags & _KNOWN_FLAGS
        setter.set(
            carrier,
            _TRACEPARENT,
            f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{flags:02x}",
        )
        if span_context.trace_state:
            header = _tracestate_header(span_context.trace_state)
            if header:  # "Vendors ... SHOULD avoid sending [empty tracestate headers]."
                setter.set(carrier, _TRACESTATE, header)

    @property
    def fields(self) -> set[str]:
        return {_TRACEPARENT, _TRACESTATE}


# --------------------------------------------------------------------------- W3C Baggage

_BAGGAGE = "baggage"
# key = token (RFC 9110 §5.6.2): tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
# "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
_BAGGAGE_OCTETS = r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
_BAGGAGE_KEY = re.compile(_TOKEN)
_BAGGAGE_VALUE = re.compile(_BAGGAGE_OCTETS)
# property = key OWS "=" OWS value / key OWS
_BAGGAGE_PROPERTY = re.compile(rf"{_TOKEN}(?:[ \t]*=[ \t]*{_BAGGAGE_OCTETS})?")
# Characters a value may carry as they are; "%" is a baggage-octet but must itself be encoded.
_BAGGAGE_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\%')
_BAGGAGE_PLAIN = re.compile(r"[\x21\x23\x24\x26-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
# "A platform MUST propagate all list-members ... up to at least 64 list-members" and while "the
# resulting baggage-string would be 8192 bytes or less"; past that members MAY be dropped, whole.
_MAX_BAGGAGE_MEMBERS = 64
_MAX_BAGGAGE_BYTES = 8192
# Raw input read before parsing stops; leaves room for whitespace and members that are dropped.
_MAX_BAGGAGE_INPUT = 4 * _MAX_BAGGAGE_BYTES


def _bounded_join(values: list[str], limit: int) -> str:
    """Join fields with commas, dropping whatever starts past ``limit`` and the member it cuts."""
    parts: list[str] = []
    used = 0
    for value in values:
        if used + len(value) > limit:
            head = value[: max(limit - used, 0)]
            parts.append(head[: max(head.rfind(","), 0)])
            break
        parts.append(value)
        used += len(value) + 1
    return ",".join(parts)


def _parse_baggage_member(member: str) -> tuple[str, str] | None:
    """(key, decoded value) of ``key OWS "=" OWS value *( OWS ";" OWS property )``, or None."""
    head, semicolon, properties = member.partition(";")
    # "Parsers MUST NOT assume that the equal sign is only used to separate key and value."
    key, equals, value = head.partition("=")
    key = key.strip(_OWS)
    value = value.strip(_OWS)
    if not equals or _BAGGAGE_KEY.fullmatch(key) is None or _BAGGAGE_VALUE.fullmatch(value) is None:
        return None
    if semicolon and not all(_BAGGAGE_PROPERTY.fullmatch(prop.strip(_OWS)) for prop in properties.split(";")):
        return None
    # The API stores one value per key and has no place for properties: they are checked, then
    # not kept. "percent-encoded octet sequences that do not match the UTF-8 encoding scheme MUST
    # be replaced with the replacement code point (U+FFFD)": errors="replace" does exactly that.
    return key, unquote(value, errors="replace") if "%" in value else value


def _parse_baggage(values: list[str]) -> list[tuple[str, str]]:
    """Valid members in order, within the limits; a malformed member is skipped on its own."""
    entries: list[tuple[str, str]] = []
    size = -1  # no comma before the first member
    for raw in _bounded_join(values, _MAX_BAGGAGE_INPUT).split(","):
        member = raw.strip(_OWS)
        parsed = _parse_baggage_member(member) if member else None
        if parsed is None or size + len(member) + 1 > _MAX_BAGGAGE_BYTES:
            continue
        size += len(member) + 1
        entries.append(parsed)
        if len(entries) == _MAX_BAGGAGE_MEMBERS:
            break
    return entries


def _encode_baggage_value(value: str) -> str:
    """ "Any characters outside of the baggage-octet range ... MUST be percent-encoded", and "%"."""
    if _BAGGAGE_PLAIN.fullmatch(value):
        return value
    # A lone surrogate has no UTF-8 form: "replace" sends "?" rather than failing the request.
    return quote(value, safe=_BAGGAGE_SAFE, errors="replace")


def _limited_members(entries: Mapping[str, object], encode: Callable[[str], str]) -> list[tuple[str, str]]:
    """(key, encoded value) pairs that fit the Baggage limits; keys that are not tokens are skipped."""
    members: list[tuple[str, str]] = []
    size = -1
    for key, raw_value in entries.items():
        if not isinstance(key, str) or _BAGGAGE_KEY.fullmatch(key) is None:
            continue
        text = str(raw_value)
        # Encoding never shortens a value: a value already too long is skipped before encoding it.
        if size + len(key) + len(text) + 2 > _MAX_BAGGAGE_BYTES:
            continue
        value = encode(text)
        if size + len(key) + len(value) + 2 > _MAX_BAGGAGE_BYTES:
            continue
        size += len(key) + len(value) + 2
        members.append((key, value))
        if len(members) == _MAX_BAGGAGE_MEMBERS:
            break
    return members


def _with_baggage(entries: Iterable[tuple[str, str]], context: Context) -> Context:
    for key, value in entries:
        context = otel_baggage.set_baggage(key, value, context)
    return context


class BaggagePropagator(TextMapPropagator):
    """W3C Baggage: the ``baggage`` header, values percent-encoded UTF-8.

    Up to 64 members and 8192 bytes are kept, whole members only; when a key repeats, the last
    value wins. Baggage properties (``;k=v``) are validated but not kept (the API has no place).
    """

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        if context is None:
            context = Context()
        # "Multiple baggage headers are allowed. Values can be combined in a single header."
        values = _get(getter, carrier, _BAGGAGE)
        return _with_baggage(_parse_baggage(values), context) if values else context

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        entries = otel_baggage.get_all(context)
        if not entries:
            return
        members = _limited_members(entries, _encode_baggage_value)
        if members:
            setter.set(carrier, _BAGGAGE, ",".join(f"{key}={value}" for key, value in members))

    @property
    def fields(self) -> set[str]:
        return {_BAGGAGE}


# --------------------------------------------------------------------------- B3

_B3 = "b3"
_B3_TRACE_ID = "x-b3-traceid"
_B3_SPAN_ID = "x-b3-spanid"
_B3_SAMPLED = "x-b3-sampled"
_B3_FLAGS = "x-b3-flags"
# "The TraceId ... is encoded as 32 or 16 lower-hex characters"; "SpanId ... 16 lower-hex".
_B3_TRACE = re.compile(r"[0-9a-f]{32}|[0-9a-f]{16}")
_B3_SPAN = re.compile(r"[0-9a-f]{16}")
# Single header sampling state: "Accept: 1", "Deny: 0", "Debug: d"; debug "implies accept".
_B3_SINGLE_SAMPLING = {"1": True, "d": True, "0": False}
_MAX_B3_CHARS = 128  # the longest valid b3 value is 32 + 16 + 1 + 16 + 3 = 68 characters


def _b3_ids(trace_hex: str, span_hex: str, sampled: bool) -> tuple[int, int, int] | None:
    if _B3_TRACE.fullmatch(trace_hex) is None or _B3_SPAN.fullmatch(span_hex) is None:
        return None
    # A 64-bit trace id is the low half of a 128-bit one: int() pads it on the left.
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT


def _parse_b3_single(value: str) -> tuple[int, int, int] | None:
    """``{TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}``, "where the last two fields are optional".

    A value with the sampling state alone (``b3: 0``) carries no ids: OpenTelemetry's SpanContext
    cannot hold a decision without ids, so it gives no parent. An absent state ("defer") reads as
    not sampled, as in the API's own B3 propagator.
    """
    if len(value) > _MAX_B3_CHARS:
        return None
    fields = value.split("-")
    if not 2 <= len(fields) <= 4:
        return None
    sampled = _B3_SINGLE_SAMPLING.get(fields[2]) if len(fields) > 2 else False
    if sampled is None or (len(fields) == 4 and _B3_SPAN.fullmatch(fields[3]) is None):
        return None
    return _b3_ids(fields[0], fields[1], sampled)


def _parse_b3_multi(getter: Getter[CarrierT], carrier: CarrierT) -> tuple[int, int, int] | None:
    trace_hex = _first_value(getter, carrier, _B3_TRACE_ID)
    span_hex = _first_value(getter, carrier, _B3_SPAN_ID)
    if trace_hex is None or span_hex is None:
        return None
    # "Debug is encoded as X-B3-Flags: 1"; "some tracers propagated X-B3-Sampled as true or false
    # ... a lenient implementation may accept them". Any other value defers (not sampled).
    sampled = _first_value(getter, carrier, _B3_FLAGS) == "1" or _first_value(
        getter, carrier, _B3_SAMPLED
    ) in ("1", "true")
    return _b3_ids(trace_hex, span_hex, sampled)


def _extract_b3(carrier: CarrierT, context: Context | None, getter: Getter[CarrierT]) -> Context:
    if context is None:
        context = Context()
    single = _first_value(getter, carrier, _B3)
    # "The single-header variant takes precedence over the multiple header one when extracting."
    ids = _parse_b3_single(single) if single else _parse_b3_multi(getter, carrier)
    return context if ids is None else _remote_context(ids, None, context)


class B3SinglePropagator(TextMapPropagator):
    """Zipkin B3, writing the single ``b3`` header; extraction reads single or multiple headers."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        return _extract_b3(carrier, context, getter)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span_context = _valid_span_context(context)
        if span_context is not None:
            sampled = _sampled_bit(span_context)
            setter.set(carrier, _B3, f"{span_context.trace_id:032x}-{span_context.span_id:016x}-{sampled}")

    @property
    def fields(self) -> set[str]:
        return {_B3}


class B3MultiPropagator(B3SinglePropagator):
    """Zipkin B3, writing the ``x-b3-*`` headers; extraction (inherited) reads single or multiple headers."""

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span_context = _valid_span_context(context)
        if span_context is None:
            return
        setter.set(carrier, _B3_TRACE_ID, f"{span_context.trace_id:032x}")
        setter.set(carrier, _B3_SPAN_ID, f"{span_context.span_id:016x}")
        setter.set(carrier, _B3_SAMPLED, str(_sampled_bit(span_context)))

    @property
    def fields(self) -> set[str]:
        return {_B3_TRACE_ID, _B3_SPAN_ID, _B3_SAMPLED}


# --------------------------------------------------------------------------- Jaeger

_UBER_TRACE_ID = "uber-trace-id"
_UBER_BAGGAGE_PREFIX = "uberctx-"
# {trace-id}:{span-id}:{parent-span-id}:{flags}; ids are base16 of variable length ("shorter values
# are 0-padded on the left"), flags "one byte bitmap" in one or two hex digits. Jaeger's own clients
# parse ids with a base-16 integer parser, which takes either case.
_UBER_FIELDS = re.compile(r"([0-9a-fA-F]{1,32}):([0-9a-fA-F]{1,16}):[0-9a-fA-F]{1,16}:([0-9a-fA-F]{1,2})")
_MAX_UBER_CHARS = 256  # 32 + 16 + 16 + 2 + 3 colons, even fully %-encoded, is well under this
_MAX_CARRIER_KEYS = 256  # keys scanned for uberctx- baggage


def _parse_uber_trace_id(value: str) -> tuple[int, int, int] | None:
    if len(value) > _MAX_UBER_CHARS:
        return None
    value = value.strip(_OWS)
    if "%" in value:  # HTTP clients may have url-encoded the colons (%3A)
        value = unquote(value)
    match = _UBER_FIELDS.fullmatch(value)
    if match is None:
        return None
    trace_id, span_id, flags = (int(group, 16) for group in match.groups())
    if trace_id == 0 or span_id == 0:
        return None  # "Value of 0 is invalid."
    return trace_id, span_id, flags & TraceFlags.SAMPLED


def _jaeger_baggage(getter: Getter[CarrierT], carrier: CarrierT) -> list[tuple[str, str]]:
    """``uberctx-{key}: {url-encoded value}`` entries, within the W3C Baggage limits."""
    try:
        keys: object = getter.keys(carrier)
    except _CARRIER_ERRORS:
        return []
    if not isinstance(keys, (list, tuple)):
        return []
    found: dict[str, object] = {}
    for name in keys[:_MAX_CARRIER_KEYS]:
        if isinstance(name, str) and name[:8].lower() == _UBER_BAGGAGE_PREFIX and len(name) > 8:
            values = _get(getter, carrier, name)
            if values:  # the first field wins; a raw comma may belong to an unencoded value
                found[name[8:]] = unquote(values[0].strip(_OWS), errors="replace")
    return _limited_members(found, str)


def _uber_trace_id(span_context: SpanContext) -> str:
    # The parent span id is deprecated: "Set to 0", as Jaeger's own clients do.
    ids = f"{span_context.trace_id:032x}:{span_context.span_id:016x}"
    return f"{ids}:0:{_sampled_bit(span_context):02x}"


def _encode_uber_value(value: str) -> str:
    return quote(value, safe="", errors="replace")


class JaegerPropagator(TextMapPropagator):
    """Jaeger's ``uber-trace-id`` header and ``uberctx-*`` baggage headers.

    ``fields`` names only ``uber-trace-id``: baggage header names depend on the baggage itself.
    """

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        if context is None:
            context = Context()
        context = _with_baggage(_jaeger_baggage(getter, carrier), context)
        value = _first_value(getter, carrier, _UBER_TRACE_ID)
        ids = _parse_uber_trace_id(value) if value else None
        return context if ids is None else _remote_context(ids, None, context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span_context = _valid_span_context(context)
        if span_context is not None:
            setter.set(carrier, _UBER_TRACE_ID, _uber_trace_id(span_context))
        entries = otel_baggage.get_all(context)
        if entries:
            for key, encoded in _limited_members(entries, _encode_uber_value):
                setter.set(carrier, _UBER_BAGGAGE_PREFIX + key, encoded)

    @property
    def fields(self) -> set[str]:
        return {_UBER_TRACE_ID}


# --------------------------------------------------------------------------- composition


def _keep_trace_state(before: SpanContext, context: Context) -> Context:
    after = trace.get_current_span(context).get_span_context()
    same = (after.trace_id, after.span_id) == (before.trace_id, before.span_id)
    if after is before or not same or after.trace_state:
        return context
    kept = SpanContext(after.trace_id, after.span_id, True, after.trace_flags, before.trace_state)
    return trace.set_span_in_context(NonRecordingSpan(kept), context)


class CompositePropagator(TextMapPropagator):
    """Runs its propagators in order: on extract a later one overrides what an earlier one set.

    When a later propagator finds the same parent (same trace and span id) without a tracestate, the
    tracestate received with ``traceparent`` is kept: W3C requires it to be passed on, and b3 or
    jaeger headers sent beside ``traceparent`` by the same caller must not silently drop it.
    """

    def __init__(self, propagators: Iterable[TextMapPropagator]) -> None:
        self._propagators = tuple(propagators)
        self._fields = frozenset(field for p in self._propagators for field in p.fields)

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        for propagator in self._propagators:
            before = trace.get_current_span(context).get_span_context() if context is not None else None
            context = propagator.extract(carrier, context, getter)
            if before is not None and before.trace_state:
                context = _keep_trace_state(before, context)
        return context if context is not None else Context()

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        for propagator in self._propagators:
            propagator.inject(carrier, context, setter)

    @property
    def fields(self) -> set[str]:
        return set(self._fields)


_FACTORIES: dict[str, Callable[[], TextMapPropagator]] = {
    "tracecontext": TraceContextPropagator,
    "baggage": BaggagePropagator,
    "b3": B3SinglePropagator,
    "b3multi": B3MultiPropagator,
    "jaeger": JaegerPropagator,
}


def build_propagator(names: list[str]) -> tuple[TextMapPropagator, list[str]]:
    """The propagator for ``OTEL_PROPAGATORS`` names, and the names it did not know (to warn about).

    Duplicates count once, in first-seen order. ``none`` wins over any other name (as in config):
    the result then does nothing, as does an empty or all-unknown list.
    """
    chosen: list[str] = []
    unknown: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if name in _FACTORIES or name == "none":
            if name not in chosen:
                chosen.append(name)
        elif raw not in unknown:
            unknown.append(raw)
    if "none" in chosen:
        return CompositePropagator(()), unknown
    instances = [_FACTORIES[name]() for name in chosen]
    # One propagator needs no composite around it (one call less per request).
    return (instances[0] if len(instances) == 1 else CompositePropagator(instances)), unknown


class CaseInsensitiveGetter(Getter[Mapping[str, object]]):
    """A getter for mappings whose keys may be in any case ("Vendors MUST expect the header name in
    any case"). Fields under several casings are all returned, so a repeated header stays visible.
    """

    def get(self, carrier: Mapping[str, object], key: str) -> list[str] | None:
        wanted = key.lower()
        found: list[str] = []
        for name, value in carrier.items():
            if isinstance(name, str) and name.lower() == wanted:
                found.extend(_field_values(value))
        return found or None

    def keys(self, carrier: Mapping[str, object]) -> list[str]:
        return [name for name in carrier if isinstance(name, str)]
