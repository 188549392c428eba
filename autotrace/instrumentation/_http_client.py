"""What every CLIENT span shares, whichever library makes the HTTP call.

One exchange, one span: the layer that makes a span puts its ``ClientCall`` in the context for the
duration of the exchange, and the layers below it (``http.client`` under urllib3, say) find it there
and stand aside. The exporter's own calls run with instrumentation suppressed and get nothing.

Propagation: ``traceparent``/``tracestate`` (and b3/jaeger if configured) go to every host unless
``AUTOTRACE_PROPAGATION_TARGETS`` narrows them; ``baggage`` goes only to hosts matching
``AUTOTRACE_BAGGAGE_TARGETS`` (none by default: it may carry user data). They are injected even when the
trace is not sampled, so the next service makes the same decision.
"""

from __future__ import annotations

import fnmatch

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from autotrace import _errors, redact
from autotrace import semconv as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Callable

    from opentelemetry.context import Context

_CALL_KEY = otel_context.create_key("autotrace-http-client-call")
_ATTEMPTS_KEY = otel_context.create_key("autotrace-http-client-attempts")
_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY
_BAGGAGE_FIELDS = ("baggage",)
_BAGGAGE_PREFIXES = ("uberctx-",)


class ClientSettings:
    """What client spans need, made once per SDK set-up."""

    __slots__ = (
        "_tracing",
        "allows_baggage",
        "allows_propagation",
        "capture_request",
        "capture_response",
        "query_sensitive",
        "sensitive",
        "tracer",
    )

    def __init__(self, tracing: Any) -> None:
        http = tracing.config.http
        self.tracer: trace.Tracer = tracing.tracer("http.client")
        self._tracing = tracing
        self.allows_propagation = host_matcher(http.propagation_targets, default=True)
        self.allows_baggage = host_matcher(http.baggage_targets, default=False)
        self.capture_request = http.capture_client_request_headers
        self.capture_response = http.capture_client_response_headers
        self.sensitive = http.sanitize_fields
        self.query_sensitive = http.sanitize_fields | http.redact_query_params

    @property
    def propagator(self) -> Any:
        # Asked for at the first request, not at install: see sdk.Tracing.propagator.
        return self._tracing.propagator


_settings: dict[int, ClientSettings] = {}


def settings_for(tracing: Any) -> ClientSettings:
    found = _settings.get(id(tracing))
    if found is None:
        found = _settings[id(tracing)] = ClientSettings(tracing)
    return found


def host_matcher(globs: Iterable[str] | None, default: bool) -> Callable[[str], bool]:
    """Case-insensitive host globs (``*.internal``, ``api.example.com``); None means ``default``."""
    if globs is None:
        return lambda host: default
    patterns = tuple(g.lower() for g in globs)
    if not patterns:
        return lambda host: False
    return lambda host: any(fnmatch.fnmatchcase(host.lower(), p) for p in patterns)


def busy() -> bool:
    """Whether this exchange is already covered (a layer above made its span) or must not be traced."""
    return otel_context.get_value(_CALL_KEY) is not None or bool(otel_context.get_value(_SUPPRESS_KEY))


class _Attempts:
    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = 0


def logical_request(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wrapper for a library's "one request, redirects and retries included" entry point (requests'
    ``Session.send``, urllib3's ``urlopen``, urllib's ``OpenerDirector.open``): the exchanges made
    inside it count as resends, numbered in ``http.request.resend_count``. Nested entry points share
    the outermost count. No span is made here: each exchange on the wire gets its own."""
    if otel_context.get_value(_ATTEMPTS_KEY) is not None:
        return wrapped(*args, **kwargs)
    token = otel_context.attach(otel_context.set_value(_ATTEMPTS_KEY, _Attempts()))
    try:
        return wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)


async def logical_request_async(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``logical_request`` for a coroutine method: the context is attached in the awaiting task."""
    if otel_context.get_value(_ATTEMPTS_KEY) is not None:
        return await wrapped(*args, **kwargs)
    token = otel_context.attach(otel_context.set_value(_ATTEMPTS_KEY, _Attempts()))
    try:
        return await wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)


def next_resend_count() -> int:
    attempts = otel_context.get_value(_ATTEMPTS_KEY)
    if not isinstance(attempts, _Attempts):
        return 0
    count = attempts.sent
    attempts.sent = count + 1
    return count


