"""aiohttp client: one CLIENT span per exchange made by a ``ClientSession``.

Patched (written against aiohttp 3.9-3.14):

- ``aiohttp.client.ClientSession._request``: one call, redirects included. Its hops are numbered in
  ``http.request.resend_count``, and any exchange it leaves unfinished (connection refused, DNS
  failure, timeout) ends with the exception, which reaches the app unchanged.
- ``aiohttp.client_reqrep.ClientRequest.__init__``: each hop's request: the span starts and the trace
  context goes into this request's own headers (aiohttp copies the caller's into it).
- ``ClientRequest.send`` and ``aiohttp.client_reqrep.ClientResponse.start``: the span ends once the
  response's status and headers are in; the body is read after it ended.
"""

from __future__ import annotations

import weakref

from opentelemetry import context as otel_context

from autotrace import _errors
from autotrace.instrumentation import _http_client, _web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

TARGET = "aiohttp"
REQUIRES = "aiohttp >= 3.9"

_installer = _web.Installer(__name__)
_PENDING_KEY = otel_context.create_key("autotrace-aiohttp-pending")
_by_request: weakref.WeakKeyDictionary[Any, _http_client.ClientCall] = weakref.WeakKeyDictionary()
_by_response: weakref.WeakKeyDictionary[Any, _http_client.ClientCall] = weakref.WeakKeyDictionary()


def install(tracing: Any, config: Any) -> None:
    import aiohttp.client
    import aiohttp.client_reqrep as reqrep

    settings = _http_client.settings_for(tracing)
    _installer.start()
    _installer.wrap(aiohttp.client.ClientSession, "_request", _request)
    _installer.wrap(reqrep.ClientRequest, "__init__", _request_init(settings))
    _installer.wrap(reqrep.ClientRequest, "send", _send)
    _installer.wrap(reqrep.ClientResponse, "start", _response_start)


def uninstall() -> None:
    _installer.stop()


async def _request(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    pending: list[_http_client.ClientCall] = []
    token = otel_context.attach(otel_context.set_value(_PENDING_KEY, pending))
    try:
        response = await _http_client.logical_request_async(wrapped, instance, args, kwargs)
    except BaseException as exc:
        for call in pending:
            call.finish(exc)
        raise
    finally:
        otel_context.detach(token)
    for call in pending:
        call.finish()  # ends only what is still open: finish() is once-only
    return response


def _request_init(settings: _http_client.ClientSettings) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        with _errors.guard("aiohttp request"):
            pending = otel_context.get_value(_PENDING_KEY)
            if isinstance(pending, list) and not _http_client.busy():
                url = instance.url
                port = url.port or (443 if url.scheme == "https" else 80)
                call = _http_client.start(settings, instance.method, str(url), url.host or "", port)
                for name, value in call.headers():
                    instance.headers[name] = value
                call.request_headers(lambda name: instance.headers.getall(name, []))
                pending.append(call)
                _by_request[instance] = call
        return result

    return wrapper


async def _send(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    response = await wrapped(*args, **kwargs)
    with _errors.guard("aiohttp send"):
        call = _by_request.pop(instance, None)
        if call is not None:
            _by_response[response] = call
    return response


async def _response_start(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _by_response.pop(instance, None)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        if call is not None:
            call.finish(exc)
        raise
    if call is not None:
        with _errors.guard("aiohttp response"):
            version = instance.version
            protocol = f"{version.major}.{version.minor}" if version is not None else None
            call.response(instance.status, lambda name: instance.headers.getall(name, []), protocol)
        call.finish()
    return result
