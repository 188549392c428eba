"""Middleware to trace a WSGI or ASGI app by hand, without the ``autotrace`` launcher.

    from autotrace.middleware import ASGIMiddleware, WSGIMiddleware
    app = ASGIMiddleware(app)          # Starlette, FastAPI, any ASGI callable
    app.wsgi_app = WSGIMiddleware(app.wsgi_app)   # Flask; any WSGI callable

Under the launcher you need neither: servers and frameworks are hooked for you, and a hand-added
middleware then steps aside, so a request never gets two SERVER spans. See docs/middleware.md.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from autotrace.middleware.asgi import ASGIMiddleware
    from autotrace.middleware.wsgi import WSGIMiddleware

__all__ = ["ASGIMiddleware", "WSGIMiddleware"]


def __getattr__(name: str) -> object:
    if name == "ASGIMiddleware":
        from autotrace.middleware.asgi import ASGIMiddleware

        return ASGIMiddleware
    if name == "WSGIMiddleware":
        from autotrace.middleware.wsgi import WSGIMiddleware

        return WSGIMiddleware
    raise AttributeError(name)
