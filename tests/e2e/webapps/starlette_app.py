"""Starlette, with the user route behind a Mount (its template must include the prefix)."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.e2e.webapps import common


async def user(request: Request) -> Response:
    return Response(common.load_user(request.path_params["user_id"]), headers=dict(common.RESPONSE_HEADERS))


async def boom(request: Request) -> Response:
    common.boom()
    return Response()


async def fail503(request: Request) -> Response:
    return PlainTextResponse("unavailable", status_code=503)


async def stream(request: Request) -> Response:
    async def body():  # type: ignore[no-untyped-def]
        for i in range(3):
            if i:
                await asyncio.sleep(common.CHUNK_DELAY)
            yield f"chunk{i}\n".encode()

    return StreamingResponse(body(), media_type="text/plain")


async def after_response() -> None:
    await asyncio.sleep(0.3)
    common.load_user("background")  # a span made after the response was sent


async def background(request: Request) -> Response:
    from starlette.background import BackgroundTask

    return PlainTextResponse("accepted", background=BackgroundTask(after_response))


async def healthz(request: Request) -> Response:
    return Response(common.current_trace_id())


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


app = Starlette(
    routes=[
        Mount("/api", routes=[Route("/users/{user_id}", user)]),
        Route("/boom", boom),
        Route("/fail503", fail503),
        Route("/stream", stream),
        Route("/healthz", healthz),
        Route("/background", background),
        WebSocketRoute("/ws", echo),
    ]
)