def full_url(scheme: str, host: str, port: int | None, target: str) -> str:
    """``url.full`` from a connection and a request target (an absolute target, as to a proxy, wins)."""
    if "://" in target:
        return target
    default = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port in (None, default) else f"{shown}:{port}"
    return f"{scheme}://{authority}{target if target.startswith('/') else '/' + target}"


class ClientCall:
    """One outgoing exchange: its span, the headers to send, what came back. Methods never raise."""

    __slots__ = ("ended", "host", "settings", "span")

    def __init__(self, settings: ClientSettings, span: trace.Span, host: str) -> None:
        self.settings = settings
        self.span = span
        self.host = host
        self.ended = False

    def headers(self) -> list[tuple[str, str]]:
        """The propagation headers for this exchange's host (empty when the host is not a target)."""
        carrier: dict[str, str] = {}
        with _errors.guard("http client inject"):
            settings = self.settings
            ctx = trace.set_span_in_context(self.span)
            settings.propagator.inject(carrier, context=ctx)
            allow_trace = settings.allows_propagation(self.host)
            allow_baggage = settings.allows_baggage(self.host)
            for key in list(carrier):
                is_baggage = key in _BAGGAGE_FIELDS or key.startswith(_BAGGAGE_PREFIXES)
                if not (allow_baggage if is_baggage else allow_trace):
                    del carrier[key]
        return list(carrier.items())

    def context(self) -> Context:
        """The context to make current during the exchange: lower layers then stand aside."""
        return otel_context.set_value(_CALL_KEY, self)

    def request_headers(self, lookup: Callable[[str], list[str]]) -> None:
        self._capture(self.settings.capture_request, sc.HTTP_REQUEST_HEADER, lookup)

    def response(self, status: int, lookup: Callable[[str], list[str]], protocol: str | None = None) -> None:
        span = self.span
        with _errors.guard("http client response"):
            if not span.is_recording():
                return
            span.set_attribute(sc.HTTP_RESPONSE_STATUS_CODE, status)
            if protocol:
                span.set_attribute(sc.NETWORK_PROTOCOL_VERSION, protocol)
            if status >= 400:
                span.set_attribute(sc.ERROR_TYPE, str(status))
                span.set_status(Status(StatusCode.ERROR))
            self._capture(self.settings.capture_response, sc.HTTP_RESPONSE_HEADER, lookup)

    def _capture(self, names: tuple[str, ...], prefix: str, lookup: Callable[[str], list[str]]) -> None:
        if not names:
            return
        with _errors.guard("http client headers"):
            if not self.span.is_recording():
                return
            sensitive = self.settings.sensitive
            for name in names:
                values = lookup(name)
                if values:
                    shown = [redact.header_value(name, v, sensitive) for v in values]
                    self.span.set_attribute(prefix + name, shown)

    def finish(self, exc: BaseException | None = None) -> None:
        """End the span, with ``exc`` recorded. Often called while ``exc`` is being handled: an error
        of ours escaping here would be chained onto the app's exception, or replace it."""
        if self.ended:
            return
        self.ended = True
        span = self.span
        if exc is not None and isinstance(exc, Exception):
            with _errors.guard("http client exception"):
                if span.is_recording():
                    span.record_exception(exc, escaped=True)
                    span.set_attribute(sc.ERROR_TYPE, _qualified_name(type(exc)))
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        with _errors.guard("http client span end"):  # span processors run in end(): never trust them
            span.end()


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def start(
    settings: ClientSettings,
    method: str,
    url: str,
    host: str,
    port: int | None,
    resend_count: int | None = None,
) -> ClientCall:
    """Start the CLIENT span of one exchange (the caller checked ``busy()`` first)."""
    if resend_count is None:
        resend_count = next_resend_count()
    known = method in sc.KNOWN_METHODS
    attributes: dict[str, Any] = {
        sc.HTTP_REQUEST_METHOD: method if known else sc.OTHER_METHOD,
        sc.URL_FULL: redact.url(url, settings.query_sensitive),
        sc.SERVER_ADDRESS: host,
    }
    if port is not None:
        attributes[sc.SERVER_PORT] = port
    if not known:
        attributes[sc.HTTP_REQUEST_METHOD_ORIGINAL] = method
    if resend_count:
        attributes[sc.HTTP_REQUEST_RESEND_COUNT] = resend_count
    span = settings.tracer.start_span(
        method if known else "HTTP", kind=SpanKind.CLIENT, attributes=attributes
    )
    return ClientCall(settings, span, host)
