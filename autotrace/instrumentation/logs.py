"""Log correlation: standard ``logging`` records name the trace they were written in.

Patched (the standard library, 3.9 to 3.13): ``logging.Logger.makeRecord``, which every ``logger.info``
and friends go through. Each record gets four attributes, usable in any format string
(``%(trace_id)s``) or by any handler or JSON formatter that reads record attributes:

| attribute | inside a span | outside |
|---|---|---|
| ``trace_id`` | 32 lowercase hex digits | ``""`` |
| ``span_id`` | 16 lowercase hex digits | ``""`` |
| ``trace_flags`` | ``01`` sampled, ``00`` not | ``""`` |
| ``service_name`` | ``OTEL_SERVICE_NAME`` or the derived name | the same |

The attributes are added after the logger applied ``extra``, and only where ``extra`` did not set them,
so an app that passes its own ``trace_id`` keeps it (and never gets the KeyError a record factory would
cause). ``AUTOTRACE_LOG_CORRELATION=false`` turns this off.

``AUTOTRACE_LOG_FORMAT`` (off by default) puts the fields into the output of the root logger's handlers:
``true`` injects ``[trace_id=… span_id=… trace_flags=… service.name=…]`` just before the message, or give
your own fragment (``AUTOTRACE_LOG_FORMAT='trace=%(trace_id)s'``). It is applied to each handler on the
root logger (``basicConfig``, ``dictConfig``, ``addHandler``) when the first record after it was added
is made, in the handler's own style (``%``, ``{`` or ``$``).

The current span is looked up only once the app has loaded OpenTelemetry's trace API: importing
``logging`` does not build the SDK, and a process that never traces pays one dictionary lookup a record.
"""

from __future__ import annotations

import re
import sys
import weakref

from autotrace._errors import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any, Callable

TARGET = "logging"
REQUIRES = None
NEEDS_SDK = False  # no spans of its own; must not build the SDK when the app imports logging

FIELDS = ("trace_id", "span_id", "trace_flags", "service_name")
_NO_SPAN = ("", "", "")

# Patched by hand, not through wrapt: ``logging`` is first imported in the middle of other imports
# (``concurrent.futures`` imports it half-way through loading itself), and importing wrapt there would
# import asyncio, which needs ``concurrent.futures`` complete. So this install imports nothing.
_installed: tuple[Any, Any] | None = None  # (the class, its own makeRecord)


def install(tracing: Any, config: Any) -> None:
    global _installed
    import logging

    if _installed is not None or not (config.log_correlation or config.log_format):
        return
    original = logging.Logger.makeRecord
    wrapper = _make_record_wrapper(config.service_name, config.log_format)

    def makeRecord(self: Any, *args: Any, **kwargs: Any) -> Any:
        return wrapper(original, self, args, kwargs)

    makeRecord.__wrapped__ = original  # type: ignore[attr-defined]
    logging.Logger.makeRecord = makeRecord  # type: ignore[method-assign]
    _installed = (logging.Logger, original)


def registered() -> bool:
    """Whether our makeRecord is in place (patched by hand, so the patch table does not list it)."""
    return _installed is not None


def uninstall() -> None:
    global _installed
    if _installed is not None:
        owner, original = _installed
        owner.makeRecord = original
        _installed = None


def current_ids() -> tuple[str, str, str]:
    """(trace_id, span_id, trace_flags) of the current span, as hex, or empty strings."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return _NO_SPAN
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return _NO_SPAN
    flags = format(context.trace_flags, "02x")
    return format(context.trace_id, "032x"), format(context.span_id, "016x"), flags


def _make_record_wrapper(service: str, fragment: str) -> Callable[..., Any]:
    injector = _FormatInjector(fragment) if fragment else None

    def make_record(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        record = wrapped(instance, *args, **kwargs)
        with guard("log correlation"):
            values = record.__dict__
            for name, value in zip(FIELDS, (*current_ids(), service)):
                if name not in values:
                    values[name] = value
            if injector is not None:
                injector.apply()
        return record

    return make_record


_PERCENT_FIELD = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")


class _FormatInjector:
    """Adds the fragment to the format of each root handler, once per handler."""

    def __init__(self, fragment: str) -> None:
        self.fragment = fragment
        self.done: weakref.WeakSet[logging.Handler] = weakref.WeakSet()

    def apply(self) -> None:
        import logging

        for handler in logging.getLogger().handlers:
            if handler not in self.done:
                self.done.add(handler)
                inject(handler, self.fragment)


def inject(handler: logging.Handler, fragment: str) -> None:
    """Put ``fragment`` (%-style) into the handler's format, before the message, in its own style."""
    import logging

    formatter = handler.formatter
    if formatter is None:
        formatter = logging.Formatter(logging.BASIC_FORMAT)
        handler.setFormatter(formatter)
    style = formatter._style
    if fragment in style._fmt:
        return
    if isinstance(style, logging.StringTemplateStyle):
        piece, message = _PERCENT_FIELD.sub(r"${\1}", fragment), "${message}"
    elif isinstance(style, logging.StrFormatStyle):
        piece, message = _PERCENT_FIELD.sub(r"{\1}", fragment), "{message}"
    else:
        piece, message = fragment, "%(message)s"
    old = style._fmt
    new = old.replace(message, f"{piece} {message}", 1) if message in old else f"{old} {piece}"
    style._fmt = new
    formatter._fmt = new
