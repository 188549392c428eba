"""gevent against the real library: a greenlet starts in the OpenTelemetry context current at start()."""

from __future__ import annotations

import contextvars
from typing import Any

import gevent
from gevent.pool import Pool
from opentelemetry import trace

from autotrace.instrumentation import gevent as carrying
from tests.instrumentation.conftest import instrumented

mine: contextvars.ContextVar[str] = contextvars.ContextVar("mine", default="unset")


def current_span_id() -> int:
    return trace.get_current_span().get_span_context().span_id


def test_every_way_of_starting_a_greenlet_carries_the_context() -> None:
    with instrumented("gevent") as rec, rec.tracer.start_as_current_span("request") as span:
        expected = span.get_span_context().span_id
        greenlet = gevent.Greenlet(current_span_id)
        greenlet.start()
        seen = [
            gevent.spawn(current_span_id).get(),
            greenlet.get(),
            gevent.Greenlet.spawn(current_span_id).get(),
            gevent.spawn_later(0, current_span_id).get(),
            *Pool(2).map(lambda _: current_span_id(), range(2)),
            *Pool(2).imap_unordered(lambda _: current_span_id(), range(2)),
            gevent.spawn(lambda: gevent.spawn(current_span_id).get()).get(),
        ]
    assert seen == [expected] * len(seen)


def test_only_the_trace_context_is_carried_and_only_from_inside_a_span() -> None:
    with instrumented("gevent") as rec:
        assert gevent.spawn(current_span_id).get() == 0  # no span: nothing to carry
        token = mine.set("app value")
        try:
            with rec.tracer.start_as_current_span("request"):
                assert gevent.spawn(mine.get).get() == "unset"
        finally:
            mine.reset(token)


def test_a_context_the_app_gave_its_greenlet_is_left_alone() -> None:
    with instrumented("gevent") as rec, rec.tracer.start_as_current_span("request"):
        own = contextvars.Context()
        own.run(mine.set, "own")
        greenlet = gevent.Greenlet(lambda: (mine.get(), current_span_id()))
        greenlet.gr_context = own
        greenlet.start()
        assert greenlet.get() == ("own", 0)


def test_install_twice_then_uninstall_carries_nothing() -> None:
    with instrumented("gevent") as rec:
        carrying.install(rec.tracing, rec.tracing.config)
        assert carrying.registered()
    assert not carrying.registered()
    with rec.tracer.start_as_current_span("request"):
        assert gevent.spawn(current_span_id).get() == 0


def test_a_failing_callback_never_stops_the_greenlet(monkeypatch: Any) -> None:
    """A failure in our callback is contained: the greenlet still starts (strict mode off here)."""
    from autotrace import _errors

    with instrumented("gevent") as rec, rec.tracer.start_as_current_span("request"):
        monkeypatch.setattr(_errors, "_strict", False)
        monkeypatch.setattr(carrying, "holding", _broken)
        assert gevent.spawn(lambda: "ran").get() == "ran"
        assert _errors.error_counts().get("gevent: greenlet start", 0) >= 1


def _broken(ctx: Any) -> Any:
    raise RuntimeError("broken on purpose")
