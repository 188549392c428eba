"""WSGI middleware: one SERVER span per request, ended when the response body is done.

The span stays open while the server iterates the body and ends when the body is exhausted or the
server calls ``close()``, whichever comes first, so streamed responses are timed whole. The request's
context is current while the app runs and while each chunk is produced, and is detached in the same
call that attached it. An exception
is recorded and re-raised unchanged; raised before ``start_response``, the server answers 500, and
the span says so.
"""

from __future__ import annotations

from opentelemetry import context as otel_context

from autotrace._errors import guard
from autotrace.middleware import _server

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any, Callable

    Environ = dict[str, Any]
    StartResponse = Callable[..., Callable[[bytes], object]]
    WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_UNSET: Any = object()


class WSGIMiddleware:
    """Trace a WSGI app: ``app = WSGIMiddleware(app)`` (Flask: wrap ``app.wsgi_app``)."""

    def __init__(self, app: WSGIApp, settings: _server.ServerSettings | None = None) -> None:
        self.app = app
        self._settings: Any = settings if settings is not None else _UNSET

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if _server.handled():
            return self.app(environ, start_response)
        prepared = None
        with guard("server span start"):
            prepared = self._begin(environ)
        if prepared is None:
            return self.app(environ, start_response)
        ctx, request = prepared
        token = otel_context.attach(ctx)
        try:
            if request is None:  # an excluded URL: no span, the caller's context still flows on
                return self.app(environ, start_response)
            try:
                body = self.app(environ, _traced_start_response(start_response, request))
            except BaseException as exc:
                request.finish(exc)
                raise
        finally:
            otel_context.detach(token)
        return TracedBody(body, request, ctx)

    def _begin(self, environ: Environ) -> tuple[Any, _server.ServerRequest | None] | None:
        settings = self._settings
        if settings is _UNSET:
            from autotrace.middleware._settings import resolve

            settings = self._settings = resolve()
        if settings is None:
            return None
        return _server.begin(settings, facts(environ), environ, GETTER)


def facts(environ: Environ) -> _server.RequestFacts:
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    protocol = environ.get("SERVER_PROTOCOL") or ""
    return _server.RequestFacts(
        method=environ.get("REQUEST_METHOD") or "GET",
        scheme=environ.get("wsgi.url_scheme") or "http",
        path=_from_wsgi_string(path) or "/",
        query=environ.get("QUERY_STRING") or "",
        header=lambda name: header_values(environ, name),
        server=(environ.get("SERVER_NAME"), _port(environ.get("SERVER_PORT"))),
        peer=(environ.get("REMOTE_ADDR"), _port(environ.get("REMOTE_PORT"))),
        protocol=protocol[5:] if protocol.startswith("HTTP/") else None,
    )


def _from_wsgi_string(text: str) -> str:
    """PEP 3333 hands paths over as bytes decoded as latin-1; show them as the UTF-8 they usually are."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def _port(value: object) -> int | None:
    try:
        port = int(str(value))
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def header_values(environ: Environ, name: str) -> list[str]:
    key = name.upper().replace("-", "_")
    if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        key = "HTTP_" + key
    value = environ.get(key)
    return [value] if isinstance(value, str) else []


class _Getter:
    """Reads the ``HTTP_*`` variables of a WSGI environ for the propagators."""

    def get(self, carrier: Environ, key: str) -> list[str] | None:
        return header_values(carrier, key) or None

    def keys(self, carrier: Environ) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


GETTER = _Getter()


def _traced_start_response(start_response: StartResponse, request: _server.ServerRequest) -> StartResponse:
    def traced_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        with guard("server span response"):
            headers = _on_start_response(status, headers, request)
        if exc_info is None:
            return start_response(status, headers)
        return start_response(status, headers, exc_info)

    return traced_start_response


def _on_start_response(
    status: str, headers: list[tuple[str, str]], request: _server.ServerRequest
) -> list[tuple[str, str]]:
    code = int(status[:3])

    def values(name: str) -> list[str]:
        return [v for k, v in headers if k.lower() == name]

    request.response_started(code, values)
    extra = request.trace_response_headers()
    return [*headers, *extra] if extra else headers


class TracedBody:
    """The app's response body, with the request's context current while it runs, ending the span."""

    __slots__ = ("_body", "_ctx", "_iterator", "_request")

    def __init__(self, body: Iterable[bytes], request: _server.ServerRequest, ctx: Any) -> None:
        self._body = body
        self._request = request
        self._ctx = ctx
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> TracedBody:
        return self

    def __next__(self) -> bytes:
        token = otel_context.attach(self._ctx)
        try:
            if self._iterator is None:
                self._iterator = iter(self._body)
            return next(self._iterator)
        except StopIteration:
            # Done. PEP 3333 servers call close() next, but some never do (uvicorn's WSGI adapter):
            # the body is fully sent, so the span ends here either way.
            self._request.finish()
            raise
        except BaseException as exc:
            with guard("server span exception"):
                self._request.record_exception(exc)
            raise
        finally:
            otel_context.detach(token)

    def close(self) -> None:
        token = otel_context.attach(self._ctx)
        failure: BaseException | None = None
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._request.finish(failure)
            otel_context.detach(token)
