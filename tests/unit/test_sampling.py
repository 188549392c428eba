"""Samplers: OTEL_TRACES_SAMPLER names and args, the rate limiter, AUTOTRACE_SAMPLING_RULES."""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Decision, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

from autotrace.sampling import (
    RateLimitingSampler,
    RuleBasedSampler,
    SamplingRule,
    build_sampler,
    parse_rules,
)

ROOT = Context()  # an explicit empty context: no parent, whatever the test runner's current span
LOW = 0x1  # trace ids whose low 64 bits fall below/above half of the ratio bound
HIGH = 0xFFFF_FFFF_FFFF_FFFF


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def decide(
    sampler: Sampler,
    name: str = "span",
    attributes: Mapping[str, Any] | None = None,
    context: Context = ROOT,
    trace_id: int = LOW,
) -> Decision:
    return sampler.should_sample(context, trace_id, name, SpanKind.SERVER, attributes).decision


def count_sampled(sampler: Sampler, calls: int, **kwargs: Any) -> int:
    return sum(decide(sampler, **kwargs) is Decision.RECORD_AND_SAMPLE for _ in range(calls))


def parent(sampled: bool, remote: bool = True) -> Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    span_context = SpanContext(
        trace_id=0xABC,
        span_id=0xDEF,
        is_remote=remote,
        trace_flags=flags,
        trace_state=TraceState([("vendor", "value")]),
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context), Context())


def parent_based(root: str) -> str:
    return (
        f"ParentBased{{root:{root},remoteParentSampled:AlwaysOnSampler,"
        "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,"
        "localParentNotSampled:AlwaysOffSampler}"
    )


# --- build_sampler ---

VALID_SAMPLERS = [
    ("always_on", None, "AlwaysOnSampler"),
    ("always_off", None, "AlwaysOffSampler"),
    ("always_on", "0.5", "AlwaysOnSampler"),  # an argument the sampler takes none of is ignored
    ("traceidratio", None, "TraceIdRatioBased{1.0}"),
    ("traceidratio", "", "TraceIdRatioBased{1.0}"),
    ("traceidratio", "0.25", "TraceIdRatioBased{0.25}"),
    ("traceidratio", "0", "TraceIdRatioBased{0.0}"),
    ("traceidratio", "1", "TraceIdRatioBased{1.0}"),
    ("parentbased_always_on", None, parent_based("AlwaysOnSampler")),
    ("parentbased_always_off", None, parent_based("AlwaysOffSampler")),
    ("parentbased_traceidratio", None, parent_based("TraceIdRatioBased{1.0}")),
    ("parentbased_traceidratio", "0.5", parent_based("TraceIdRatioBased{0.5}")),
    ("autotrace_ratelimiting", None, "RateLimitingSampler{100}"),
    ("autotrace_ratelimiting", "2.5", "RateLimitingSampler{2.5}"),
    ("autotrace_ratelimiting", "0", "RateLimitingSampler{0}"),
    ("parentbased_autotrace_ratelimiting", None, parent_based("RateLimitingSampler{100}")),
    ("parentbased_autotrace_ratelimiting", "10.0", parent_based("RateLimitingSampler{10}")),
    (" ParentBased_TraceIdRatio ", "0.1", parent_based("TraceIdRatioBased{0.1}")),
    ("", None, parent_based("AlwaysOnSampler")),
]


@pytest.mark.parametrize(("name", "arg", "description"), VALID_SAMPLERS)
def test_build_sampler_valid(name: str, arg: str | None, description: str) -> None:
    sampler, errors = build_sampler(name, arg, [])
    assert errors == []
    assert sampler.get_description() == description


