"""FastAPI, with the user route on a router included under a prefix."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from tests.e2e.webapps import common

router = APIRouter()


@router.get("/users/{user_id}")
async def user(user_id: int) -> Response:
    return Response(common.load_user(str(user_id)), headers=dict(common.RESPONSE_HEADERS))


app = FastAPI()
app.include_router(router, prefix="/api")


@app.get("/boom")
async def boom() -> None:
    common.boom()


@app.get("/fail503")
async def fail503() -> Response:
    return PlainTextResponse("unavailable", status_code=503)


@app.get("/stream")
async def stream() -> Response:
    async def body():  # type: ignore[no-untyped-def]
        for i in range(3):
            if i:
                await asyncio.sleep(common.CHUNK_DELAY)
            yield f"chunk{i}\n".encode()

    return StreamingResponse(body(), media_type="text/plain")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(common.current_trace_id())


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()
