"""A small Starlette service, as an app's own module would look: the benchmark times importing it.

Importing builds the application object and nothing else: no server starts, no socket opens. To serve
it by hand: ``uvicorn bench.apps.starlette_app:app`` from the repository root.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

_ids = itertools.count(1)
_users: dict[int, dict[str, Any]] = {}


class RequestIdMiddleware(BaseHTTPMiddleware):
    """Tags every response with a request id and the time the handler took."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["x-request-id"] = request_id
        response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def list_users(request: Request) -> JSONResponse:
    limit = int(request.query_params.get("limit", "50"))
    users = sorted(_users.values(), key=lambda u: u["id"])[:limit]
    return JSONResponse({"users": users, "count": len(users)})


async def create_user(request: Request) -> JSONResponse:
    body = await request.json()
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise HTTPException(status_code=422, detail="name is required")
    user = {"id": next(_ids), "name": name.strip(), "email": body.get("email")}
    _users[user["id"]] = user
    return JSONResponse(user, status_code=201)


async def get_user(request: Request) -> JSONResponse:
    user = _users.get(request.path_params["user_id"])
    if user is None:
        raise HTTPException(status_code=404, detail="no such user")
    return JSONResponse(user)


async def delete_user(request: Request) -> Response:
    if _users.pop(request.path_params["user_id"], None) is None:
        raise HTTPException(status_code=404, detail="no such user")
    return Response(status_code=204)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return JSONResponse({"error": detail}, status_code=status)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    _users.clear()
    yield
    _users.clear()


routes = [
    Route("/health", health),
    Mount(
        "/api/v1",
        routes=[
            Route("/users", list_users, methods=["GET"]),
            Route("/users", create_user, methods=["POST"]),
            Route("/users/{user_id:int}", get_user, methods=["GET"]),
            Route("/users/{user_id:int}", delete_user, methods=["DELETE"]),
        ],
    ),
]

middleware = [
    Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST", "DELETE"]),
    Middleware(GZipMiddleware, minimum_size=1024),
    Middleware(RequestIdMiddleware),
]

app = Starlette(
    routes=routes,
    middleware=middleware,
    exception_handlers={HTTPException: http_error},
    lifespan=lifespan,
)
