"""What every test app does, whatever its framework: the same endpoints, the same behaviour.

- ``users/<id>``: a child span made through the OpenTelemetry API, response headers to capture;
- ``boom``: raises; ``fail503``: answers 503; ``stream``: three chunks, 0.2 s apart;
- ``healthz``: answers the trace id current in the app (excluded URL: the context must still flow).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from opentelemetry import trace

RESPONSE_HEADERS = [("x-resp", "bye"), ("set-cookie", "sid=secret")]
CHUNK_DELAY = 0.2


def load_user(user_id: str) -> bytes:
    with trace.get_tracer("webapp").start_as_current_span("load-user"):
        return f"user {user_id}".encode()


def current_trace_id() -> bytes:
    return format(trace.get_current_span().get_span_context().trace_id, "032x").encode()


def chunks() -> Iterator[bytes]:
    for i in range(3):
        if i:
            time.sleep(CHUNK_DELAY)
        yield f"chunk{i}\n".encode()


class Boom(RuntimeError):
    pass


def boom() -> None:
    raise Boom("kaboom")
