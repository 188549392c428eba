"""ASGI middleware: one SERVER span per HTTP request; lifespan and WebSocket scopes pass through.

Pure ASGI: no per-request state on the instance; ``send`` is wrapped only to read the response status
and headers (and add ``traceresponse`` when asked); ``receive`` is left alone, so there are no
per-message spans. The span ends when the last body chunk of a response below 500 has been sent (else
when the app returns): work the app does after answering, such as background tasks, is not counted in the
request's time, though spans it makes still nest under the request's span. An exception before that
is recorded and re-raised unchanged; if no response had started, the server answers 500, and the span
says so. An exception after the response was sent is re-raised unchanged, not recorded.
"""

from __future__ import annotations

from opentelemetry import context as otel_context

from autotrace._errors import guard
from autotrace.middleware import _server

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable, MutableMapping
    from typing import Any, Callable

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
    Headers = Iterable[tuple[bytes, bytes]]

_UNSET: Any = object()


class ASGIMiddleware:
    """Trace an ASGI 3 app: ``app = ASGIMiddleware(app)``."""

    def __init__(self, app: ASGIApp, settings: _server.ServerSettings | None = None) -> None:
        self.app = app
        self._settings: Any = settings if settings is not None else _UNSET

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or _server.handled():
            await self.app(scope, receive, send)
            return
        prepared = None
        with guard("server span start"):
            prepared = self._begin(scope)
        if prepared is None:
            await self.app(scope, receive, send)
            return
        ctx, request = prepared
        token = otel_context.attach(ctx)
        try:
            if request is None:  # an excluded URL: no span, the caller's context still flows on
                await self.app(scope, receive, send)
                return
            try:
                await self.app(scope, receive, _traced_send(send, request))
            except BaseException as exc:
                request.finish(exc)
                raise
            request.finish()
        finally:
            otel_context.detach(token)

    def _begin(self, scope: Scope) -> tuple[Any, _server.ServerRequest | None] | None:
        settings = self._settings
        if settings is _UNSET:
            from autotrace.middleware._settings import resolve

            settings = self._settings = resolve()
        if settings is None:
            return None
        headers = scope.get("headers") or []
        return _server.begin(settings, facts(scope, headers), headers, GETTER)


def facts(scope: Scope, headers: Headers) -> _server.RequestFacts:
    server = scope.get("server") or (None, None)
    client = scope.get("client") or (None, None)
    return _server.RequestFacts(
        method=scope.get("method") or "GET",
        scheme=scope.get("scheme") or "http",
        path=scope.get("path") or "/",
        query=(scope.get("query_string") or b"").decode("latin-1"),
        header=lambda name: header_values(headers, name),
        server=(server[0], server[1]),
        peer=(client[0], client[1]),
        protocol=scope.get("http_version"),
    )


def header_values(headers: Headers, name: str) -> list[str]:
    """Values of the (lower-case) header ``name``; ASGI servers send header names lower-cased."""
    key = name.encode("latin-1")
    return [v.decode("latin-1") for k, v in headers if k == key or k.lower() == key]


class _Getter:
    """Reads ASGI ``headers`` for the propagators."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        return header_values(carrier, key.lower()) or None

    def keys(self, carrier: Headers) -> list[str]:
        return [k.decode("latin-1").lower() for k, _ in carrier]


GETTER = _Getter()


def _traced_send(send: Send, request: _server.ServerRequest) -> Send:
    async def traced_send(message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            with guard("server span response"):
                message = _on_response_start(message, request)
        await send(message)
        if (
            kind == "http.response.body"
            and not message.get("more_body", False)
            and (request.status or 0) < 500
        ):
            # The response is complete: the span ends now, not when the app returns, which may be
            # much later (Starlette's and FastAPI's background tasks run after the body is sent). Not
            # after a 5xx: a framework's outermost error handler sends its 500, then re-raises the
            # exception, which belongs on this span.
            request.finish()

    return traced_send


def _on_response_start(message: Message, request: _server.ServerRequest) -> Message:
    headers = message.get("headers") or []
    request.response_started(int(message.get("status", 200)), lambda name: header_values(headers, name))
    extra = request.trace_response_headers()
    if not extra:
        return message
    added = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
    return {**message, "headers": [*headers, *added]}
