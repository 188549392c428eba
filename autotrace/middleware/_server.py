"""What every SERVER span shares, whichever layer makes it (server hook, framework hook, middleware).

One request, one span: the first layer to see a request makes its span and puts a ``ServerRequest``
in the OpenTelemetry context it makes current; every inner layer finds it there (``current()``) and
only adds what it knows: the route template, an exception its framework turned into a 500. The span is
named ``METHOD`` at first and ``METHOD /route/{template}`` once a framework names the route.

Hot path: the sampler decides on the method, path and scheme alone; the other attributes are built only
for a recording span.
"""

from __future__ import annotations

import re

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from autotrace import _errors, _log, redact
from autotrace import semconv as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Callable

    from opentelemetry.context import Context
    from opentelemetry.propagators.textmap import TextMapPropagator

    from autotrace.config import HttpConfig

_REQUEST_KEY = otel_context.create_key("autotrace-server-request")
SCOPE = "autotrace.server"


class ServerSettings:
    """Everything a server span needs, made once per instrumentation (or per hand-added middleware)."""

    __slots__ = (
        "_propagator",
        "_tracing",
        "capture_request",
        "capture_response",
        "excluded",
        "query_sensitive",
        "sensitive",
        "trace_response",
        "tracer",
    )

    def __init__(
        self,
        tracer: trace.Tracer,
        propagator: TextMapPropagator | None,
        http: HttpConfig,
        tracing: Any = None,
    ) -> None:
        self.tracer = tracer
        self._propagator = propagator
        self._tracing = tracing
        self.excluded = compile_excluded(http.excluded_urls)
        self.capture_request = http.capture_request_headers
        self.capture_response = http.capture_response_headers
        self.sensitive = http.sanitize_fields
        self.query_sensitive = http.sanitize_fields | http.redact_query_params
        self.trace_response = http.trace_response

    @classmethod
    def from_tracing(cls, tracing: Any) -> ServerSettings:
        # The propagator is asked for at the first request, not now: see sdk.Tracing.propagator.
        return cls(tracing.tracer("server"), None, tracing.config.http, tracing)

    @property
    def propagator(self) -> TextMapPropagator:
        propagator = self._propagator
        if propagator is None:
            propagator = self._propagator = self._tracing.propagator
        return propagator


def compile_excluded(patterns: Iterable[str]) -> Callable[[str], object] | None:
    """One regular expression searched in the full URL; a pattern that is not a valid one is taken as
    plain text (with a warning), so ``/healthz`` and ``health.*`` both work."""
    searches = []
    for pattern in patterns:
        try:
            # Compiled one by one: a pattern with a global flag, ``(?i)health``, is valid alone but not
            # inside an alternation.
            searches.append(re.compile(pattern).search)
        except re.error as exc:
            _log.warn(
                "excluded URL pattern %r is not a regular expression (%s); matched as text", pattern, exc
            )
            searches.append(re.compile(re.escape(pattern)).search)
    if not searches:
        return None
    if len(searches) == 1:
        return searches[0]
    return lambda url: any(search(url) for search in searches)


class _Excluded:
    """Marks the context of a request whose URL is excluded: no span, and no inner layer makes one."""

    ended = False


EXCLUDED = _Excluded()


def handled() -> bool:
    """Whether an outer layer already took this request (made its span, or excluded it)."""
    found = otel_context.get_value(_REQUEST_KEY)
    return found is EXCLUDED or (isinstance(found, ServerRequest) and not found.ended)


def current() -> ServerRequest | None:
    """The request whose SERVER span is current here, if any (and not finished)."""
    found = otel_context.get_value(_REQUEST_KEY)
    if isinstance(found, ServerRequest) and not found.ended:
        return found
    return None


class ServerRequest:
    """One request's span and what layers learn about it; its methods never raise."""

    __slots__ = ("ended", "error_recorded", "method", "route", "route_prefix", "settings", "span", "status")

    def __init__(self, settings: ServerSettings, span: trace.Span, method: str) -> None:
        self.settings = settings
        self.span = span
        self.method = method
        self.route: str | None = None
        self.route_prefix = ""  # mount prefixes seen on the way to the route (Starlette)
        self.status: int | None = None
        self.ended = False
        self.error_recorded = False

    def set_route(self, template: str) -> None:
        if template:
            self.route = template

    def response_started(self, status: int, headers: Callable[[str], list[str]]) -> None:
        self.status = status
        span = self.span
        if not span.is_recording():
            return
        with _errors.guard("server span response"):
            span.set_attribute(sc.HTTP_RESPONSE_STATUS_CODE, status)
            for name in self.settings.capture_response:
                values = headers(name)
                if values:
                    sensitive = self.settings.sensitive
                    shown = [redact.header_value(name, v, sensitive) for v in values]
                    span.set_attribute(sc.HTTP_RESPONSE_HEADER + name, shown)

    def trace_response_headers(self) -> list[tuple[str, str]]:
        """``traceresponse`` and ``Server-Timing`` for the response, when AUTOTRACE_TRACE_RESPONSE is on."""
        if not self.settings.trace_response:
            return []
        ctx = self.span.get_span_context()
        if not ctx.is_valid:
            return []
        value = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
        return [("traceresponse", value), ("server-timing", f'traceparent;desc="{value}"')]

    def record_exception(self, exc: BaseException) -> None:
        """An exception from the app (or one its framework turned into a 500): recorded once.

        Called from the middleware's ``except`` blocks: everything here is guarded, so nothing of ours
        can be chained onto the app's exception or replace it.
        """
        if self.error_recorded or not isinstance(exc, Exception):
            return
        self.error_recorded = True
        with _errors.guard("server span exception"):
            span = self.span
            if span.is_recording():
                span.record_exception(exc, escaped=True)
                span.set_attribute(sc.ERROR_TYPE, _qualified_name(type(exc)))
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))

    def finish(self, exc: BaseException | None = None) -> None:
        """End the span. With ``exc`` and no response started, the server sends a 500: say so.

        Called in ``except`` and ``finally`` blocks and from the app's ``send``/iteration: never raises.
        """
        if self.ended:
            return
        self.ended = True
        if exc is not None:
            with _errors.guard("server span exception"):
                self.record_exception(exc)
            if self.status is None and isinstance(exc, Exception):
                self.status = 500
        span = self.span
        with _errors.guard("server span end"):
            if span.is_recording():
                if exc is not None and self.status == 500:
                    span.set_attribute(sc.HTTP_RESPONSE_STATUS_CODE, 500)
                self._final_attributes(span)
        with _errors.guard("server span end"):
            span.end()

    def _final_attributes(self, span: trace.Span) -> None:
        if self.route:
            span.set_attribute(sc.HTTP_ROUTE, self.route)
            span.update_name(f"{self.method} {self.route}")
        status = self.status
        if status is not None and status >= 500:
            if not self.error_recorded:
                span.set_attribute(sc.ERROR_TYPE, str(status))
            span.set_status(Status(StatusCode.ERROR))


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


