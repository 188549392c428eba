"""Threads and thread pools: work started from a traced request continues its trace.

The OpenTelemetry context lives in ``contextvars``, which a new thread does not inherit and
``ThreadPoolExecutor`` (so ``loop.run_in_executor`` too) does not carry into its workers. Patched (the
standard library): ``threading.Thread.start`` makes the thread run in the context current when it was
started, and ``concurrent.futures.ThreadPoolExecutor.submit`` runs each submitted call in the context
current at submission. Only the OpenTelemetry context is carried (the current span, baggage), never the
app's other context variables; it is attached and detached inside the same call. asyncio tasks need
nothing: they copy the context themselves.
"""

from __future__ import annotations

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


def install(tracing: Any, config: Any) -> None:
    global otel_context
    import threading

    from opentelemetry import context

    otel_context = context
    _installer.start()
    _installer.wrap(threading.Thread, "start", _start)

    def patch_pool(module: Any) -> None:
        _installer.wrap(module.ThreadPoolExecutor, "submit", _submit)

    _installer.when_imported("concurrent.futures.thread", patch_pool)


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
    ctx = otel_context.get_current()
    if ctx:  # an empty context needs no carrying
        instance.run = carried(instance.run, ctx)
    return wrapped(*args, **kwargs)


def _submit(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    ctx = otel_context.get_current()
    if ctx and args:
        args = (carried(args[0], ctx), *args[1:])
    return wrapped(*args, **kwargs)
