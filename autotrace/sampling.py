"""Samplers: the ``OTEL_TRACES_SAMPLER`` set, a rate limiter, and per-request rules.

``build_sampler`` maps the standard ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` values (plus
``autotrace_ratelimiting`` and its ``parentbased_`` form) to a sampler. It never raises: an unusable
name or argument is reported and the default is used, so one typo never switches tracing off.

``AUTOTRACE_SAMPLING_RULES`` is a JSON list of rules (``parse_rules``); the first rule matching a root
span's name and start attributes decides, with a trace-id ratio or its own rate limit. Rules see only
what the sampler is given: the decision is taken before the span exists, so nothing is computed for it.

Written against opentelemetry-sdk 1.45 (``Sampler``, ``ParentBased``, ``TraceIdRatioBased``).
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import get_current_span

from autotrace.config import SAMPLERS

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Callable

    from opentelemetry.context import Context
    from opentelemetry.trace import Link, SpanKind
    from opentelemetry.trace.span import TraceState
    from opentelemetry.util.types import Attributes

__all__ = [
    "RateLimitingSampler",
    "RuleBasedSampler",
    "SamplingRule",
    "build_sampler",
    "parse_rules",
]

DEFAULT_SAMPLER = "parentbased_always_on"
DEFAULT_TRACES_PER_SECOND = 100.0
DEFAULT_RATIO = 1.0

_PARENT_BASED = "parentbased_"
_SAMPLER_NAMES = frozenset(SAMPLERS)  # one list of names, shared with the configuration

# Attribute keys the rules read (stable HTTP semantic conventions); nothing else is looked at.
METHOD_KEY = "http.request.method"
ROUTE_KEY = "http.route"
PATH_KEY = "url.path"

# Token arithmetic is done in floats, and clock readings such as 0.3 are not exact in binary:
# (0.3 - 0.2) * 10 is 0.9999999999999998. A millionth of a token of tolerance keeps whole-token
# boundaries exact without measurably raising the rate.
_TOKEN_EPSILON = 1e-6

# Returned for every dropped span without a parent trace state: the SDK only reads a SamplingResult,
# so sharing one spares two allocations per refused span under overload.
_DROP = SamplingResult(Decision.DROP)


def _parent_trace_state(parent_context: Context | None) -> TraceState | None:
    # The new span inherits whatever trace state the sampler returns (SDK 1.45 start_span), so a
    # sampler must hand the parent's back. SDK's own helper for this is private.
    span_context = get_current_span(parent_context).get_span_context()
    return span_context.trace_state if span_context.is_valid else None


class RateLimitingSampler(Sampler):
    """A token bucket: at most ``traces_per_second`` sampled decisions per second, bursts of
    ``max(1, traces_per_second)`` (whole traces: 2.5/s bursts 2). Fractional rates work (0.5 is one
    every two seconds); a rate of zero or less never samples. Used as a root sampler, each decision
    is a new trace; used on its own, every span spends a token.

    Thread safety without a lock on the hot path: the bucket is a list holding one item per token,
    and a token is taken with ``list.pop()``. That call is a single C function that does not release
    the GIL (and holds the list's own lock on free-threaded builds), so two threads can never take
    the same token and the count never goes negative. Only refilling needs a read-modify-write of
    several fields; it runs under a lock taken with ``blocking=False`` at most once per token
    interval: a thread that finds another one refilling just goes on, as the tokens being added are
    the same ones it would add. The price is one list slot (8 bytes) per token of burst.
    """

    def __init__(self, traces_per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not math.isfinite(traces_per_second):
            raise ValueError(f"traces_per_second must be finite, got {traces_per_second!r}")
        self._rate = traces_per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._capacity = max(1, int(traces_per_second)) if traces_per_second > 0 else 0
        self._tokens: list[None] = [None] * self._capacity  # starts full: the first burst is allowed
        self._last = clock()  # credit up to this time has been turned into tokens
        self._next_refill = math.inf
        if traces_per_second > 0:
            self._next_refill = self._last + (1.0 - _TOKEN_EPSILON) / traces_per_second

    @property
    def traces_per_second(self) -> float:
        return self._rate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent_state = _parent_trace_state(parent_context)
        if self._take():
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent_state)
        return _DROP if parent_state is None else SamplingResult(Decision.DROP, None, parent_state)

    def get_description(self) -> str:
        return f"RateLimitingSampler{{{self._rate:g}}}"

    def _take(self) -> bool:
        now = self._clock()
        if now >= self._next_refill:
            self._refill(now)
        tokens = self._tokens
        if not tokens:  # cheap refusal without raising, the common case under overload
            return False
        try:
            tokens.pop()
        except IndexError:  # another thread took the last token between the check and the pop
            return False
        return True

    def _refill(self, now: float) -> None:
        if not self._lock.acquire(blocking=False):
            return
        try:
            minted = int((now - self._last) * self._rate + _TOKEN_EPSILON)
            if minted <= 0:  # a stale reading from a thread that was overtaken, or not yet due
                return
            room = self._capacity - len(self._tokens)
            if minted < room:
                # Keep the fraction of a token already earned.
                self._last += minted / self._rate
            else:
                # A full bucket spills: credit starts again from now.
                minted, self._last = room, now
            self._tokens.extend(itertools.repeat(None, minted))
            self._next_refill = self._last + (1.0 - _TOKEN_EPSILON) / self._rate
        finally:
            self._lock.release()


# --- rules ---

_MATCHER_FIELDS = ("name", "method", "route", "path")
_DECISION_FIELDS = ("ratio", "rate")
_RULE_KEYS = frozenset(_MATCHER_FIELDS + _DECISION_FIELDS)
_GLOB_CHARS = re.compile(r"[*?\[]")


def _glob_check(pattern: str) -> Callable[[str], object]:
    """``fnmatch.fnmatchcase`` semantics, compiled once; a pattern without wildcards is compared as is."""
    if _GLOB_CHARS.search(pattern) is None:
        return pattern.__eq__
    return re.compile(fnmatch.translate(pattern)).match


def _method_check(method: str) -> Callable[[str], object]:
    expected = method.upper()

    def check(value: str) -> bool:
        # Instrumentations report methods upper-case already; compare before paying for upper().
        return value == expected or value.upper() == expected

    return check


def _check_number(key: str, value: object, upper: float, expected: str) -> None:
    # JSON true/false arrive as bool, a subclass of int; they are not numbers here.
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    if not (0.0 <= number <= upper and math.isfinite(number)):
        raise ValueError(f"{key!r} must be {expected}, got {value!r}")


def _validate_rule(rule: SamplingRule) -> None:
    for key in _MATCHER_FIELDS:
        value = getattr(rule, key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{key!r} must be a non-empty string, got {value!r}")
    if (rule.ratio is None) == (rule.rate is None):
        raise ValueError("needs exactly one of 'ratio' or 'rate'")
    if rule.ratio is not None:
        _check_number("ratio", rule.ratio, 1.0, "a number from 0 to 1")
    else:
        _check_number("rate", rule.rate, math.inf, "a finite number of traces per second, 0 or more")


def _compile_checks(rule: SamplingRule) -> tuple[tuple[str | None, Callable[[str], object]], ...]:
    # Attribute checks come first: a rule whose attribute is absent fails on the first lookup.
    checks: list[tuple[str | None, Callable[[str], object]]] = []
    if rule.method is not None:
        checks.append((METHOD_KEY, _method_check(rule.method)))
    if rule.path is not None:
        checks.append((PATH_KEY, _glob_check(rule.path)))
    if rule.route is not None:
        checks.append((ROUTE_KEY, _glob_check(rule.route)))
    if rule.name is not None:
        checks.append((None, _glob_check(rule.name)))
    return tuple(checks)


@dataclass(frozen=True)
class SamplingRule:
    """Matches a root span when every matcher given matches (none given: everything).

    ``name``, ``route`` (``http.route``) and ``path`` (``url.path``) are case-sensitive globs;
    ``method`` (``http.request.method``) is an exact, case-insensitive name. The decision is exactly
    one of ``ratio`` (0..1 by trace id, so every service deciding on a trace agrees) or ``rate``
    (traces per second). Raises ``ValueError`` when invalid.
    """

    name: str | None = None
    method: str | None = None
    route: str | None = None
    path: str | None = None
    ratio: float | None = None
    rate: float | None = None
    _checks: tuple[tuple[str | None, Callable[[str], object]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        _validate_rule(self)
        object.__setattr__(self, "_checks", _compile_checks(self))

    def matches(self, name: str, attributes: Attributes) -> bool:
        for key, check in self._checks:
            value: object
            if key is None:
                value = name
            elif attributes is None:
                return False
            else:
                value = attributes.get(key)
            if not isinstance(value, str) or not check(value):
                return False
        return True


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _parse_rule(index: int, raw: object) -> SamplingRule | str:
    if not isinstance(raw, dict):
        return f"rule {index}: expected a JSON object, got {_json_type(raw)}"
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        return f"rule {index}: unknown key(s) {', '.join(map(repr, unknown))}"
    # An explicit null would read as "no matcher", silently widening the rule to every span.
    nulls = sorted(key for key, value in raw.items() if value is None)
    if nulls:
        return f"rule {index}: {', '.join(map(repr, nulls))} must not be null"
    try:
        return SamplingRule(**raw)
    except ValueError as exc:
        return f"rule {index}: {exc}"


def parse_rules(text: str) -> tuple[list[SamplingRule], list[str]]:
    """Parse ``AUTOTRACE_SAMPLING_RULES``; each bad rule is left out and described (by 0-based index)."""
    if not text.strip():
        return [], []
    try:
        document = json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return [], [f"invalid JSON: {exc}"]
    except RecursionError:
        return [], ["invalid JSON: nested too deeply"]
    if not isinstance(document, list):
        return [], [f"expected a JSON array of rules, got {_json_type(document)}"]
    rules: list[SamplingRule] = []
    errors: list[str] = []
    for index, raw in enumerate(document):
        parsed = _parse_rule(index, raw)
        if isinstance(parsed, str):
            errors.append(parsed)
        else:
            rules.append(parsed)
    return rules, errors


def _rule_sampler(rule: SamplingRule, clock: Callable[[], float]) -> Sampler:
    if rule.ratio is not None:
        return TraceIdRatioBased(rule.ratio)
    return RateLimitingSampler(rule.rate or 0.0, clock)


class RuleBasedSampler(Sampler):
    """The first rule matching ``name`` and ``attributes`` decides; no match defers to ``fallback``.

    Each ``rate`` rule gets its own bucket, owned by this sampler (rules are immutable values).
    """

    def __init__(
        self,
        rules: Sequence[SamplingRule],
        fallback: Sampler,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = tuple(rules)
        self._fallback = fallback
        # Bound methods resolved once: the loop below runs for every root span.
        self._entries = tuple((rule.matches, _rule_sampler(rule, clock)) for rule in self._rules)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        sampler = self._fallback
        for matches, rule_sampler in self._entries:
            if matches(name, attributes):
                sampler = rule_sampler
                break
        return sampler.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"RuleBasedSampler{{rules:{len(self._rules)},fallback:{self._fallback.get_description()}}}"


# --- OTEL_TRACES_SAMPLER ---

# Per argument-taking sampler: default, upper bound, and what a valid value looks like.
_ARG_SPECS = {
    "traceidratio": (DEFAULT_RATIO, 1.0, "a number from 0 to 1"),
    "autotrace_ratelimiting": (
        DEFAULT_TRACES_PER_SECOND,
        math.inf,
        "a finite number of traces per second, 0 or more",
    ),
}


def _resolve_name(name: str, errors: list[str]) -> str:
    key = name.strip().lower() or DEFAULT_SAMPLER
    if key in _SAMPLER_NAMES:
        return key
    errors.append(f"OTEL_TRACES_SAMPLER: unsupported sampler {name!r}; using {DEFAULT_SAMPLER!r}")
    return DEFAULT_SAMPLER


def _parse_arg(sampler: str, base: str, arg: str | None, errors: list[str]) -> float:
    default, upper, expected = _ARG_SPECS[base]
    if arg is None or not arg.strip():
        return default
    try:
        value = float(arg)
    except ValueError:
        value = math.nan
    if 0.0 <= value <= upper and math.isfinite(value):
        return value
    errors.append(
        f"OTEL_TRACES_SAMPLER_ARG: invalid value {arg!r} for {sampler} (expected {expected}); "
        f"using {default:g}"
    )
    return default


def _base_sampler(sampler: str, base: str, arg: str | None, errors: list[str]) -> Sampler:
    if base == "always_on":
        return ALWAYS_ON
    if base == "always_off":
        return ALWAYS_OFF
    value = _parse_arg(sampler, base, arg, errors)
    if base == "traceidratio":
        return TraceIdRatioBased(value)
    return RateLimitingSampler(value)


def build_sampler(name: str, arg: str | None, rules: list[SamplingRule]) -> tuple[Sampler, list[str]]:
    """The sampler for ``OTEL_TRACES_SAMPLER=name``, ``OTEL_TRACES_SAMPLER_ARG=arg`` and ``rules``.

    Rules decide root spans only under a ``parentbased_*`` sampler (a parent's sampled flag is
    honoured); otherwise they decide every span. Returns the sampler and the problems found.
    """
    errors: list[str] = []
    sampler = _resolve_name(name, errors)
    parent_based = sampler.startswith(_PARENT_BASED)
    base = sampler[len(_PARENT_BASED) :] if parent_based else sampler
    root = _base_sampler(sampler, base, arg, errors)
    if rules:
        root = RuleBasedSampler(rules, fallback=root)
    return (ParentBased(root=root) if parent_based else root), errors