INVALID_SAMPLERS = [
    # (name, arg, description used instead, (variable, value) named by the one error)
    ("jaeger_remote", None, parent_based("AlwaysOnSampler"), ("OTEL_TRACES_SAMPLER", "jaeger_remote")),
    (
        "parentbased_jaeger_remote",
        "x",
        parent_based("AlwaysOnSampler"),
        ("OTEL_TRACES_SAMPLER", "parentbased_jaeger_remote"),
    ),
    ("xray", "0.5", parent_based("AlwaysOnSampler"), ("OTEL_TRACES_SAMPLER", "xray")),
    ("traceidration", "0.5", parent_based("AlwaysOnSampler"), ("OTEL_TRACES_SAMPLER", "traceidration")),
    ("always-on", None, parent_based("AlwaysOnSampler"), ("OTEL_TRACES_SAMPLER", "always-on")),
    ("traceidratio", "1.5", "TraceIdRatioBased{1.0}", ("OTEL_TRACES_SAMPLER_ARG", "1.5")),
    ("traceidratio", "-0.1", "TraceIdRatioBased{1.0}", ("OTEL_TRACES_SAMPLER_ARG", "-0.1")),
    ("traceidratio", "half", "TraceIdRatioBased{1.0}", ("OTEL_TRACES_SAMPLER_ARG", "half")),
    ("traceidratio", "nan", "TraceIdRatioBased{1.0}", ("OTEL_TRACES_SAMPLER_ARG", "nan")),
    (
        "parentbased_traceidratio",
        "2",
        parent_based("TraceIdRatioBased{1.0}"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
    ),
    ("autotrace_ratelimiting", "-1", "RateLimitingSampler{100}", ("OTEL_TRACES_SAMPLER_ARG", "-1")),
    ("autotrace_ratelimiting", "inf", "RateLimitingSampler{100}", ("OTEL_TRACES_SAMPLER_ARG", "inf")),
    ("autotrace_ratelimiting", "fast", "RateLimitingSampler{100}", ("OTEL_TRACES_SAMPLER_ARG", "fast")),
    (
        "parentbased_autotrace_ratelimiting",
        "1e999",
        parent_based("RateLimitingSampler{100}"),
        ("OTEL_TRACES_SAMPLER_ARG", "1e999"),
    ),
]


@pytest.mark.parametrize(("name", "arg", "description", "named"), INVALID_SAMPLERS)
def test_build_sampler_invalid_uses_default(
    name: str, arg: str | None, description: str, named: tuple[str, str]
) -> None:
    sampler, errors = build_sampler(name, arg, [])
    assert sampler.get_description() == description
    assert len(errors) == 1
    variable, value = named
    assert errors[0].startswith(f"{variable}:")
    assert repr(value) in errors[0]


def test_unsupported_name_does_not_also_report_its_arg() -> None:
    # parentbased_jaeger_remote's "x" is never parsed: the default sampler takes no argument.
    _, errors = build_sampler("parentbased_jaeger_remote", "x", [])
    assert errors == [
        "OTEL_TRACES_SAMPLER: unsupported sampler 'parentbased_jaeger_remote'; using 'parentbased_always_on'"
    ]


def test_invalid_arg_message() -> None:
    _, errors = build_sampler("traceidratio", "1.5", [])
    assert errors == [
        "OTEL_TRACES_SAMPLER_ARG: invalid value '1.5' for traceidratio (expected a number from 0 to 1); "
        "using 1"
    ]


def test_rules_wrap_the_root_of_a_parent_based_sampler() -> None:
    sampler, errors = build_sampler("parentbased_traceidratio", "0.5", [SamplingRule(ratio=1)])
    assert errors == []
    assert sampler.get_description() == parent_based(
        "RuleBasedSampler{rules:1,fallback:TraceIdRatioBased{0.5}}"
    )


def test_rules_wrap_a_plain_sampler() -> None:
    rules = [SamplingRule(ratio=1), SamplingRule(rate=3)]
    sampler, errors = build_sampler("always_off", None, rules)
    assert errors == []
    assert sampler.get_description() == "RuleBasedSampler{rules:2,fallback:AlwaysOffSampler}"


def test_built_rate_limiter_samples_its_burst() -> None:
    sampler, _ = build_sampler("autotrace_ratelimiting", "3", [])
    # The real clock: the whole burst of 3 is there at once; refill within this loop is at most 1.
    assert 3 <= count_sampled(sampler, 20) <= 4


# --- RateLimitingSampler ---


def test_burst_then_one_token_per_interval() -> None:
    clock = FakeClock()
    sampler = RateLimitingSampler(10, clock)
    assert count_sampled(sampler, 25) == 10
    clock.now = 0.1
    assert count_sampled(sampler, 5) == 1
    clock.now = 0.35  # two whole tokens; the half token earned is kept
    assert count_sampled(sampler, 5) == 2
    clock.now = 0.4
    assert count_sampled(sampler, 5) == 1
    clock.now = 0.49
    assert count_sampled(sampler, 5) == 0


def test_exactly_n_per_second_in_steady_state() -> None:
    clock = FakeClock()
    sampler = RateLimitingSampler(10, clock)
    count_sampled(sampler, 10)  # spend the initial burst
    total = 0
    for step in range(1, 101):  # one simulated second, 10 ms at a time, 3 calls per step
        clock.now = step / 100
        total += count_sampled(sampler, 3)
    assert total == 10


def test_burst_is_capped_after_idling() -> None:
    clock = FakeClock()
    sampler = RateLimitingSampler(10, clock)
    count_sampled(sampler, 10)
    clock.now = 100.0
    assert count_sampled(sampler, 50) == 10
    clock.now = 100.05
    assert count_sampled(sampler, 5) == 0  # the spilled credit is gone


def test_fractional_rate_samples_one_trace_every_two_seconds() -> None:
    clock = FakeClock()
    sampler = RateLimitingSampler(0.5, clock)
    decisions = []
    for tenth in range(0, 61):
        clock.now = tenth / 10
        decisions.append(decide(sampler) is Decision.RECORD_AND_SAMPLE)
    assert [i / 10 for i, sampled in enumerate(decisions) if sampled] == [0.0, 2.0, 4.0, 6.0]


def test_fractional_rate_above_one_has_whole_burst_and_exact_rate() -> None:
    clock = FakeClock()
    sampler = RateLimitingSampler(2.5, clock)
    assert count_sampled(sampler, 10) == 2  # burst max(1, 2.5) holds 2 whole traces
    total = 0
    for step in range(1, 201):  # two simulated seconds
        clock.now = step / 100
        total += count_sampled(sampler, 2)
    assert total == 5


@pytest.mark.parametrize("rate", [0, 0.0, -5])
def test_zero_or_negative_rate_never_samples(rate: float) -> None:
    clock = FakeClock()
    sampler = RateLimitingSampler(rate, clock)
    assert count_sampled(sampler, 10) == 0
    clock.now = 1000.0
    assert count_sampled(sampler, 10) == 0


@pytest.mark.parametrize("rate", [float("nan"), float("inf")])
def test_non_finite_rate_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        RateLimitingSampler(rate)


@pytest.mark.parametrize(("rate", "description"), [(10, "{10}"), (0.5, "{0.5}"), (2.5, "{2.5}"), (0, "{0}")])
def test_rate_limiter_description(rate: float, description: str) -> None:
    sampler = RateLimitingSampler(rate)
    assert sampler.get_description() == f"RateLimitingSampler{description}"
    assert sampler.traces_per_second == rate


def test_rate_limiter_result_carries_attributes_and_parent_trace_state() -> None:
    sampler = RateLimitingSampler(1, FakeClock())
    context = parent(sampled=True)
    sampled = sampler.should_sample(context, 0xABC, "a", attributes={"k": "v"})
    dropped = sampler.should_sample(context, 0xABC, "a", attributes={"k": "v"})
    assert (sampled.decision, dict(sampled.attributes)) == (Decision.RECORD_AND_SAMPLE, {"k": "v"})
    assert (dropped.decision, dict(dropped.attributes)) == (Decision.DROP, {})
    assert sampled.trace_state == dropped.trace_state == TraceState([("vendor", "value")])
    root_drop = sampler.should_sample(ROOT, 0xABC, "a", attributes={"k": "v"})
    assert (root_drop.decision, root_drop.trace_state) == (Decision.DROP, None)


def test_taking_a_token_never_waits_for_the_refill_lock() -> None:
    clock = FakeClock()
    sampler = RateLimitingSampler(2, clock)
    clock.now = 5.0  # a refill is due
    counts: list[int] = []
    caller = threading.Thread(target=lambda: counts.append(count_sampled(sampler, 5)))
    with sampler._lock:  # as if another thread were refilling
        caller.start()
        caller.join(timeout=5)
        blocked = caller.is_alive()
    caller.join()
    assert not blocked
    assert counts == [2]  # the tokens already there were taken; the refill was left to its owner
    assert count_sampled(sampler, 5) == 2  # and happens on a later call


def test_threads_never_exceed_the_budget() -> None:
    threads, calls_per_thread, rate = 8, 5000, 100
    total_calls = threads * calls_per_thread
    ticks = itertools.count()  # next() on a count is atomic: each call is one simulated instant

    def clock() -> float:
        return min(next(ticks) / total_calls, 1.0)

    sampler = RateLimitingSampler(rate, clock)
    barrier = threading.Barrier(threads)
    counts: list[int] = []

    def hammer() -> None:
        barrier.wait()
        counts.append(count_sampled(sampler, calls_per_thread))

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke races
    try:
        workers = [threading.Thread(target=hammer) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(previous)
    assert len(counts) == threads
    # Budget for one simulated second: the initial burst plus one second of tokens.
    assert rate * 2 - 5 <= sum(counts) <= rate * 2


class YieldingList(list[None]):
    """A bucket that hands the GIL to another thread each time its size is read."""

    def __len__(self) -> int:
        size = super().__len__()
        time.sleep(0)  # the size is stale by the time the caller acts on it
        return size


def test_threads_never_exceed_the_budget_when_every_size_read_is_stale() -> None:
    # Under the GIL, races are rare on their own; this forces a switch right inside the window a
    # check-then-act scheme would have, which only an atomic take survives.
    threads, rate = 8, 50
    sampler = RateLimitingSampler(rate, FakeClock())
    sampler._tokens = YieldingList(sampler._tokens)
    barrier = threading.Barrier(threads)
    counts: list[int] = []

    def hammer() -> None:
        barrier.wait()
        counts.append(count_sampled(sampler, 20))

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(counts) == rate  # the clock stands still: exactly the burst


# --- rules: parsing ---


def test_parse_rules_example() -> None:
    text = '[{"path": "/healthz", "ratio": 0}, {"name": "POST /orders", "ratio": 1}, {"rate": 50}]'
    rules, errors = parse_rules(text)
    assert errors == []
    assert rules == [
        SamplingRule(path="/healthz", ratio=0),
        SamplingRule(name="POST /orders", ratio=1),
        SamplingRule(rate=50),
    ]


def test_parse_rules_all_matchers() -> None:
    text = '[{"name": "n*", "method": "get", "route": "/r/{id}", "path": "/p/*", "rate": 0.5}]'
    rules, errors = parse_rules(text)
    assert errors == []
    assert rules == [SamplingRule(name="n*", method="get", route="/r/{id}", path="/p/*", rate=0.5)]


@pytest.mark.parametrize("text", ["", "   ", "[]"])
def test_parse_rules_empty(text: str) -> None:
    assert parse_rules(text) == ([], [])


BAD_RULES = [
    # (rule JSON, words the message must contain)
    ('{"path": "/x", "ratio": 0, "paht": "/y"}', ["unknown key", "'paht'"]),
    ('{"path": "/x"}', ["exactly one of 'ratio' or 'rate'"]),
    ("{}", ["exactly one of 'ratio' or 'rate'"]),
    ('{"ratio": 0.5, "rate": 3}', ["exactly one of 'ratio' or 'rate'"]),
    ('{"ratio": 1.5}', ["'ratio'", "1.5"]),
    ('{"ratio": -0.1}', ["'ratio'", "-0.1"]),
    ('{"ratio": "0.5"}', ["'ratio'", "'0.5'"]),
    ('{"ratio": true}', ["'ratio'", "True"]),
    ('{"ratio": NaN}', ["'ratio'", "nan"]),
    ('{"rate": -1}', ["'rate'", "-1"]),
    ('{"rate": Infinity}', ["'rate'", "inf"]),
    ('{"rate": [5]}', ["'rate'", "[5]"]),
    ('{"path": 5, "ratio": 1}', ["'path'", "non-empty string", "5"]),
    ('{"name": "", "ratio": 1}', ["'name'", "non-empty string"]),
    ('{"method": ["GET"], "ratio": 1}', ["'method'", "non-empty string"]),
    ('{"route": {"a": 1}, "ratio": 1}', ["'route'", "non-empty string"]),
    ('{"path": null, "ratio": 0}', ["'path'", "null"]),
    ('"/healthz"', ["expected a JSON object", "string"]),
    ("[1]", ["expected a JSON object", "array"]),
    ("7", ["expected a JSON object", "number"]),
]


@pytest.mark.parametrize(("rule", "words"), BAD_RULES)
def test_parse_rules_bad_rule_is_skipped(rule: str, words: list[str]) -> None:
    rules, errors = parse_rules(f'[{{"ratio": 1}}, {rule}, {{"rate": 2}}]')
    assert rules == [SamplingRule(ratio=1), SamplingRule(rate=2)]
    assert len(errors) == 1
    assert errors[0].startswith("rule 1: ")
    for word in words:
        assert word in errors[0]


def test_parse_rules_reports_every_bad_rule_by_index() -> None:
    rules, errors = parse_rules('[{"x": 1}, {"ratio": 1}, {"ratio": 2}]')
    assert rules == [SamplingRule(ratio=1)]
    assert [e.split(":")[0] for e in errors] == ["rule 0", "rule 2"]


@pytest.mark.parametrize(
    ("text", "message_start"),
    [
        ('[{"ratio": 1}', "invalid JSON: "),
        ("ratio=1", "invalid JSON: "),
        ("[" * 100_000, "invalid JSON: "),
        ('{"ratio": 1}', "expected a JSON array of rules, got object"),
        ('"x"', "expected a JSON array of rules, got string"),
        ("null", "expected a JSON array of rules, got null"),
    ],
)
def test_parse_rules_bad_document_gives_no_rules_and_one_message(text: str, message_start: str) -> None:
    rules, errors = parse_rules(text)
    assert rules == []
    assert len(errors) == 1
    assert errors[0].startswith(message_start)


def test_rule_constructor_validates_and_is_frozen() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SamplingRule(path="/x")
    rule = SamplingRule(path="/x", ratio=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.path = "/y"  # type: ignore[misc]
    assert rule == SamplingRule(path="/x", ratio=0.0)
    assert repr(rule) == "SamplingRule(name=None, method=None, route=None, path='/x', ratio=0, rate=None)"


# --- rules: matching ---


def rule_decisions(rules: str, cases: list[tuple[str, dict[str, Any] | None]]) -> list[Decision]:
    parsed, errors = parse_rules(rules)
    assert errors == []
    sampler = RuleBasedSampler(parsed, fallback=ALWAYS_OFF)
    return [decide(sampler, name=name, attributes=attributes) for name, attributes in cases]


S, D = Decision.RECORD_AND_SAMPLE, Decision.DROP


def test_first_matching_rule_wins() -> None:
    rules = '[{"path": "/healthz", "ratio": 0}, {"path": "/health*", "ratio": 1}, {"ratio": 0}]'
    cases: list[tuple[str, dict[str, Any] | None]] = [
        ("GET", {"url.path": "/healthz"}),
        ("GET", {"url.path": "/healthcheck"}),
        ("GET", {"url.path": "/orders"}),
    ]
    assert rule_decisions(rules, cases) == [D, S, D]


def test_no_match_uses_the_fallback() -> None:
    rules = [SamplingRule(path="/healthz", ratio=0)]
    assert decide(RuleBasedSampler(rules, fallback=ALWAYS_ON), attributes={"url.path": "/x"}) is S
    assert decide(RuleBasedSampler(rules, fallback=ALWAYS_OFF), attributes={"url.path": "/x"}) is D
    assert decide(RuleBasedSampler([], fallback=ALWAYS_ON)) is S


def test_name_matcher() -> None:
    rules = '[{"name": "POST /orders", "ratio": 1}, {"name": "GET /items/*", "ratio": 1}]'
    cases: list[tuple[str, dict[str, Any] | None]] = [
        ("POST /orders", None),
        ("post /orders", None),  # names are case-sensitive
        ("POST /orders/1", None),
        ("GET /items/7", None),
        ("GET /items", None),
    ]
    assert rule_decisions(rules, cases) == [S, D, D, S, D]


def test_method_matcher_is_case_insensitive_and_exact() -> None:
    rules = '[{"method": "get", "ratio": 1}, {"method": "P*", "ratio": 1}]'
    cases: list[tuple[str, dict[str, Any] | None]] = [
        ("x", {"http.request.method": "GET"}),
        ("x", {"http.request.method": "Get"}),
        ("x", {"http.request.method": "get"}),
        ("x", {"http.request.method": "GETX"}),
        ("x", {"http.request.method": "POST"}),  # "P*" is not a glob for methods
        ("x", {"http.request.method": "P*"}),
        ("GET", {}),  # the span name is not the method
    ]
    assert rule_decisions(rules, cases) == [S, S, S, D, D, S, D]


def test_route_matcher() -> None:
    rules = '[{"route": "/users/{id}", "ratio": 1}, {"route": "/api/v?/*", "ratio": 1}]'
    cases: list[tuple[str, dict[str, Any] | None]] = [
        ("x", {"http.route": "/users/{id}"}),
        ("x", {"http.route": "/users/7"}),
        ("x", {"http.route": "/api/v2/things"}),
        ("x", {"http.route": "/api/v10/things"}),
        ("x", {"url.path": "/users/{id}"}),  # a path is not a route
    ]
    assert rule_decisions(rules, cases) == [S, D, S, D, D]


def test_path_matcher() -> None:
    rules = (
        '[{"path": "/healthz", "ratio": 1}, {"path": "/static/*.css", "ratio": 1},'
        ' {"path": "/v[12]/*", "ratio": 1}]'
    )
    cases: list[tuple[str, dict[str, Any] | None]] = [
        ("x", {"url.path": "/healthz"}),
        ("x", {"url.path": "/Healthz"}),
        ("x", {"url.path": "/healthz/"}),
        ("x", {"url.path": "/static/css/site.css"}),  # fnmatch "*" crosses "/"
        ("x", {"url.path": "/static/site.js"}),
        ("x", {"url.path": "/v1/a"}),
        ("x", {"url.path": "/v3/a"}),
        ("x", {"http.route": "/healthz"}),
    ]
    assert rule_decisions(rules, cases) == [S, D, D, S, D, S, D, D]


def test_every_matcher_of_a_rule_must_match() -> None:
    rules = '[{"method": "POST", "path": "/orders*", "name": "checkout", "ratio": 1}]'
    both: dict[str, Any] = {"http.request.method": "POST", "url.path": "/orders/1"}
    cases: list[tuple[str, dict[str, Any] | None]] = [
        ("checkout", both),
        ("other", both),
        ("checkout", {"http.request.method": "GET", "url.path": "/orders/1"}),
        ("checkout", {"http.request.method": "POST"}),
        ("checkout", None),
    ]
    assert rule_decisions(rules, cases) == [S, D, D, D, D]


def test_rule_without_matchers_matches_everything() -> None:
    cases: list[tuple[str, dict[str, Any] | None]] = [("a", None), ("b", {}), ("c", {"url.path": "/"})]
    assert rule_decisions('[{"ratio": 1}]', cases) == [S, S, S]


def test_non_string_attribute_values_do_not_match() -> None:
    rules = '[{"path": "1", "ratio": 1}, {"method": "GET", "ratio": 1}]'
    cases: list[tuple[str, dict[str, Any] | None]] = [
        ("x", {"url.path": 1}),
        ("x", {"http.request.method": ["GET"]}),
        ("x", {"url.path": None}),
    ]
    assert rule_decisions(rules, cases) == [D, D, D]


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("/a/*", "/a/b/c"),
        ("/a/?", "/a/bc"),
        ("/a/?", "/a/b"),
        ("[!x]*", "y1"),
        ("[!x]*", "x1"),
        ("[a-c]", "b"),
        ("a[", "a["),  # an unclosed bracket is literal
        ("a.b", "aXb"),  # regex metacharacters are literal
        ("a+", "aa"),
        ("*\n*", "x\ny"),
        ("", ""),
    ],
)
def test_globs_follow_fnmatchcase(pattern: str, value: str) -> None:
    if not pattern:
        with pytest.raises(ValueError, match="non-empty"):
            SamplingRule(name=pattern, ratio=1)
        return
    rule = SamplingRule(name=pattern, ratio=1)
    assert rule.matches(value, None) is fnmatch.fnmatchcase(value, pattern)


def test_ratio_rules_decide_by_trace_id() -> None:
    half = RuleBasedSampler([SamplingRule(ratio=0.5)], fallback=ALWAYS_OFF)
    below, above = 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000
    # The same trace id always gets the same decision; the high 64 bits are not used.
    assert [decide(half, trace_id=t) for t in (below, above, below, (5 << 64) | below)] == [S, D, S, S]
    never = RuleBasedSampler([SamplingRule(ratio=0)], fallback=ALWAYS_ON)
    always = RuleBasedSampler([SamplingRule(ratio=1)], fallback=ALWAYS_OFF)
    trace_ids = [0, 1, below, above, HIGH, (1 << 128) - 1]
    assert [decide(never, trace_id=t) for t in trace_ids] == [D] * 6
    assert [decide(always, trace_id=t) for t in trace_ids] == [S] * 6


def test_rate_rules_have_their_own_buckets() -> None:
    clock = FakeClock()
    rules = [SamplingRule(name="a", rate=2), SamplingRule(name="b", rate=1)]
    sampler = RuleBasedSampler(rules, fallback=ALWAYS_ON, clock=clock)
    assert count_sampled(sampler, 10, name="a") == 2
    assert count_sampled(sampler, 10, name="b") == 1
    assert count_sampled(sampler, 10, name="c") == 10  # fallback, unlimited
    clock.now = 1.0
    assert count_sampled(sampler, 10, name="a") == 2
    assert count_sampled(sampler, 10, name="b") == 1
    assert sampler.get_description() == "RuleBasedSampler{rules:2,fallback:AlwaysOnSampler}"


def test_rate_rules_of_two_samplers_do_not_share_a_bucket() -> None:
    rules = [SamplingRule(rate=1)]
    first = RuleBasedSampler(rules, fallback=ALWAYS_OFF, clock=FakeClock())
    second = RuleBasedSampler(rules, fallback=ALWAYS_OFF, clock=FakeClock())
    assert (count_sampled(first, 3), count_sampled(second, 3)) == (1, 1)


# --- rules under parent-based samplers ---


@pytest.mark.parametrize("remote", [True, False])
def test_parent_based_rules_honour_a_sampled_parent(remote: bool) -> None:
    sampler, _ = build_sampler("parentbased_always_on", None, [SamplingRule(path="/healthz", ratio=0)])
    health: dict[str, Any] = {"url.path": "/healthz"}
    assert decide(sampler, attributes=health) is D  # root span: the rule decides
    assert decide(sampler, attributes=health, context=parent(sampled=True, remote=remote)) is S


@pytest.mark.parametrize("remote", [True, False])
def test_parent_based_rules_honour_an_unsampled_parent(remote: bool) -> None:
    sampler, _ = build_sampler("parentbased_always_off", None, [SamplingRule(name="GET *", ratio=1)])
    assert decide(sampler, name="GET /x") is S  # root span: the rule decides
    assert decide(sampler, name="GET /x", context=parent(sampled=False, remote=remote)) is D
    assert decide(sampler, name="other") is D  # root span, no rule: the fallback decides


def test_plain_sampler_rules_apply_to_every_span() -> None:
    sampler, _ = build_sampler("always_on", None, [SamplingRule(path="/healthz", ratio=0)])
    health: dict[str, Any] = {"url.path": "/healthz"}
    assert decide(sampler, attributes=health, context=parent(sampled=True)) is D
    assert decide(sampler, attributes={"url.path": "/x"}, context=parent(sampled=False)) is S


def test_rule_result_keeps_the_parent_trace_state() -> None:
    sampler = RuleBasedSampler([SamplingRule(ratio=1)], fallback=ALWAYS_OFF)
    result = sampler.should_sample(parent(sampled=True), 0xABC, "x", attributes={"a": "b"})
    assert isinstance(result, SamplingResult)
    assert result.trace_state == TraceState([("vendor", "value")])
    assert dict(result.attributes) == {"a": "b"}


# --- rules read only what they are given ---


class RecordingAttributes(Mapping[str, Any]):
    """Attributes that log every read; enumerating them fails the test."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values
        self.reads: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.reads.append(key)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("rules must not enumerate the attributes")

    def __len__(self) -> int:
        raise AssertionError("rules must not size the attributes")


def test_matching_reads_only_the_named_attributes() -> None:
    rules = [
        SamplingRule(method="POST", path="/a", ratio=1),
        SamplingRule(route="/r/*", name="n", ratio=1),
        SamplingRule(name="other", ratio=1),
    ]
    attributes = RecordingAttributes({"url.path": "/a", "http.route": "/r/1", "http.target": "/a"})
    sampler = RuleBasedSampler(rules, fallback=ALWAYS_OFF)
    assert sampler.should_sample(ROOT, LOW, "m", attributes=attributes).decision is D
    # Rule 1 stops at the missing method, rule 2 at the name; rule 3 needs no attribute.
    assert attributes.reads == ["http.request.method", "http.route"]


def test_decision_ignores_everything_but_name_and_attributes() -> None:
    sampler = RuleBasedSampler([SamplingRule(path="/healthz", ratio=0)], fallback=ALWAYS_ON)
    # A current span, the kind, links and trace state play no part in matching.
    current = trace.set_span_in_context(NonRecordingSpan(SpanContext(1, 2, False)), Context())
    for kind in (SpanKind.SERVER, SpanKind.INTERNAL, None):
        result = sampler.should_sample(
            current, LOW, "GET /healthz", kind, {"url.path": "/healthz"}, [], TraceState([("a", "b")])
        )
        assert result.decision is D
    # Older semantic-convention names for the same facts are not looked at.
    old = {"http.target": "/healthz", "http.url": "http://h/healthz", "http.method": "GET"}
    assert decide(sampler, name="GET /healthz", attributes=old) is S
