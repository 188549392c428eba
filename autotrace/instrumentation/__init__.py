"""The instrumentation registry: names only, nothing is imported here.

Each entry maps an instrumentation module, ``autotrace.instrumentation.<name>``, to the import name
whose first import installs it. The module follows the contract in docs/how-it-works.md: a docstring
that is its user doc, ``TARGET``, ``REQUIRES`` (a distribution requirement checked from package
metadata, or None for the standard library), ``install(tracing, config)`` and ``uninstall()``.
"""

from __future__ import annotations

REGISTRY: dict[str, str] = {
    # Servers: every request to any WSGI/ASGI app they serve gets a SERVER span.
    "uvicorn": "uvicorn.config",
    "gunicorn": "gunicorn.workers.base",
    "hypercorn": "hypercorn.app_wrappers",
    "waitress": "waitress.server",
    "werkzeug": "werkzeug.serving",
    "wsgiref": "wsgiref.simple_server",
    # Frameworks: name the route; make the SERVER span when no server hook did.
    "django": "django",
    "fastapi": "fastapi.applications",
    "flask": "flask",
    "starlette": "starlette.routing",
    # HTTP clients: one CLIENT span per exchange, trace context sent on.
    "http_client": "http.client",
    "requests": "requests.sessions",
    "urllib3": "urllib3.connectionpool",
    "urllib": "urllib.request",
    "httpx": "httpx",
    "aiohttp": "aiohttp",
    # Databases and caches: one CLIENT span per query, statement sanitized.
    "sqlite3": "sqlite3",
    "psycopg": "psycopg",
    "psycopg2": "psycopg2",
    "asyncpg": "asyncpg",
    "pymysql": "pymysql",
    "redis": "redis.client",
    # Context: work handed to threads, pools and greenlets continues the trace it was started from.
    "threads": "opentelemetry.context",
    # Logs: standard logging records carry the current trace and span ids.
    "logs": "logging",
    "gevent": "gevent",
}
