"""Threads, thread pools and process pools: work started from a traced request continues its trace.

The OpenTelemetry context lives in ``contextvars``, which a new thread does not inherit and
``ThreadPoolExecutor`` (so ``loop.run_in_executor`` too) does not carry into its workers. Patched (the
standard library, 3.9-3.13):

- ``threading.Thread.start``: the thread runs in the context current when it was started.
- ``concurrent.futures.ThreadPoolExecutor.submit`` (``map`` goes through it): each call runs in the
  context current at submission, *always*, even an empty one. A pool's worker thread is started by
  the first ``submit`` that needs it, so it would otherwise keep that first caller's span for every
  later job, and work submitted outside any span would get a false parent.
- ``concurrent.futures.ProcessPoolExecutor.submit`` (``map`` goes through it too): the call runs in
  another process, where the in-memory context cannot follow. The callable is wrapped in
  ``InContext``, a small picklable object holding the W3C ``traceparent``/``tracestate``/``baggage``
  of the submitting context (baggage within the W3C limits); in the worker it attaches that context
  around the call. This works under the fork, spawn and forkserver start methods; every job carries
  its context, so a forked worker never keeps the span of the request that happened to fork it. The
  W3C format is used whatever ``OTEL_PROPAGATORS`` says: the hop is between two processes of this
  app, not with a peer that speaks another format. A worker process where autotrace is not active
  just calls the function.

Only the OpenTelemetry context is carried (the current span, baggage), never the app's other context
variables; it is attached and detached inside the same call. asyncio tasks need nothing: they copy
the context themselves. The user's callable is called exactly as without us: what cannot be pickled
fails with the same error, on the same future.
"""

from __future__ import annotations

import sys

from autotrace._errors import guard
from autotrace.instrumentation._installer import Installer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

# Installed once OpenTelemetry's context is loaded: before that there is no context to carry, and
# threading itself is imported long before (by the interpreter's start-up, and by ours).
TARGET = "opentelemetry.context"
REQUIRES = None
NEEDS_SDK = False

_installer = Installer(__name__)


otel_context: Any = None  # opentelemetry.context, bound at install (importing this module must not)
_w3c: Any = None  # traceparent/tracestate + baggage propagator, made on the first process-pool call


def install(tracing: Any, config: Any) -> None:
    global otel_context
    import threading

    from opentelemetry import context

    otel_context = context
    _installer.start()
    _installer.wrap(threading.Thread, "start", _start)

    def patch_thread_pool(module: Any) -> None:
        _installer.wrap(module.ThreadPoolExecutor, "submit", _submit)

    def patch_process_pool(module: Any) -> None:
        _installer.wrap(module.ProcessPoolExecutor, "submit", _submit_to_process)

    _installer.when_imported("concurrent.futures.thread", patch_thread_pool)
    _installer.when_imported("concurrent.futures.process", patch_process_pool)


def uninstall() -> None:
    _installer.stop()


def carried(fn: Callable[..., Any], ctx: Any) -> Callable[..., Any]:
    def run_in_context(*args: Any, **kwargs: Any) -> Any:
        token = otel_context.attach(ctx)
        try:
            return fn(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return run_in_context


def _start(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    with guard("threads: Thread.start"):
        ctx = otel_context.get_current()
        if ctx:  # a new thread starts with an empty context already
            instance.run = carried(instance.run, ctx)
    return wrapped(*args, **kwargs)


def _submit(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        with guard("threads: ThreadPoolExecutor.submit"):
            args = (carried(args[0], otel_context.get_current()), *args[1:])
    return wrapped(*args, **kwargs)


def _submit_to_process(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if args:
        with guard("threads: ProcessPoolExecutor.submit"):
            args = (InContext(args[0], _headers_of(otel_context.get_current())), *args[1:])
    return wrapped(*args, **kwargs)


def _propagator() -> Any:
    global _w3c
    if _w3c is None:
        from autotrace import propagation

        parts = (propagation.TraceContextPropagator(), propagation.BaggagePropagator())
        _w3c = propagation.CompositePropagator(parts)
    return _w3c


def _headers_of(ctx: Any) -> dict[str, str]:
    """The W3C headers of ``ctx``: empty for an empty context (no span, no baggage)."""
    headers: dict[str, str] = {}
    if ctx:
        _propagator().inject(headers, context=ctx)
    return headers


class InContext:
    """A call made in a pool process, in the trace context it was submitted from.

    Picklable by reference to this module-level class (spawn and forkserver workers import it); the
    wrapped callable is pickled as it would have been on its own.
    """

    __slots__ = ("fn", "headers")

    def __init__(self, fn: Callable[..., Any], headers: dict[str, str]) -> None:
        self.fn = fn
        self.headers = headers

    def __reduce__(self) -> tuple[type[InContext], tuple[Callable[..., Any], dict[str, str]]]:
        return InContext, (self.fn, self.headers)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        token = None
        with guard("threads: context in a pool process"):
            token = _attach(self.headers)
        try:
            return self.fn(*args, **kwargs)
        finally:
            if token is not None:
                with guard("threads: context in a pool process"):
                    _otel_context().detach(token)


def _attach(headers: dict[str, str]) -> object | None:
    """Make the submitter's context current here (replacing whatever this process had); None when
    autotrace is not active in this process, which then runs the call untouched."""
    bootstrap = sys.modules.get("autotrace.bootstrap")
    if bootstrap is None or bootstrap.agent() is None:
        return None
    from opentelemetry.context import Context

    # Extract into a fresh context: a forked worker's own current context is another request's.
    ctx = _propagator().extract(headers, context=Context()) if headers else Context()
    token: object = _otel_context().attach(ctx)
    return token


def _otel_context() -> Any:
    """opentelemetry.context, also in a worker process where this instrumentation was never installed."""
    from opentelemetry import context

    return context
