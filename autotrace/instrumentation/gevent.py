"""gevent: a greenlet runs in the trace context current where it was started.

Each greenlet has its own ``contextvars`` context (greenlet 1.0 and later), and a new one starts
empty: without this, a query made in ``gevent.spawn(...)`` inside a request starts a trace of its own.
Nothing is patched (gevent's ``Greenlet`` is a compiled, immutable type): a spawn callback is
registered with ``Greenlet.add_spawn_callback`` (gevent 1.3 and later; written against gevent 26.9 and
greenlet 3.5). gevent calls it in the greenlet that calls ``start()`` or ``start_later()``, which
every way of starting a ``Greenlet`` goes through: ``gevent.spawn``, ``spawn_later``,
``Greenlet(...).start()``, ``Group``/``Pool`` ``spawn``, ``map``, ``imap`` and ``apply``. When
an OpenTelemetry context is current there, the new greenlet's context (``gr_context``) is set to a
fresh one holding only it: the app's other context variables are not carried, as for threads. A
greenlet whose ``gr_context`` the app set itself is left alone. ``gevent.spawn_raw`` makes a bare
greenlet without spawn callbacks: it starts with an empty context.
"""

from __future__ import annotations

from autotrace._errors import guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TARGET = "gevent"
# 21.1 is the first gevent that requires greenlet 1.0, the first with a context per greenlet.
REQUIRES = "gevent >= 21.1"
NEEDS_SDK = False  # it carries context and makes no span: installing it must not build the SDK

otel_context: Any = None  # opentelemetry.context, bound at install (importing this module must not)
_registered_with: Any = None  # the Greenlet class holding our callback, for uninstall


def install(tracing: Any, config: Any) -> None:
    global otel_context, _registered_with
    from gevent import Greenlet
    from opentelemetry import context

    otel_context = context
    Greenlet.add_spawn_callback(carry_into)  # a set: registering twice keeps one
    _registered_with = Greenlet


def uninstall() -> None:
    global _registered_with
    if _registered_with is not None:
        _registered_with.remove_spawn_callback(carry_into)
        _registered_with = None


def registered() -> bool:
    return _registered_with is not None


def carry_into(greenlet: Any) -> None:
    """gevent's spawn callback: runs in the starting greenlet, before the new one first runs."""
    with guard("gevent: greenlet start"):
        ctx = otel_context.get_current()
        # An empty context needs no carrying: the greenlet starts with one already.
        if ctx and greenlet.gr_context is None:
            greenlet.gr_context = holding(ctx)


def holding(ctx: Any) -> Any:
    """A new ``contextvars.Context`` in which ``ctx`` is the current OpenTelemetry context.

    The token of this attach is never detached: the Context belongs to the greenlet alone and goes
    with it.
    """
    import contextvars

    fresh = contextvars.Context()
    fresh.run(otel_context.attach, ctx)
    return fresh
