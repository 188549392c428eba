"""httpx, sync and async: one CLIENT span per exchange, whatever the transport.

Patched (written against httpx 0.23-0.28): ``httpx.Client._send_single_request`` and
``httpx.AsyncClient._send_single_request``, which every request goes through once per exchange after
auth and redirect handling, whatever transport serves it (``HTTPTransport``, a subclass, a mount, a
custom one). The span starts there, the trace context is added to the request's headers for the
exchange and taken out again afterwards (the caller's ``Request`` object ends as it was), and the span
ends when the response's status and headers are in: a streamed body is read after it ended.
``Client.send`` / ``AsyncClient.send`` number redirect hops in ``http.request.resend_count``.
"""

from __future__ import annotations

from opentelemetry import context as otel_context

from autotrace import _errors
from autotrace.instrumentation import _http_client, _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

TARGET = "httpx"
REQUIRES = "httpx >= 0.23"

_installer = _web.Installer(__name__)


def install(tracing: Any, config: Any) -> None:
    import httpx

    settings = _http_client.settings_for(tracing)
    _installer.start()
    _installer.wrap(httpx.Client, "send", _http_client.logical_request)
    _installer.wrap(httpx.AsyncClient, "send", _http_client.logical_request_async)
    _installer.wrap(httpx.Client, "_send_single_request", _send(settings))
    _installer.wrap(httpx.AsyncClient, "_send_single_request", _send_async(settings))


def uninstall() -> None:
    _installer.stop()


def _begin(
    settings: _http_client.ClientSettings, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, list[str]] | None:
    """Start the span and put the headers on the request; returns the call, the request and the
    names we added."""
    if _http_client.busy():
        return None
    request = args[0] if args else kwargs["request"]
    url = request.url
    port = url.port or (443 if url.scheme == "https" else 80)
    call = _http_client.start(settings, request.method, str(url), url.host, port)
    added = []
    for name, value in call.headers():
        if name not in request.headers:
            added.append(name)
        request.headers[name] = value
    call.request_headers(lambda name: request.headers.get_list(name))
    return call, request, added


def _end(
    call: Any, request: Any, added: list[str], response: Any = None, exc: BaseException | None = None
) -> None:
    with _errors.guard("httpx response"):
        for name in added:
            request.headers.pop(name, None)
        if response is not None:
            protocol = str(response.http_version).removeprefix("HTTP/")
            call.response(response.status_code, lambda name: response.headers.get_list(name), protocol)
    call.finish(exc)


def _send(settings: _http_client.ClientSettings) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        started = None
        with _errors.guard("httpx request"):
            started = _begin(settings, args, kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        call, request, added = started
        token = otel_context.attach(call.context())
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            _end(call, request, added, exc=exc)
            raise
        finally:
            otel_context.detach(token)
        _end(call, request, added, response)
        return response

    return wrapper


def _send_async(settings: _http_client.ClientSettings) -> Callable[..., Any]:
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        started = None
        with _errors.guard("httpx request"):
            started = _begin(settings, args, kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        call, request, added = started
        token = otel_context.attach(call.context())
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _end(call, request, added, exc=exc)
            raise
        finally:
            otel_context.detach(token)
        _end(call, request, added, response)
        return response

    return wrapper