class RequestFacts:
    """What a server layer knows about a request before the app runs, in plain values."""

    __slots__ = (
        "client_port",
        "header",
        "method",
        "path",
        "peer",
        "protocol",
        "query",
        "scheme",
        "server",
        "server_port",
    )

    def __init__(
        self,
        method: str,
        scheme: str,
        path: str,
        query: str,
        header: Callable[[str], list[str]],
        server: tuple[str | None, int | None],
        peer: tuple[str | None, int | None],
        protocol: str | None,
    ) -> None:
        self.method, self.scheme, self.path, self.query = method, scheme, path, query
        self.header = header  # lower-case name -> values
        self.server, self.server_port = server
        self.peer, self.client_port = peer
        self.protocol = protocol

    def url(self) -> str:
        host = self.header("host")
        authority = host[0] if host else (self.server or "")
        return f"{self.scheme}://{authority}{self.path}" + (f"?{self.query}" if self.query else "")


def begin(
    settings: ServerSettings, facts: RequestFacts, carrier: Any, getter: Any
) -> tuple[Context, ServerRequest | None]:
    """The context to make current for the app and, unless the URL is excluded, the request's span."""
    parent = settings.propagator.extract(carrier, getter=getter)
    if settings.excluded is not None and settings.excluded(facts.url()):
        return otel_context.set_value(_REQUEST_KEY, EXCLUDED, parent), None
    method = facts.method
    known = method in sc.KNOWN_METHODS
    start = {
        sc.HTTP_REQUEST_METHOD: method if known else sc.OTHER_METHOD,
        sc.URL_PATH: facts.path,
        sc.URL_SCHEME: facts.scheme,
    }
    name = method if known else "HTTP"
    span = settings.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=start)
    if span.is_recording():
        with _errors.guard("server span attributes"):
            span.set_attributes(_request_attributes(settings, facts, known))
    request = ServerRequest(settings, span, name)
    ctx = trace.set_span_in_context(span, parent)
    return otel_context.set_value(_REQUEST_KEY, request, ctx), request


def _request_attributes(settings: ServerSettings, facts: RequestFacts, known: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if not known:
        attrs[sc.HTTP_REQUEST_METHOD_ORIGINAL] = facts.method
    if facts.query:
        attrs[sc.URL_QUERY] = redact.query(facts.query, settings.query_sensitive)
    host = facts.header("host")
    if host:
        address, port = split_host(host[0])
        if address and port is None:
            port = 443 if facts.scheme == "https" else 80
    else:
        address, port = facts.server, facts.server_port
    if address:
        attrs[sc.SERVER_ADDRESS] = address
        if port is not None:
            attrs[sc.SERVER_PORT] = port
    forwarded = facts.header("x-forwarded-for")
    client = forwarded[0].split(",")[0].strip() if forwarded else facts.peer
    if client:
        attrs[sc.CLIENT_ADDRESS] = client
    if facts.peer:
        attrs[sc.NETWORK_PEER_ADDRESS] = facts.peer
    if facts.client_port is not None and not forwarded:
        attrs[sc.CLIENT_PORT] = facts.client_port
    agent = facts.header("user-agent")
    if agent:
        attrs[sc.USER_AGENT_ORIGINAL] = agent[0]
    if facts.protocol:
        attrs[sc.NETWORK_PROTOCOL_VERSION] = facts.protocol
    for name in settings.capture_request:
        values = facts.header(name)
        if values:
            attrs[sc.HTTP_REQUEST_HEADER + name] = [
                redact.header_value(name, v, settings.sensitive) for v in values
            ]
    return attrs


def split_host(host: str) -> tuple[str | None, int | None]:
    """``example.com:8080`` -> (example.com, 8080); ``[::1]:80`` -> (::1, 80); garbage -> (None, None)."""
    host = host.strip()
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None, None
        address, rest = host[1:end], host[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        address, _, port_text = host.partition(":")
    if not address:
        return None, None
    if not port_text:
        return address, None
    # isascii(): str.isdigit() also takes "²" and other digits that int() refuses.
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        return address, None
    return address, int(port_text)
