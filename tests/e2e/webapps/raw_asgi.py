"""A bare ASGI callable, no framework (lifespan supported, as uvicorn asks for it)."""

from __future__ import annotations

import asyncio

from tests.e2e.webapps import common


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]

    async def answer(status, body, headers=()):  # type: ignore[no-untyped-def]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain"), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    if path.startswith("/users/"):
        headers = [(k.encode(), v.encode()) for k, v in common.RESPONSE_HEADERS]
        await answer(200, common.load_user(path.rsplit("/", 1)[1]), headers)
    elif path == "/boom":
        common.boom()
    elif path == "/fail503":
        await answer(503, b"unavailable")
    elif path == "/stream":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        for i in range(3):
            if i:
                await asyncio.sleep(common.CHUNK_DELAY)
            await send({"type": "http.response.body", "body": f"chunk{i}\n".encode(), "more_body": i < 2})
    elif path == "/healthz":
        await answer(200, common.current_trace_id())
    else:
        await answer(404, b"not found")
